package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// newVerifyGW is a gateway with forward auth on at https://auth.example.com,
// whose trusted proxy is the peer 10.0.0.1, with the policy "admins" (corp
// group admins), "tokens" (corp's token in X-Auth-Token-Corp), "custom"
// (corp's token in X-Corp-Token) and "scoped" (corp's scope admin).
func newVerifyGW(t testing.TB) *testGW {
	return newTestGW(t, func(cfg *Config) {
		cfg.CookieDomain = "example.com"
		cfg.ForwardAuth = &ForwardAuth{
			URL: "https://auth.example.com",
			Policies: map[string]Route{
				"admins": {AllowGroups: []string{"corp:admins"}},
				"tokens": {Forward: []Forward{{Provider: "corp"}}},
				"custom": {Forward: []Forward{{Provider: "corp", Header: "X-Corp-Token"}}},
				"scoped": {Require: []Requirement{{Provider: "corp", Scopes: []string{"admin"}}}},
			},
			Trusted: func(r *http.Request) bool { return strings.HasPrefix(r.RemoteAddr, "10.0.0.1:") },
		}
	})
}

// ask sends a verify request from peer with the given headers.
func (tg *testGW) ask(path, peer string, h http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "http://gateway.internal"+path, nil)
	r.RemoteAddr = peer
	for k, v := range h {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	tg.ServeHTTP(w, r)
	return w
}

const proxy = "10.0.0.1:5000"

func nginxAsks(rawURL, cookie string, extra ...string) http.Header {
	h := http.Header{"X-Original-Url": {rawURL}, "X-Original-Method": {"GET"}, "Accept": {"text/html"}}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	for i := 0; i < len(extra); i += 2 {
		if extra[i] == "Accept" {
			h.Del("Accept")
		}
		h.Add(extra[i], extra[i+1])
	}
	return h
}

func traefikAsks(host, uri, cookie string, extra ...string) http.Header {
	h := http.Header{"X-Forwarded-Method": {"GET"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {host},
		"X-Forwarded-Uri": {uri}, "X-Forwarded-For": {"203.0.113.7"}, "Accept": {"text/html,application/xhtml+xml"}}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	for i := 0; i < len(extra); i += 2 {
		if extra[i] == "Accept" {
			h.Del("Accept")
		}
		h.Add(extra[i], extra[i+1])
	}
	return h
}

func TestVerify_AnswersIdentityForALiveSession(t *testing.T) {
	tg := newVerifyGW(t)
	s, cookie := tg.signIn(t, "ada")
	c := session.DomainCookieName + "=" + cookie
	for name, h := range map[string]http.Header{
		"nginx":   nginxAsks("https://app1.example.com/a?b=c", c),
		"traefik": traefikAsks("app2.example.com", "/x", c),
	} {
		w := tg.ask("/_auth/verify", proxy, h)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: verify = %d %s, want 200", name, w.Code, w.Body)
		}
		if got := w.Header().Get("X-Auth-User-Id"); got != s.UserID {
			t.Errorf("%s: X-Auth-User-Id = %q, want %q", name, got, s.UserID)
		}
		if got := w.Header().Get("X-Auth-User-Email"); got != "ada@example.com" {
			t.Errorf("%s: X-Auth-User-Email = %q", name, got)
		}
		if claims := tg.claims(t, w.Header().Get("X-Auth-Jwt")); claims.Subject != s.UserID {
			t.Errorf("%s: the identity token is for %q", name, claims.Subject)
		}
		if w.Body.Len() != 0 {
			t.Errorf("%s: a body on 200: %q", name, w.Body)
		}
	}
}

