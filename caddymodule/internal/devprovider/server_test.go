package devprovider

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testOP is a provider on a loopback server with an issuer path, its test
// clock, and a client ("relying party") whose /callback echoes its query
// as JSON.
type testOP struct {
	*Server
	issuer   string
	clock    *clock
	rp       *httptest.Server
	callback string
	provider *oidc.Provider
}

func newTestOP(t *testing.T) *testOP {
	t.Helper()
	rp, callback := startRP(t)
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/dev"
	clk := &clock{now: time.Now().Truncate(time.Second)}
	s, err := New(Options{
		Issuer: issuer,
		Clients: []Client{
			{ID: "app", Secret: "app-secret", RedirectURIs: []string{callback}},
			{ID: "other", Secret: "other-secret", RedirectURIs: []string{callback}},
			{ID: "dev", Secret: "dev secret+/%"},
		},
		Now: clk.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.Config.Handler = s
	srv.Start()
	t.Cleanup(srv.Close)
	return discover(t, s, clk, rp, callback)
}

// startRP starts the relying party, whose /callback echoes its query as JSON.
func startRP(t *testing.T) (*httptest.Server, string) {
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(r.URL.Query())
	}))
	t.Cleanup(rp.Close)
	return rp, rp.URL + "/callback"
}

// discover returns the testOP of a running server, after go-oidc discovery.
func discover(t *testing.T, s *Server, clk *clock, rp *httptest.Server, callback string) *testOP {
	t.Helper()
	provider, err := oidc.NewProvider(t.Context(), s.issuer)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	return &testOP{Server: s, issuer: s.issuer, clock: clk, rp: rp, callback: callback, provider: provider}
}

// config is an x/oauth2 client of the provider.
func (op *testOP) config(clientID, secret string, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		Endpoint:     op.provider.Endpoint(),
		RedirectURL:  op.callback,
		Scopes:       scopes,
	}
}

// verify checks tok's ID token with go-oidc, as a relying party would.
func (op *testOP) verify(t *testing.T, clientID string, tok *oauth2.Token) (*oidc.IDToken, error) {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	return op.provider.Verifier(&oidc.Config{ClientID: clientID, Now: op.clock.Now}).Verify(t.Context(), raw)
}

var (
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
)

// signIn plays the browser: it opens authURL, submits the sign-in form with
// the page's hidden fields plus fields, and follows the redirect to the
// relying party. It returns the callback's query.
func (op *testOP) signIn(t *testing.T, authURL string, fields url.Values) url.Values {
	t.Helper()
	status, _, page := get(t, authURL, nil)
	if status != http.StatusOK {
		t.Fatalf("GET authorize: status %d, body:\n%s", status, page)
	}
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	for name, values := range fields {
		form[name] = values
	}
	action := formAction.FindStringSubmatch(page)
	if action == nil {
		t.Fatalf("no form on the sign-in page:\n%s", page)
	}
	u, _ := url.Parse(op.issuer)
	resp, err := http.PostForm(u.Scheme+"://"+u.Host+html.UnescapeString(action[1]), form)
	if err != nil {
		t.Fatalf("POST authorize: %v", err)
	}
	defer resp.Body.Close()
	if got := resp.Request.URL.Host; got != strings.TrimPrefix(op.rp.URL, "http://") {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST authorize ended at %s (status %d), not at the client:\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	var query url.Values
	if err := json.NewDecoder(resp.Body).Decode(&query); err != nil {
		t.Fatalf("decoding callback: %v", err)
	}
	return query
}

// code signs Ada in through cfg and returns the authorization code, after
// checking the callback's state and iss.
func (op *testOP) code(t *testing.T, cfg *oauth2.Config, opts ...oauth2.AuthCodeOption) string {
	t.Helper()
	q := op.signIn(t, cfg.AuthCodeURL("the-state", opts...), url.Values{"user": {"ada"}})
	if q.Get("state") != "the-state" || q.Get("iss") != op.issuer || q.Get("code") == "" {
		t.Fatalf("callback query = %v, want code, state and iss", q)
	}
	return q.Get("code")
}

// get does a GET without following redirects.
func get(t *testing.T, u string, header http.Header) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, req)
}

