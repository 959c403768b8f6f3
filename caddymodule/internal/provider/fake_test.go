package provider

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Test client credentials and the values the fake provider recognises.
const (
	testClientID     = "test-client"
	testClientSecret = "test-secret"
	testNonce        = "nonce-0123456789"
	goodCode         = "code-good"
	liveRefresh      = "rt-live"
	deadRefresh      = "rt-dead"
)

// testKey signs every fake ID token; generated once, RSA is slow.
var testKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// recorded is a request the fake provider received.
type recorded struct {
	method, path string
	header       http.Header
	body         string
}

// form parses a form body (or the query, for GETs).
func (r recorded) form() url.Values {
	v, _ := url.ParseQuery(r.body)
	return v
}

// fakeProvider serves one preset's documented endpoints from the samples in
// testdata/providers/<preset>: discovery, JWKS, token, userinfo, emails and
// revocation. It records every request.
type fakeProvider struct {
	t      *testing.T
	srv    *httptest.Server
	preset string

	mu       sync.Mutex
	requests []recorded
	// claims are the ID token's claims, from id_token_claims.json; tests
	// edit them. aud, nonce, iat and exp are added when signing.
	claims map[string]any
	nonce  string
	// handlers replace the fake's answer for a path (for faults).
	handlers map[string]http.HandlerFunc
	// refreshErrorStatus is the HTTP status of the refresh refusal.
	refreshErrorStatus int
}

func newFake(t *testing.T, preset string) *fakeProvider {
	t.Helper()
	f := &fakeProvider{t: t, preset: preset, nonce: testNonce, handlers: map[string]http.HandlerFunc{},
		refreshErrorStatus: http.StatusBadRequest}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	if f.exists("id_token_claims.json") {
		if err := json.Unmarshal(f.sample("id_token_claims.json"), &f.claims); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fakeProvider) url(path string) string { return f.srv.URL + path }

func (f *fakeProvider) pre() preset { return presets[f.preset] }

func (f *fakeProvider) exists(name string) bool {
	_, err := os.Stat(filepath.Join("..", "..", "..", "testdata", "providers", f.preset, name))
	return err == nil
}

// sample reads a sample with the server's URL and the client id filled in.
func (f *fakeProvider) sample(name string) []byte {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "providers", f.preset, name))
	if err != nil {
		f.t.Fatal(err)
	}
	return []byte(strings.NewReplacer("{{server}}", f.srv.URL, "{{client_id}}", testClientID).Replace(string(b)))
}

// idToken signs the sample claims as the provider would.
func (f *fakeProvider) idToken() string {
	f.mu.Lock()
	claims := maps.Clone(f.claims)
	nonce := f.nonce
	f.mu.Unlock()
	now := time.Now()
	defaults := map[string]any{"aud": testClientID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if nonce != "" {
		defaults["nonce"] = nonce
	}
	for k, v := range defaults {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	maps.DeleteFunc(claims, func(_ string, v any) bool { return v == dropClaim })
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: testKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "test-key"))
	if err != nil {
		f.t.Fatal(err)
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		f.t.Fatal(err)
	}
	return raw
}

// dropClaim as a claim's value leaves the claim out of the ID token.
var dropClaim any = struct{ drop bool }{true}

func (f *fakeProvider) setClaim(k string, v any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v == nil {
		delete(f.claims, k)
	} else {
		f.claims[k] = v
	}
}

func (f *fakeProvider) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method == http.MethodGet {
		body = []byte(r.URL.RawQuery)
	}
	f.mu.Lock()
	f.requests = append(f.requests, recorded{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: string(body)})
	h := f.handlers[r.URL.Path]
	f.mu.Unlock()
	if h != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r)
		return
	}
	switch p := r.URL.Path; {
	case strings.HasSuffix(p, "/.well-known/openid-configuration"):
		f.writeJSON(w, http.StatusOK, f.sample("discovery.json"))
	case p == "/jwks":
		jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: testKey.Public(), KeyID: "test-key", Algorithm: "RS256", Use: "sig"}}}
		b, _ := json.Marshal(jwks)
		f.writeJSON(w, http.StatusOK, b)
	case p == "/token":
		f.token(w, r, body)
	case p == "/userinfo":
		f.writeJSON(w, http.StatusOK, f.sample("userinfo.json"))
	case p == "/emails":
		f.writeJSON(w, http.StatusOK, f.sample("emails.json"))
	case strings.HasSuffix(p, "/revoke"):
		if f.exists("revoke.json") {
			f.writeJSON(w, http.StatusOK, f.sample("revoke.json"))
		}
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeProvider) token(w http.ResponseWriter, r *http.Request, body []byte) {
	params := map[string]string{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(body, &params)
	} else {
		v, _ := url.ParseQuery(string(body))
		for k := range v {
			params[k] = v.Get(k)
		}
	}
	var name string
	status := http.StatusOK
	switch {
	case params["grant_type"] == "authorization_code" && params["code"] == goodCode:
		name = "token.json"
	case params["grant_type"] == "refresh_token" && params["refresh_token"] == liveRefresh:
		name = "refresh.json"
	case params["grant_type"] == "refresh_token" && params["refresh_token"] == deadRefresh:
		name, status = "refresh_error.json", f.refreshErrorStatus
	default:
		f.writeJSON(w, http.StatusBadRequest, []byte(`{"error":"invalid_grant"}`))
		return
	}
	b := string(f.sample(name))
	if strings.Contains(b, "{{id_token}}") {
		b = strings.ReplaceAll(b, "{{id_token}}", f.idToken())
	}
	f.writeJSON(w, status, []byte(b))
}