func TestVerify_NoSessionIsASignInOnTheGatewaysOrigin(t *testing.T) {
	tg := newVerifyGW(t)
	want := "https://auth.example.com/_auth/sign-in?return_to=" + url.QueryEscape("https://app1.example.com/a?b=c")

	// nginx takes only 2xx, 401 and 403: 401, the address in Location.
	w := tg.ask("/_auth/verify", proxy, nginxAsks("https://app1.example.com/a?b=c", ""))
	if w.Code != http.StatusUnauthorized || w.Header().Get("Location") != want {
		t.Fatalf("nginx: verify = %d Location %q, want 401 %q", w.Code, w.Header().Get("Location"), want)
	}
	// Traefik passes the answer to the browser: a navigation is redirected.
	w = tg.ask("/_auth/verify", proxy, traefikAsks("app1.example.com", "/a?b=c", ""))
	if w.Code != http.StatusFound || w.Header().Get("Location") != want {
		t.Fatalf("traefik: verify = %d Location %q, want 302 %q", w.Code, w.Header().Get("Location"), want)
	}
	// A fetch through Traefik gets 401 JSON, and the address in Location.
	h := traefikAsks("app1.example.com", "/a?b=c", "")
	h.Set("Accept", "application/json")
	w = tg.ask("/_auth/verify", proxy, h)
	if w.Code != http.StatusUnauthorized || w.Header().Get("Location") != want || !strings.Contains(w.Body.String(), "unauthenticated") {
		t.Fatalf("traefik fetch: verify = %d Location %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
}

func TestVerify_OnlyATrustedProxyNamesTheRequest(t *testing.T) {
	tg := newVerifyGW(t)
	_, cookie := tg.signIn(t, "ada")
	c := session.DomainCookieName + "=" + cookie
	for name, tc := range map[string]struct {
		peer string
		h    http.Header
		want int
	}{
		"a client calling verify itself":        {"203.0.113.7:1234", nginxAsks("https://app1.example.com/", c), http.StatusForbidden},
		"a client calling without headers":      {"203.0.113.7:1234", http.Header{"Cookie": {c}}, http.StatusForbidden},
		"a client's X-Original-URL via Traefik": {proxy, traefikAsks("app1.example.com", "/", c, "X-Original-Url", "https://evil.test/"), http.StatusBadRequest},
		"a client's X-Forwarded-Uri via nginx":  {proxy, nginxAsks("https://app1.example.com/", c, "X-Forwarded-Uri", "/x"), http.StatusBadRequest},
		"a second host":                         {proxy, traefikAsks("app1.example.com", "/", c, "X-Forwarded-Host", "evil.test"), http.StatusBadRequest},
		"userinfo in the URL":                   {proxy, nginxAsks("https://app1.example.com@evil.test/", c), http.StatusBadRequest},
		"no original URL at all":                {proxy, http.Header{"Cookie": {c}}, http.StatusBadRequest},
		"a policy that does not exist":          {proxy, nginxAsks("https://app1.example.com/", c), http.StatusNotFound},
	} {
		path := "/_auth/verify"
		if name == "a policy that does not exist" {
			path += "/nope"
		}
		w := tg.ask(path, tc.peer, tc.h)
		if w.Code != tc.want {
			t.Errorf("%s: verify = %d %s, want %d", name, w.Code, w.Body, tc.want)
		}
		if w.Header().Get("X-Auth-User-Id") != "" || w.Header().Get("X-Auth-Jwt") != "" {
			t.Errorf("%s: identity headers on a refusal", name)
		}
	}
}

func TestVerify_TheCookieFollowsTheBrowsersScheme(t *testing.T) {
	tg := newVerifyGW(t)
	_, cookie := tg.signIn(t, "ada")
	// Over HTTPS only the __Secure- domain cookie counts: a plain-named
	// one (which a plain-HTTP answer can plant) is no session there.
	w := tg.ask("/_auth/verify", proxy, nginxAsks("https://app1.example.com/", session.CookieName+"="+cookie))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("a plain cookie on an HTTPS request: verify = %d, want 401", w.Code)
	}
	w = tg.ask("/_auth/verify", proxy, nginxAsks("http://app1.example.com/", session.CookieName+"="+cookie))
	if w.Code != http.StatusOK {
		t.Fatalf("a plain cookie on an HTTP request: verify = %d, want 200", w.Code)
	}
}

func TestVerify_NamedPoliciesApplyTheirRules(t *testing.T) {
	tg := newVerifyGW(t)
	_, cookie := tg.signIn(t, "ada")
	c := session.DomainCookieName + "=" + cookie
	// ada is in no group: the admins policy refuses her, 403 for nginx too.
	w := tg.ask("/_auth/verify/admins", proxy, nginxAsks("https://admin.example.com/", c))
	if w.Code != http.StatusForbidden || w.Header().Get("X-Auth-User-Id") != "" {
		t.Fatalf("admins: verify = %d, want 403", w.Code)
	}
	// The tokens policy forwards corp's access token.
	w = tg.ask("/_auth/verify/tokens", proxy, nginxAsks("https://api.example.com/", c))
	if w.Code != http.StatusOK || w.Header().Get("X-Auth-Token-Corp") != "at-ada" {
		t.Fatalf("tokens: verify = %d, token %q", w.Code, w.Header().Get("X-Auth-Token-Corp"))
	}
	// A member of admins passes.
	res := tg.user(t, "root", func(a *store.ExternalAccount) { a.Groups = []string{"admins"} })
	rec := httptest.NewRecorder()
	if _, err := tg.sessions.Start(t.Context(), rec, httptest.NewRequest(http.MethodGet, "https://auth.example.com/", nil), res.User, nil, session.Auth{AccountID: res.Account.ID}); err != nil {
		t.Fatal(err)
	}
	var root string
	for _, ck := range rec.Result().Cookies() {
		if ck.MaxAge > 0 {
			root = ck.Name + "=" + ck.Value
		}
	}
	w = tg.ask("/_auth/verify/admins", proxy, nginxAsks("https://admin.example.com/", root))
	if w.Code != http.StatusOK {
		t.Fatalf("a member of admins: verify = %d %s", w.Code, w.Body)
	}
}

func TestVerify_EnvoyAppendsTheOriginalPath(t *testing.T) {
	tg := newVerifyGW(t)
	_, cookie := tg.signIn(t, "ada")
	envoy := func(path, cookie string, extra ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "http://app1.example.com"+path, nil)
		r.RemoteAddr = proxy
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("Accept", "text/html")
		if cookie != "" {
			r.Header.Set("Cookie", session.DomainCookieName+"="+cookie)
		}
		for i := 0; i < len(extra); i += 2 {
			r.Header.Set(extra[i], extra[i+1])
		}
		w := httptest.NewRecorder()
		tg.ServeHTTP(w, r)
		return w
	}
	if w := envoy("/_auth/verify/default/app/x%2Fy?q=1", cookie); w.Code != http.StatusOK || w.Header().Get("X-Auth-User-Email") != "ada@example.com" {
		t.Fatalf("envoy with a session: %d %s", w.Code, w.Body)
	}
	w := envoy("/_auth/verify/default/app/x%2Fy?q=1", "")
	want := "https://auth.example.com/_auth/sign-in?return_to=" + url.QueryEscape("https://app1.example.com/app/x%2Fy?q=1")
	if w.Code != http.StatusFound || w.Header().Get("Location") != want {
		t.Fatalf("envoy without a session: %d %q, want 302 %q", w.Code, w.Header().Get("Location"), want)
	}
	if w := envoy("/_auth/verify/admins/app", cookie); w.Code != http.StatusForbidden {
		t.Fatalf("envoy under admins: %d, want 403", w.Code)
	}
	if w := envoy("/_auth/verify/default/app", cookie, "X-Original-Url", "https://evil.test/"); w.Code != http.StatusBadRequest {
		t.Fatalf("envoy with a client's X-Original-URL: %d, want 400", w.Code)
	}
}

