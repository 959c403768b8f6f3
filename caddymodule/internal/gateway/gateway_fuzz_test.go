package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/flow"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
)

// The gateway's own endpoints and its upstream hygiene, fuzzed:
//
//	go test ./caddymodule/internal/gateway -run '^$' -fuzz '^FuzzGatewayRequest$' -fuzztime 60s
//	go test ./caddymodule/internal/gateway -run '^$' -fuzz '^FuzzUpstreamHygiene$' -fuzztime 60s

// FuzzUpstreamHygiene checks what goes upstream after the handler has
// cleaned a request: no header in the gateway's namespace however an
// upstream spells it, and none of the gateway's cookies however an upstream
// parses the Cookie header (Go's parser, which the gateway itself uses, or
// any that trims whitespace around names as RFC 6265 5.2 does).
func FuzzUpstreamHygiene(f *testing.F) {
	for _, s := range []struct{ cookie, name, value string }{
		{"socialgate_session=abc; theme=dark", "X-Auth-User-Id", "admin"},
		{"theme=dark; socialgate_flow=xyz", "x_auth_user_email", "ceo@example.com"},
		{"socialgate_session=a; socialgate_session=b", "X_AUTH_SESSION_ID", "s"},
		{"socialgate_session =abc", "X-Auth-Token-Github", "gho"},
		{"socialgate_session\t=abc; socialgate_flow  =x", "X_Auth_Identity", "j"},
		{"__Host-socialgate_session=abc; __Host-socialgate_session =abc", "X-AUTH-USER-ID", "admin"},
		{" socialgate_session=abc ;theme=dark", "X-AUTH_USER-NAME", "n"},
		{`"socialgate_session"=abc`, "X-Auth", "x"},
		{"theme=dark,socialgate_session=abc", "X-Auth-", "z"},
		{"a=1;;socialgate_session=;b=2", "x-auth-identity", "forged.jwt.token"},
		{"SOCIALGATE_SESSION=abc", "X-Forwarded-User", "admin"},
		{"", "Cookie", "socialgate_session=abc"},
	} {
		f.Add(s.cookie, s.name, s.value)
	}
	f.Fuzz(func(t *testing.T, cookie, name, value string) {
		h := http.Header{}
		for _, line := range strings.Split(cookie, "\n") {
			h["Cookie"] = append(h["Cookie"], line)
		}
		h[name] = append(h[name], value)
		h[http.CanonicalHeaderKey(name)] = append(h[http.CanonicalHeaderKey(name)], value)
		StripIdentityHeaders(h)
		stripGatewayCookies(h)
		for k := range h {
			if n := strings.ToLower(strings.ReplaceAll(k, "_", "-")); strings.HasPrefix(n, "x-auth-") {
				t.Fatalf("header %q (sent as %q) survives", k, name)
			}
		}
		ours := func(n string) bool {
			n = strings.TrimPrefix(n, session.HostPrefix)
			return n == session.CookieName || n == flow.BindingCookie
		}
		for _, c := range (&http.Request{Header: h}).Cookies() {
			if ours(c.Name) {
				t.Fatalf("Go's cookie parser still finds %s in %q (sent %q)", c.Name, h["Cookie"], cookie)
			}
		}
		for _, line := range h["Cookie"] {
			for _, part := range strings.Split(line, ";") {
				n, _, _ := strings.Cut(part, "=")
				if ours(strings.TrimSpace(n)) {
					t.Fatalf("a lenient cookie parser still finds %q in %q (sent %q)", n, h["Cookie"], cookie)
				}
			}
		}
	})
}

// fuzzGateway is a whole gateway (newTestGW) whose only provider is an
// OAuth 2.0 provider that counts the calls it receives.
type fuzzGateway struct {
	*testGW
	authorize string // the provider's authorization URL
	calls     atomic.Int64
}

const fuzzAPIKey = "sk_fuzz_0123456789abcdef0123"

func newFuzzGateway(tb testing.TB) *fuzzGateway {
	tb.Helper()
	fg := &fuzzGateway{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fg.calls.Add(1)
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
	}))
	tb.Cleanup(srv.Close)
	fg.authorize = srv.URL + "/authorize"
	corp, err := provider.New(provider.Config{Name: "corp", Kind: provider.KindOAuth2, ClientID: "client", ClientSecret: "secret",
		AuthURL: fg.authorize, TokenURL: srv.URL + "/token", UserinfoURL: srv.URL + "/userinfo", SignIn: true})
	if err != nil {
		tb.Fatal(err)
	}
	returnTo, _ := redirect.NewReturnTo([]string{"https://app.example/after"})
	fg.testGW = newTestGW(tb, func(cfg *Config) {
		cfg.Providers, cfg.ReturnTo = []*provider.Provider{corp}, returnTo
		cfg.API = api.New(api.Options{Ops: ops.New(ops.Options{Store: cfg.Store, Tokens: tokens.New(tokens.Options{Store: cfg.Store})}), Keys: []string{fuzzAPIKey}})
	})
	return fg
}