func (f *fakeProvider) writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// last returns the last request to path.
func (f *fakeProvider) last(path string) (recorded, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.requests) - 1; i >= 0; i-- {
		if f.requests[i].path == path {
			return f.requests[i], true
		}
	}
	return recorded{}, false
}

// count returns how many requests reached path.
func (f *fakeProvider) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r.path == path {
			n++
		}
	}
	return n
}

// clientAuth says how a request authenticated the client: "basic",
// "params" (client_id and client_secret in the body), "client_id" (the id
// alone), or "none".
func clientAuth(r recorded) string {
	if id, secret, ok := (&http.Request{Header: r.header}).BasicAuth(); ok {
		if id == testClientID && secret != "" {
			return "basic"
		}
		return "bad-basic"
	}
	var params map[string]string
	if json.Unmarshal([]byte(r.body), &params) != nil {
		params = map[string]string{}
		for k, v := range r.form() {
			params[k] = v[0]
		}
	}
	switch {
	case params["client_id"] == testClientID && params["client_secret"] != "":
		return "params"
	case params["client_id"] == testClientID:
		return "client_id"
	}
	return "none"
}

// tokenParams reads a token request's parameters, form or JSON.
func tokenParams(r recorded) map[string]string {
	params := map[string]string{}
	if strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal([]byte(r.body), &params)
		return params
	}
	for k, v := range r.form() {
		params[k] = v[0]
	}
	return params
}

func checkRevoke(t *testing.T, f *fakeProvider, w revokeWant) {
	t.Helper()
	r, ok := f.last(w.path)
	if !ok {
		t.Fatalf("no revocation request to %s", w.path)
	}
	if r.method != w.method {
		t.Errorf("revocation method %s, want %s", r.method, w.method)
	}
	for k, v := range f.pre().headers {
		if r.header.Get(k) != v {
			t.Errorf("revocation header %s = %q, want %q", k, r.header.Get(k), v)
		}
	}
	if w.auth == "bearer" {
		if got := r.header.Get("Authorization"); got != "Bearer "+w.token {
			t.Errorf("revocation Authorization %q, want the bearer token", got)
		}
		return
	}
	if got := clientAuth(r); got != w.auth {
		t.Errorf("revocation client authentication %q, want %q", got, w.auth)
	}
	if w.jsonKey != "" {
		var body map[string]string
		if err := json.Unmarshal([]byte(r.body), &body); err != nil || body[w.jsonKey] != w.token {
			t.Errorf("revocation body %s, want {%q: %q}", r.body, w.jsonKey, w.token)
		}
		return
	}
	form := r.form()
	hint := "access_token"
	if w.token == liveRefresh {
		hint = "refresh_token"
	}
	if form.Get("token") != w.token || form.Get("token_type_hint") != hint {
		t.Errorf("revocation form %v, want token %q (%s)", form, w.token, hint)
	}
}

// checkAppleClientSecret verifies the client secret as Apple would.
func checkAppleClientSecret(t *testing.T, secret string) {
	t.Helper()
	tok, err := jwt.ParseSigned(secret, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("client secret: %v", err)
	}
	if kid := tok.Headers[0].KeyID; kid != "KEY1234567" {
		t.Errorf("client secret kid %q", kid)
	}
	var c jwt.Claims
	if err := tok.Claims(&appleKey.PublicKey, &c); err != nil {
		t.Fatalf("client secret signature: %v", err)
	}
	if c.Issuer != "TEAM123456" || c.Subject != testClientID || !c.Audience.Contains("https://appleid.apple.com") {
		t.Errorf("client secret claims %+v", c)
	}
	if life := c.Expiry.Time().Sub(c.IssuedAt.Time()); life <= 0 || life > clientSecretTTL {
		t.Errorf("client secret lifetime %v", life)
	}
}