func TestVerify_OffWithoutForwardAuth(t *testing.T) {
	tg := newTestGW(t, nil)
	w := tg.ask("/_auth/verify", proxy, nginxAsks("https://app1.example.com/", ""))
	if w.Code != http.StatusNotFound {
		t.Fatalf("verify without forward_auth = %d, want 404", w.Code)
	}
}

func TestVerify_ConfigMistakesFailAtLoad(t *testing.T) {
	trusted := func(*http.Request) bool { return true }
	for name, fa := range map[string]*ForwardAuth{
		"a URL with a path":      {URL: "https://auth.example.com/x", Trusted: trusted},
		"a URL without a scheme": {URL: "auth.example.com", Trusted: trusted},
		"no trust":               {URL: "https://auth.example.com"},
		"a bad policy name":      {URL: "https://auth.example.com", Trusted: trusted, Policies: map[string]Route{"a/b": {}}},
		"an unknown provider":    {URL: "https://auth.example.com", Trusted: trusted, Policies: map[string]Route{"x": {Require: []Requirement{{Provider: "nope"}}}}},
	} {
		_, err := New(Config{Store: newTestGW(t, nil).st, Identity: newTestGW(t, nil).identity,
			CookieSecrets: [][]byte{[]byte(strings.Repeat("k", 32))}, ForwardAuth: fa})
		if err == nil || !strings.Contains(err.Error(), "forward_auth") {
			t.Errorf("%s: New = %v, want an error naming forward_auth", name, err)
		}
	}
}