// signIn creates a user with one linked account and a session, and returns
// the session and its cookie value.
func (fg *fuzzGateway) signIn(t *testing.T) (*store.Session, string) {
	ctx := context.Background()
	res, err := fg.st.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "corp", Issuer: "http://corp.example",
		Subject: store.NewID("sub"), Email: "ada@example.com", Name: "Ada", ApprovedScopes: []string{"read"},
		Tokens: store.TokenSet{AccessToken: "at", Expiry: time.Now().Add(time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	s, err := fg.sessions.Start(ctx, w, httptest.NewRequest(http.MethodGet, "/", nil), res.User, nil, session.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	return s, w.Result().Cookies()[0].Value
}

var fuzzEndpoints = []string{
	"/sign-in", "/sign-out", "/health", "/.well-known/jwks.json", "/me", "/account", "/account/connect",
	"/account/reauthorize", "/account/disconnect", "/account/sessions/revoke-others", "/native/apple", "/native/token",
	"/reauthorize", "/oauth/corp/start", "/oauth/corp/callback", "/oauth/nope/start", "/api/v1/users", "/api/v1/sessions",
	"/api/v1/redirect_urls", "/api/v1/providers", "",
}

var fuzzContentTypes = []string{"application/x-www-form-urlencoded", "application/json", "", "multipart/form-data; boundary=b", "text/plain"}

// fuzzHosts are Host headers Go's server accepts (it refuses "@", "/",
// spaces and control characters with 400 before any handler runs).
var fuzzHosts = []string{"gw.example", "gw.example:8443", "evil.example", "gw.example:8443.evil.example", "[::1]:80", "", "GW.EXAMPLE."}

// headerClean reports whether s can be a header name or value as written.
func headerClean(s string) bool { return !strings.ContainsAny(s, "\r\n\x00") }

func FuzzGatewayRequest(f *testing.F) {
	fg := newFuzzGateway(f)
	n := uint8(len(fuzzEndpoints))
	add := func(method string, pick uint8, path, query, body string, ctype uint8, auth string, flags uint8) {
		f.Add(method, pick, path, query, body, ctype, auth, flags)
	}
	evil := []string{"//evil.example", "/\\evil.example", "https:evil.example", "https://good.example@evil.example",
		"javascript:alert(1)", "/%2F%2Fevil.example", "/\t/evil.example", "/%0d%0aSet-Cookie:x=1", "/a\r\nLocation: //evil",
		"/%00", "/ok?x=1#y", "https://app.example/after", "https://app.example/after/../x", "/%E2%80%A8", "//%09/evil"}
	for i := uint8(0); i < n; i++ {
		for _, m := range []string{"GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE"} {
			add(m, i, "", "", "", 0, "", 1)
		}
		add("POST", i, "", "return_to=//evil.example", "csrf_token={csrf}&provider=corp&account_id={account}&return_to=%0d%0a", 0, "", 1)
		add("GET", i, "", "return_to=%0d%0aX-Evil:%201&provider=corp%00&scopes=a%0db", "", 0, "Bearer {key}", 3)
	}
	for _, e := range evil {
		q := url.Values{"return_to": {e}}.Encode()
		add("GET", 0, "", q, "", 0, "", 1)
		add("GET", 12, "", q+"&provider=corp", "", 0, "", 1)
		add("POST", 13, "", "", q, 0, "", 0)
		add("GET", 13, "", q+"&redirect_url="+url.QueryEscape(e)+"&code_challenge="+strings.Repeat("A", 43), "", 0, "", 0)
		add("POST", 6, "", "", "csrf_token={csrf}&provider=corp&"+q, 0, "", 1)
	}
	for _, p := range []string{"/../account", "//sign-out", "/SIGN-OUT", "/sign-out/", "/oauth/corp/start/x", "/oauth//start",
		"/oauth/corp%2Fstart", "/api/v1/../v1/users", "/api/v1/users/../../me", "/api/v1//users", "/api/v1/users/%00",
		"/oauth/" + strings.Repeat("a", 5000) + "/start", "/\r\n"} {
		add("GET", n, p, "", "", 0, "", 1)
		add("POST", n, p, "", "csrf_token={csrf}", 0, "Bearer {key}", 1)
	}
	add("POST", 11, "", "", `{"rotating_token_nonce":"`+strings.Repeat("A", 43)+`","code_verifier":"`+strings.Repeat("v", 43)+`"}`, 1, "", 0)
	add("POST", 10, "", "", `{"id_token":"a.b.c","code":"c","nonce":"n","provider":"corp\r\n"}`, 1, "", 0)
	add("POST", 1, "", "", strings.Repeat("csrf_token=x&", 6000), 0, "", 1)
	add("DELETE", 16, "/api/v1/users/{user}", "", "", 0, "Bearer {key}", 1)
	add("GET", 16, "", "api_key={key}&session_token={token}", "", 0, "", 0)
	add("GET", 4, "", "session_token={token}&__session={token}", "", 0, "Bearer {token}", 0)
	add("GET", 4, "", "", "", 0, "Basic {key}", 0)

	f.Fuzz(func(t *testing.T, method string, pick uint8, path, query, body string, ctype uint8, auth string, flags uint8) {
		sess, cookie := fg.signIn(t)
		accounts, _ := fg.st.ExternalAccounts(context.Background(), sess.UserID)
		fill := strings.NewReplacer("{csrf}", fg.sessions.CSRFToken(sess.ID), "{key}", fuzzAPIKey, "{token}", cookie,
			"{user}", sess.UserID, "{account}", accounts[0].ID)
		if pick < n {
			path = fuzzEndpoints[pick]
		}
		path = DefaultPrefix + fill.Replace(path)
		query, body, auth = fill.Replace(query), fill.Replace(body), fill.Replace(auth)
		r, err := http.NewRequest(method, "http://gw.example/", strings.NewReader(body))
		if err != nil {
			r, _ = http.NewRequest(http.MethodGet, "http://gw.example/", strings.NewReader(body))
		}
		r.URL.Path, r.URL.RawQuery = path, query
		r.Host = fuzzHosts[int(flags>>4)%len(fuzzHosts)]
		r.RemoteAddr = "192.0.2.1:1234"
		if ct := fuzzContentTypes[int(ctype)%len(fuzzContentTypes)]; ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if flags&1 != 0 {
			r.AddCookie(&http.Cookie{Name: session.CookieName, Value: cookie})
		}
		if flags&2 != 0 {
			r.Header.Set("Accept", "text/html")
		} else {
			r.Header.Set("Accept", "application/json")
		}
		if flags&4 != 0 {
			r.Header.Set("X-Forwarded-Host", "evil.example")
			r.Header.Set("X-Forwarded-Proto", "https")
			r.Header.Set("Forwarded", "host=evil.example;proto=https")
		}
		w := httptest.NewRecorder()
		fg.ServeHTTP(w, r)
		resp := w.Result()

		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("%s %s?%.200s: status %d: %.300s", method, path, query, resp.StatusCode, w.Body.String())
		}
		if fg.calls.Load() != 0 {
			t.Fatalf("%s %s?%.200s reached the provider's back channel", method, path, query)
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				if !headerClean(k) || !headerClean(v) {
					t.Fatalf("%s %s?%.200s: response header %q: %q carries CR, LF or NUL", method, path, query, k, v)
				}
			}
		}
		if loc := resp.Header.Get("Location"); loc != "" {
			u, err := url.Parse(loc)
			switch {
			case err != nil:
				t.Fatalf("Location %q does not parse", loc)
			case strings.HasPrefix(loc, fg.authorize+"?"):
				// To the provider; the callback it names is on the Host the
				// request came to, or (a Host with a non-numeric port) is no
				// URL at all, which no provider redirects to.
				cb, err := url.Parse(u.Query().Get("redirect_uri"))
				if err == nil && (cb.Host != r.Host || cb.User != nil || cb.Path != DefaultPrefix+"/oauth/corp/callback") {
					t.Fatalf("the provider is told to call back %q for Host %q", u.Query().Get("redirect_uri"), r.Host)
				}
			case loc == "https://app.example/after" || strings.HasPrefix(loc, "https://app.example/after?"):
			case u.Scheme != "" || u.Host != "" || u.Opaque != "" || !strings.HasPrefix(loc, "/") ||
				strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\"):
				t.Fatalf("%s %s?%.200s sends the browser to %q", method, path, query, loc)
			}
		}
		for _, c := range resp.Cookies() {
			if c.Name == session.CookieName && c.Value != "" {
				t.Fatalf("%s %s set a session cookie without a sign-in", method, path)
			}
		}
		// State changes need a POST with the session's CSRF token, or the API key.
		_, err = fg.st.Session(context.Background(), sess.ID)
		ended := errors.Is(err, store.ErrNotFound)
		keyed := r.Header.Get("Authorization") == "Bearer "+fuzzAPIKey
		csrf := strings.Contains(body, fg.sessions.CSRFToken(sess.ID))
		if ended && !keyed && !(r.Method == http.MethodPost && csrf && flags&1 != 0) {
			t.Fatalf("%s %s?%.200s ended the session without the CSRF token in a POST or the API key", method, path, query)
		}
		if _, err := fg.st.User(context.Background(), sess.UserID); errors.Is(err, store.ErrNotFound) && !keyed {
			t.Fatalf("%s %s deleted the user without the API key", method, path)
		}
	})
}