// post does a form POST without following redirects.
func post(t *testing.T, u string, form url.Values, header http.Header) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, http.Header, string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func TestNew_RejectsInvalidOptions(t *testing.T) {
	client := Client{ID: "app", Secret: "s"}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"missing issuer", Options{Clients: []Client{client}}, "issuer: required"},
		{"relative issuer", Options{Issuer: "/dev", Clients: []Client{client}}, "absolute"},
		{"ftp issuer", Options{Issuer: "ftp://example.com", Clients: []Client{client}}, "absolute"},
		{"trailing slash", Options{Issuer: "http://localhost:9999/", Clients: []Client{client}}, "trailing slash"},
		{"issuer with query", Options{Issuer: "http://localhost:9999?x=1", Clients: []Client{client}}, "query"},
		{"issuer with user", Options{Issuer: "http://u@localhost:9999", Clients: []Client{client}}, "user"},
		{"no clients", Options{Issuer: "http://localhost:9999"}, "at least one client"},
		{"client without id", Options{Issuer: "http://localhost:9999", Clients: []Client{{Secret: "s"}}}, "id is required"},
		{"client without secret", Options{Issuer: "http://localhost:9999", Clients: []Client{{ID: "app"}}}, "secret is required"},
		{"duplicate client", Options{Issuer: "http://localhost:9999", Clients: []Client{client, client}}, "duplicate"},
		{"relative redirect URI", Options{Issuer: "http://localhost:9999", Clients: []Client{{ID: "a", Secret: "s", RedirectURIs: []string{"/cb"}}}}, "redirect URI"},
		{"redirect URI with fragment", Options{Issuer: "http://localhost:9999", Clients: []Client{{ID: "a", Secret: "s", RedirectURIs: []string{"https://app/cb#x"}}}}, "fragment"},
		{"scope with a space", Options{Issuer: "http://localhost:9999", Clients: []Client{client}, Scopes: []string{"read write"}}, `scope "read write": only printable ASCII`},
		{"scope with a quote", Options{Issuer: "http://localhost:9999", Clients: []Client{client}, Scopes: []string{`re"po`}}, "without spaces, quotes or backslashes"},
		{"empty scope", Options{Issuer: "http://localhost:9999", Clients: []Client{client}, Scopes: []string{""}}, "a scope is empty"},
		{"negative lifetime", Options{Issuer: "http://localhost:9999", Clients: []Client{client}, AccessTokenLifetime: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestDiscovery_AdvertisesEndpointsUnderIssuerPath(t *testing.T) {
	op := newTestOP(t)
	_, _, body := get(t, op.issuer+"/.well-known/openid-configuration", nil)
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer":                 op.issuer,
		"authorization_endpoint": op.issuer + "/authorize",
		"token_endpoint":         op.issuer + "/token",
		"userinfo_endpoint":      op.issuer + "/userinfo",
		"jwks_uri":               op.issuer + "/jwks",
		"revocation_endpoint":    op.issuer + "/revoke",
		"authorization_response_iss_parameter_supported": true,
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	lists := map[string][]any{
		"scopes_supported":                      {"openid", "profile", "email", "offline_access"},
		"response_types_supported":              {"code"},
		"response_modes_supported":              {"query"},
		"grant_types_supported":                 {"authorization_code", "refresh_token"},
		"subject_types_supported":               {"public"},
		"id_token_signing_alg_values_supported": {"RS256"},
		"code_challenge_methods_supported":      {"S256"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post"},
	}
	for k, v := range lists {
		if got, _ := doc[k].([]any); !slices.Equal(got, v) {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	if claims, _ := doc["claims_supported"].([]any); !slices.Contains(claims, any("email_verified")) {
		t.Errorf("claims_supported = %v, want email_verified among them", claims)
	}
}

func TestJWKS_PublishesOnePublicSigningKey(t *testing.T) {
	op := newTestOP(t)
	_, header, body := get(t, op.issuer+"/jwks", nil)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatalf("decoding JWKS: %v", err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	if !k.IsPublic() || k.KeyID == "" || k.Algorithm != "RS256" || k.Use != "sig" {
		t.Errorf("key = public %v, kid %q, alg %q, use %q; want a public RS256 signing key with a kid", k.IsPublic(), k.KeyID, k.Algorithm, k.Use)
	}
	if ct := header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestServeHTTP_RejectsWrongMethodWithAllow(t *testing.T) {
	op := newTestOP(t)
	tests := []struct {
		method, path, allow string
	}{
		{http.MethodPost, "/.well-known/openid-configuration", "GET"},
		{http.MethodDelete, "/jwks", "GET"},
		{http.MethodPut, "/authorize", "GET, POST"},
		{http.MethodGet, "/token", "POST"},
		{http.MethodDelete, "/userinfo", "GET, POST"},
		{http.MethodGet, "/revoke", "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), tt.method, op.issuer+tt.path, nil)
			status, header, _ := do(t, req)
			if status != http.StatusMethodNotAllowed || header.Get("Allow") != tt.allow {
				t.Errorf("status %d, Allow %q; want 405 and %q", status, header.Get("Allow"), tt.allow)
			}
		})
	}
}

func TestServeHTTP_ServesOnlyUnderIssuerPath(t *testing.T) {
	op := newTestOP(t)
	root := strings.TrimSuffix(op.issuer, "/dev")
	for _, u := range []string{root + "/jwks", root + "/devx/jwks", op.issuer, op.issuer + "/", op.issuer + "/jwks/"} {
		if status, _, _ := get(t, u, nil); status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", u, status)
		}
	}
}

func TestServeHTTP_RefusesOversizedBody(t *testing.T) {
	op := newTestOP(t)
	big := url.Values{"padding": {strings.Repeat("x", maxBodyBytes)}, "client_id": {"app"}, "client_secret": {"app-secret"}}
	for _, path := range []string{"/authorize", "/token", "/revoke"} {
		t.Run(path, func(t *testing.T) {
			status, _, body := post(t, op.issuer+path, big, nil)
			if status != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413; body:\n%s", status, body)
			}
		})
	}
}