func TestVerify_AnUntrustedPeerLearnsNoPolicyName(t *testing.T) {
	tg := newVerifyGW(t)
	// Every name, existing or not, is 403 to a peer that is not a trusted
	// proxy: 404 for unknown names only would list the policies.
	for _, path := range []string{"/_auth/verify", "/_auth/verify/default", "/_auth/verify/admins", "/_auth/verify/nope", "/_auth/verify/nope/app/x"} {
		w := tg.ask(path, "203.0.113.7:1234", nginxAsks("https://app1.example.com/", "", "Accept", "application/json"))
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "untrusted_proxy") {
			t.Errorf("%s from an untrusted peer = %d %s, want 403 untrusted_proxy", path, w.Code, w.Body)
		}
	}
	// A trusted proxy still learns that a name does not exist.
	if w := tg.ask("/_auth/verify/nope", proxy, nginxAsks("https://app1.example.com/", "")); w.Code != http.StatusNotFound {
		t.Errorf("an unknown name from the trusted proxy = %d, want 404", w.Code)
	}
}

func TestVerify_RefusesTheClientsOwnGatewayHeaders(t *testing.T) {
	tg := newVerifyGW(t)
	_, cookie := tg.signIn(t, "ada")
	c := session.DomainCookieName + "=" + cookie
	// Each proxy copies the client's headers into its question: any name in
	// the gateway's namespace, in any spelling an upstream reads as one, is
	// a client's, and refused whatever the proxy copies back.
	for _, tc := range []struct{ path, name string }{
		{"/_auth/verify", "X-Auth-User-Groups"},
		{"/_auth/verify", "X-Auth-User-Email-Verified"},
		{"/_auth/verify", "X-Auth-Session-Id"},
		{"/_auth/verify", "x-auth-user-id"},
		{"/_auth/verify", "X_Auth_User_Id"},
		{"/_auth/verify", "X.Auth.User.Id"},
		{"/_auth/verify", "X-AUTH_JWT"},
		{"/_auth/verify", "X-Auth-Anything-Else"},
		{"/_auth/verify/tokens", "X-Auth-Token-Corp"},
		{"/_auth/verify/custom", "X-Corp-Token"},
		{"/_auth/verify/custom", "x_corp.token"},
		{"/_auth/verify/default/app", "X-Auth-User-Groups"}, // Envoy's form
	} {
		h := nginxAsks("https://app1.example.com/", c, "Accept", "application/json")
		if strings.Contains(tc.path, "/default/") {
			h = traefikAsks("app1.example.com", "", c, "Accept", "application/json")
			delete(h, "X-Forwarded-Uri")
		}
		h[tc.name] = []string{"corp:admins"}
		w := tg.ask(tc.path, proxy, h)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"header_not_allowed"`) ||
			!strings.Contains(w.Body.String(), "the gateway's namespace") {
			t.Errorf("%s with the client's %s: %d %s, want 400 header_not_allowed", tc.path, tc.name, w.Code, w.Body)
		}
		if len(w.Header()["X-Auth-User-Id"]) > 0 {
			t.Errorf("%s with the client's %s: identity headers on the refusal", tc.path, tc.name)
		}
	}
	// A navigation reads the refusal in its language.
	h := traefikAsks("app1.example.com", "/", c, "Accept-Language", "de", "X-Auth-User-Groups", "corp:admins")
	if w := tg.ask("/_auth/verify", proxy, h); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "Namensraum des Gateways") {
		t.Errorf("a navigation with the client's X-Auth-User-Groups: %d %s, want 400 in German", w.Code, w.Body)
	}
	// Another policy's forward_token header, and names that only look
	// alike, are the client's own business.
	for _, name := range []string{"X-Corp-Token", "X-Authorization", "X-Auth", "Authorization"} {
		h := nginxAsks("https://app1.example.com/", c)
		h[name] = []string{"x"}
		if w := tg.ask("/_auth/verify", proxy, h); w.Code != http.StatusOK {
			t.Errorf("the default policy with the client's %s: %d %s, want 200", name, w.Code, w.Body)
		}
	}
}

func TestVerify_TheAnswerNamesEveryIdentityHeader(t *testing.T) {
	tg := newVerifyGW(t)
	// mallory has no verified address, no name and no group: each header
	// is still in the answer, empty, so that a proxy copying a fixed list
	// overwrites a client's copy of each.
	res := tg.user(t, "mallory", func(a *store.ExternalAccount) { a.EmailVerified, a.Name = false, "" })
	rec := httptest.NewRecorder()
	if _, err := tg.sessions.Start(t.Context(), rec, httptest.NewRequest(http.MethodGet, "https://auth.example.com/", nil), res.User, nil, session.Auth{AccountID: res.Account.ID}); err != nil {
		t.Fatal(err)
	}
	var c string
	for _, ck := range rec.Result().Cookies() {
		if ck.MaxAge > 0 {
			c = ck.Name + "=" + ck.Value
		}
	}
	for path, want := range map[string]map[string]string{
		"/_auth/verify": {HeaderUserEmail: "", HeaderUserEmailVerified: "false", HeaderUserName: "", HeaderUserGroups: ""},
		"/_auth/verify/custom": {HeaderUserEmail: "", HeaderUserEmailVerified: "false", HeaderUserName: "", HeaderUserGroups: "",
			"X-Corp-Token": "at-mallory"},
	} {
		w := tg.ask(path, proxy, nginxAsks("https://app1.example.com/", c))
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		for _, name := range []string{HeaderUserID, HeaderSessionID, HeaderIdentity} {
			if v := w.Header()[name]; len(v) != 1 || v[0] == "" {
				t.Errorf("%s: %s = %q, want one value", path, name, v)
			}
		}
		for name, value := range want {
			if v, ok := w.Header()[name]; !ok || len(v) != 1 || v[0] != value {
				t.Errorf("%s: %s = %q (present %v), want [%q]", path, name, v, ok, value)
			}
		}
	}
}

func TestVerify_NothingItAnswersCarriesASessionBoundToken(t *testing.T) {
	tg := newVerifyGW(t)
	s, cookie := tg.signIn(t, "ada")
	c := session.DomainCookieName + "=" + cookie
	csrf := tg.sessions.CSRFToken(s.ID)
	// Caddy's forward_auth and Traefik hand a refusal to the browser on the
	// app's host: it carries no CSRF token the app's scripts could read,
	// and its links go to the gateway's own pages.
	for _, tc := range []struct {
		name, path string
		h          http.Header
		want       int
	}{
		{"not admitted, a page", "/_auth/verify/admins", traefikAsks("app1.example.com", "/", c), http.StatusForbidden},
		{"not admitted, JSON", "/_auth/verify/admins", traefikAsks("app1.example.com", "/", c, "Accept", "application/json"), http.StatusForbidden},
		{"a scope missing, a page", "/_auth/verify/scoped", traefikAsks("app1.example.com", "/", c), http.StatusFound},
		{"a scope missing, JSON", "/_auth/verify/scoped", traefikAsks("app1.example.com", "/", c, "Accept", "application/json"), http.StatusForbidden},
		{"no session, JSON", "/_auth/verify", traefikAsks("app1.example.com", "/", "", "Accept", "application/json"), http.StatusUnauthorized},
		{"no session, a page", "/_auth/verify", traefikAsks("app1.example.com", "/", ""), http.StatusFound},
		{"the client's X-Auth header", "/_auth/verify", traefikAsks("app1.example.com", "/", c, "X-Auth-User-Groups", "x"), http.StatusBadRequest},
		{"no such policy", "/_auth/verify/nope", traefikAsks("app1.example.com", "/", c), http.StatusNotFound},
		{"a forwarded request named wrongly", "/_auth/verify", traefikAsks("app1.example.com", "x", c), http.StatusBadRequest},
		{"an untrusted peer", "/_auth/verify", traefikAsks("app1.example.com", "/", c), http.StatusForbidden},
	} {
		peer := proxy
		if tc.name == "an untrusted peer" {
			peer = "203.0.113.7:1234"
		}
		w := tg.ask(tc.path, peer, tc.h)
		body := w.Body.String()
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.want)
		}
		if strings.Contains(body, csrf) || strings.Contains(body, "csrf_token") {
			t.Errorf("%s: the answer carries the session's CSRF token: %s", tc.name, body)
		}
		for _, rel := range []string{`href="/`, `action="/`, `"/_auth/`, `Location: /`} {
			if strings.Contains(body, rel) {
				t.Errorf("%s: a link relative to the app's host (%s) in %s", tc.name, rel, body)
			}
		}
		if loc := w.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, "https://auth.example.com/_auth/") {
			t.Errorf("%s: Location %q, want the gateway's", tc.name, loc)
		}
	}
	// The not-admitted page still offers to sign out: a link to the
	// gateway's sign-out page, whose form carries the token there.
	w := tg.ask("/_auth/verify/admins", proxy, traefikAsks("app1.example.com", "/", c))
	if !strings.Contains(w.Body.String(), `href="https://auth.example.com/_auth/sign-out"`) {
		t.Errorf("the not-admitted page links no sign-out on the gateway: %s", w.Body)
	}
}

// A proxy's router compares the path as sent, the gateway the decoded one:
// verify answers only its clean spelling, every other spelling of it is
// the gateway's 404, even from a trusted proxy with a session (Traefik's
// public router, which keeps /_auth/verify out, lets /_auth%2fverify in).
func TestVerify_OnlyItsCleanSpellingIsVerify(t *testing.T) {
	tg := newVerifyGW(t)
	_, cookie := tg.signIn(t, "ada")
	h := nginxAsks("https://app1.example.com/a", session.DomainCookieName+"="+cookie, "Accept", "application/json")
	for _, path := range []string{"/_auth%2fverify", "/_auth%2Fverify", "/_auth%2Fverify/admins", "/_auth%2Fverify/nosuch",
		"/%5fauth/verify", "/%5Fauth/verify/tokens", "/_auth/%76erify", "/_%61uth/verify", "/_auth/verify%2fadmins",
		"/_auth/verify%2Ftokens", "/_auth/verify/%61dmins", "/_auth/verify/tokens%2fapp/x", "/_auth%2fverify/default/app"} {
		w := tg.ask(path, proxy, h)
		if w.Code != http.StatusNotFound || w.Header().Get("X-Auth-User-Id") != "" || !strings.Contains(w.Body.String(), `"not_found"`) {
			t.Errorf("%s: %d %s %q; want the gateway's 404", path, w.Code, w.Header().Get("X-Auth-User-Id"), w.Body)
		}
	}
	// Envoy's form: the original path after the policy keeps its escapes.
	envoy := http.Header{"Cookie": h["Cookie"], "Accept": h["Accept"], "X-Forwarded-Proto": {"https"}}
	for path, h := range map[string]http.Header{"/_auth/verify": h, "/_auth/verify/tokens": h,
		"/_auth/verify/default/app/x%2Fy": envoy, "/_auth/verify/tokens/%61pp": envoy} {
		if w := tg.ask(path, proxy, h); w.Code != http.StatusOK || w.Header().Get("X-Auth-User-Id") == "" {
			t.Errorf("%s: %d %s; want 200 with the identity", path, w.Code, w.Body)
		}
	}
}
