package caddymodule_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// The adversarial suite: every class of docs/security.md's threat model through the
// real gateway behind Caddy, with payloads generated per class rather than
// the listed examples only. It extends the feature tests (reject_test.go,
// headers_test.go, native_test.go, linking_test.go, ratelimit_test.go) and
// asserts on what a browser, an API client or the upstream observes.

// advAPIKey is the backend API key of the adversarial env. Tests send it
// where it does not belong (query strings, bodies); the leak check knows it.
const advAPIKey = "sk_adversarial_0123456789abcdefghijklmn"

// newAdvEnv runs the gateway with the dev provider, an oidc provider corp
// (an auto-approving local issuer), the API, an allowlisted return URL and
// native redirect URL, and no abuse limits unless extra sets them (the
// suite sends thousands of requests from one address).
func newAdvEnv(t *testing.T, extra string) (*env, *testop.Server) {
	t.Helper()
	op := startOP(t, testop.Options{})
	watchSecrets(func() []string { return []string{advAPIKey} })
	e := newEnv(t, options{Global: fmt.Sprintf(`provider oidc corp {
			issuer %s
			client_id test-client
			client_secret test-secret
		}
		api_key %s
		return_urls https://app.example/after
		redirect_urls myapp://cb
		rate_limit start 0 1m
		rate_limit callback 0 1m
		rate_limit native 0 1m
		rate_limit api 0 1m
		%s`, op.URL(), advAPIKey, extra)})
	return e, op
}

// advClient is a client that shows every hop and keeps no cookies.
var advClient = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

// advDo sends a request and returns the answer with its body read.
func advDo(t *testing.T, method, rawURL string, header http.Header, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := advClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// advAPI calls the backend API with the adversarial env's key.
func advAPI(t *testing.T, e *env, method, path string) (int, any) {
	t.Helper()
	resp, body := advDo(t, method, e.Base+"/_auth/api/v1"+path, http.Header{"Authorization": {"Bearer " + advAPIKey}}, nil)
	var out any
	json.Unmarshal([]byte(body), &out)
	return resp.StatusCode, out
}

// advRaw sends bytes as they are (no client-side cleaning of the path, the
// Host or the headers) and reads the answer.
func advRaw(t *testing.T, e *env, request string) (*http.Response, string) {
	t.Helper()
	return advRawFrom(t, "", strings.TrimPrefix(e.Base, "http://"), request)
}

func advRawFrom(t *testing.T, local, addr, request string) (*http.Response, string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", request, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// sessionCookie returns the Cookie header of a browser's session.
func sessionCookie(b *browser, e *env) string {
	return "socialgate_session=" + b.cookie(e.Base, "socialgate_session")
}

// signedInAs answers who the gateway takes a Cookie header for: the user id
// the upstream sees, or "" when the request did not get through.
func signedInAs(t *testing.T, e *env, cookie string) string {
	t.Helper()
	resp, _ := advDo(t, http.MethodGet, e.Base+"/whoami", http.Header{"Cookie": {cookie}, "Accept": {"application/json"}}, nil)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return e.Upstream.Last(t).Get("X-Auth-User-Id")
}

// landsOnSite reports whether a Location keeps a browser on the site (a
// path on its origin, however a browser reads it: no scheme, no authority,
// no backslash, no character a browser strips or folds) or sends it to the
// exactly allowlisted return URL.
func landsOnSite(base, loc string) bool {
	if loc == "https://app.example/after" || strings.HasPrefix(loc, "https://app.example/after?") {
		return !strings.ContainsAny(loc, "#@\\")
	}
	for i := 0; i < len(loc); i++ {
		if loc[i] <= ' ' || loc[i] >= 0x7f || loc[i] == '\\' {
			return false
		}
	}
	if !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
		return false
	}
	b, _ := url.Parse(base)
	ref, err := url.Parse(loc)
	if err != nil {
		return false
	}
	r := b.ResolveReference(ref)
	return r.Scheme == b.Scheme && r.Host == b.Host && r.User == nil
}

// hostileReturnTos generates return-to values that must fall back to "/":
// every way of writing "another origin" that some browser, proxy or
// framework reads as one, on several hosts.
func hostileReturnTos() []string {
	hosts := []string{"evil.example", "evil.example:8443/x?y=1", "app.example@evil.example", "127.0.0.1.evil.example"}
	prefixes := []string{
		"//", "///", "////", "/\\", "\\\\", "\\/", "/\\/", "/%2F", "/%2f", "%2F%2F", "/%252F", "/%25252F", "/%5C", "/%5c",
		"/\t/", "/\n/", "/\r/", "/%09/", "/%0A/", "/%0D/", "/%00/", " //", "/ /", "/%20/", "//%20", "/./%2F", "/.//", "/%2e//",
		"/%2e%2e//", "/x/..//", "/x/%2e%2e//", "/\u2044", "/\uFF0F", "/\u2215", "/%E2%81%84", "/%EF%BC%8F", "/\u00a0/",
		"https://", "http://", "HTTPS://", "hTtP://", "https:", "https:/", "https:\\\\", "http:/\\", "ftp://", "ws://",
		"//\\", "/\\\\", "/%5C%5C", "/%09%2F", "\u3002//", "/\u200b/", "/%E2%80%8B/",
	}
	var out []string
	for _, p := range prefixes {
		for _, h := range hosts {
			out = append(out, p+h)
		}
	}
	out = append(out,
		"javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "javascript://%0aalert(1)",
		" javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "/#javascript:alert(1)",
		"/#//evil.example", "/\r\nSet-Cookie: x=1", "/%0d%0aSet-Cookie:%20x=1",
		"/%0d%0aLocation:%20//evil.example", "/\u2028//evil.example", "evil.example", "./evil", "../evil", "?//evil.example",
		"@evil.example", "/"+strings.Repeat("a", 3000),
		// The allowlisted URL, almost.
		"https://app.example/after@evil.example", "https://app.example.evil.example/after", "https://app.example:444/after",
		"http://app.example/after", "https://app.example/after/../../evil", "https://app.example/After",
		"https://user@app.example/after", "https://app.example/after#@evil.example", "https://app.example\\@evil.example/after",
		"https://app.example%2F@evil.example/after", "https://APP.example/after\t",
	)
	return out
}

// benignReturnTos must come back exactly as asked: without them the
// fallback test would pass on a gateway that always answers "/".
var benignReturnTos = []string{"/inbox", "/inbox?tab=2&q=%2F%2F#frag", "/caf%C3%A9/menu", "/a/b/c/", "https://app.example/after", "https://app.example/after?x=1"}

func TestAdversarial_ReturnToNeverLeavesTheSite(t *testing.T) {
	e, _ := newAdvEnv(t, "")
	signedIn := newBrowser(t)
	signInCorp(signedIn, e)

	// Through the whole flow: start (POST form and GET query), provider,
	// callback; the callback's Location is where the browser ends up.
	land := func(t *testing.T, b *browser, returnTo string, viaGET bool) string {
		t.Helper()
		var resp *http.Response
		if viaGET {
			resp, _ = b.get(e.Base + "/_auth/oauth/corp/start?return_to=" + url.QueryEscape(returnTo))
		} else {
			resp, _ = b.post(e.Base+"/_auth/oauth/corp/start", url.Values{"return_to": {returnTo}})
		}
		resp, _ = b.get(location(t, resp)) // the provider approves
		resp, _ = b.get(location(t, resp)) // the callback
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("callback: status %d", resp.StatusCode)
		}
		return resp.Header.Get("Location")
	}
	for i, rt := range hostileReturnTos() {
		t.Run(fmt.Sprintf("hostile-%03d", i), func(t *testing.T) {
			b := newBrowser(t)
			if loc := land(t, b, rt, i%2 == 0); loc != "/" {
				t.Errorf("return_to %q: the sign-in ends at %q, want /", rt, loc)
			}
			// The sign-in page carries it to its buttons, sanitized.
			resp, page := newBrowser(t).get(e.Base + "/_auth/sign-in?return_to=" + url.QueryEscape(rt))
			if v := html.UnescapeString(between(page, `name="return_to" value="`, `"`)); resp.StatusCode != http.StatusOK || !landsOnSite(e.Base, v) {
				t.Errorf("return_to %q: sign-in page status %d carries %q", rt, resp.StatusCode, v)
			}
			// A signed-in visitor is sent on at once.
			resp, _ = signedIn.get(e.Base + "/_auth/sign-in?return_to=" + url.QueryEscape(rt))
			if loc := resp.Header.Get("Location"); !landsOnSite(e.Base, loc) {
				t.Errorf("return_to %q: a signed-in visitor is sent to %q", rt, loc)
			}
		})
	}
	for _, rt := range benignReturnTos {
		if loc := land(t, newBrowser(t), rt, false); loc != rt {
			t.Errorf("benign return_to %q came back as %q", rt, loc)
		}
	}
	// A protected page remembers where the browser was going; the challenge
	// never sends it elsewhere, whatever the request path looks like.
	for _, p := range []string{"//evil.example/x", "/%2F%2Fevil.example", "/\\evil.example", "/a?next=https://evil.example"} {
		resp, _ := advRaw(t, e, "GET "+p+" HTTP/1.1\r\nHost: "+strings.TrimPrefix(e.Base, "http://")+"\r\nAccept: text/html\r\nConnection: close\r\n\r\n")
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "/_auth/sign-in?return_to=") || !landsOnSite(e.Base, loc) {
			t.Errorf("GET %s: challenge Location %q", p, loc)
		}
	}
}

// injected are values that would split a header if copied into one.
var injected = []string{
	"\r\nX-Injected: 1", "\nX-Injected: 1", "\rX-Injected: 1", "a\x00b", "%0d%0aX-Injected:%201", "%250d%250aX-Injected:%201",
	"\u010d\u010aX-Injected: 1", "\u2028X-Injected: 1", "\x1b[31m\x7f", "\"><script>alert(1)</script>",
}

// checkClean fails when an answer shows an injected header, a control
// character in a header, a gateway cookie a script could read or another
// site could send, or a server error.
func checkClean(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	if resp.StatusCode >= 500 {
		t.Errorf("%s: status %d", what, resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "socialgate_") && (!c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "") {
			t.Errorf("%s: cookie %s: HttpOnly %v, SameSite %v, Path %q, Domain %q", what, c.Name, c.HttpOnly, c.SameSite, c.Path, c.Domain)
		}
	}
	for k, vs := range resp.Header {
		if strings.EqualFold(k, "X-Injected") {
			t.Errorf("%s: the answer has an injected header %s", what, k)
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00\x1b\x7f") || strings.Contains(v, "X-Injected: 1") || strings.Contains(v, "<script>") {
				t.Errorf("%s: header %s = %q", what, k, v)
			}
		}
	}
}

func TestAdversarial_ControlCharactersNeverReachAHeader(t *testing.T) {
	e, op := newAdvEnv(t, "")
	b := newBrowser(t)
	signInCorp(b, e)
	cookie := sessionCookie(b, e)
	_, csrf := b.accountPage(e)
	accountID := accountsOf(b.me(e))[0]["id"].(string)

	type probe struct {
		method, path string
		params       []string
		fixed        url.Values // other parameters, so the handler gets deep
	}
	withCSRF := url.Values{"csrf_token": {csrf}}
	probes := []probe{
		{"GET", "/_auth/sign-in", []string{"return_to"}, nil},
		{"GET", "/_auth/sign-out", []string{"return_to"}, nil},
		{"POST", "/_auth/sign-out", []string{"csrf_token", "return_to"}, nil},
		{"GET", "/_auth/signed-out", []string{"state"}, nil},
		{"POST", "/_auth/oauth/corp/backchannel-logout", []string{"logout_token"}, nil},
		{"GET", "/_auth/me", []string{"x"}, nil},
		{"GET", "/_auth/account", []string{"notice", "error"}, nil},
		{"POST", "/_auth/account/connect", []string{"provider", "return_to", "scopes", "csrf_token"}, url.Values{"csrf_token": {csrf}, "provider": {"corp"}}},
		{"POST", "/_auth/account/reauthorize", []string{"account_id", "return_to", "scopes"}, url.Values{"csrf_token": {csrf}, "account_id": {accountID}}},
		{"POST", "/_auth/account/disconnect", []string{"account_id"}, withCSRF},
		{"GET", "/_auth/reauthorize", []string{"provider", "scopes", "return_to"}, url.Values{"provider": {"corp"}}},
		{"GET", "/_auth/oauth/corp/start", []string{"return_to", "redirect_url", "code_challenge"}, nil},
		{"POST", "/_auth/oauth/corp/start", []string{"return_to", "redirect_url", "code_challenge"}, nil},
		{"GET", "/_auth/oauth/corp/callback", []string{"state", "code", "error", "iss", "user"}, nil},
		{"POST", "/_auth/oauth/corp/callback", []string{"state", "code", "error", "iss", "user"}, nil},
		{"POST", "/_auth/native/token", []string{"rotating_token_nonce", "code_verifier"}, nil},
		{"POST", "/_auth/native/nonce", []string{"code_challenge"}, nil},
		{"POST", "/_auth/native/id_token", []string{"provider", "id_token", "nonce", "code_verifier"}, nil},
		{"GET", "/_auth/api/v1/users", []string{"limit", "offset", "email_address", "user_id"}, nil},
		{"GET", "/_auth/api/v1/sessions", []string{"user_id"}, nil},
		{"GET", "/_auth/health", []string{"x"}, nil},
		{"GET", "/private", []string{"return_to", "next"}, nil},
	}
	for _, p := range probes {
		for _, param := range p.params {
			for _, payload := range injected {
				for _, signed := range []bool{false, true} {
					v := url.Values{}
					for k, vs := range p.fixed {
						v[k] = vs
					}
					v.Set(param, payload)
					h := http.Header{"Authorization": {"Bearer " + advAPIKey}, "Accept": {"text/html"}}
					if signed {
						h.Set("Cookie", cookie)
					}
					target, body := e.Base+p.path+"?"+v.Encode(), io.Reader(nil)
					if p.method == http.MethodPost {
						target, body = e.Base+p.path, strings.NewReader(v.Encode())
						h.Set("Content-Type", "application/x-www-form-urlencoded")
					}
					resp, _ := advDo(t, p.method, target, h, body)
					checkClean(t, fmt.Sprintf("%s %s %s=%q signed-in=%v", p.method, p.path, param, payload, signed), resp)
				}
			}
		}
	}
	// In the path: a provider name, a protected page.
	for _, payload := range injected {
		for _, path := range []string{"/_auth/oauth/" + url.PathEscape(payload) + "/start", "/private/" + url.PathEscape(payload),
			"/_auth/api/v1/users/" + url.PathEscape(payload)} {
			for _, accept := range []string{"text/html", "application/json"} {
				resp, _ := advDo(t, http.MethodGet, e.Base+path, http.Header{"Accept": {accept}, "Authorization": {"Bearer " + advAPIKey}}, nil)
				checkClean(t, "GET "+path, resp)
			}
		}
	}
	if b.me(e)["id"] == nil {
		t.Fatal("the probes ended the session")
	}

	// A provider's profile is data from outside: a name or an email with
	// line breaks and NULs reaches the upstream as one clean header each.
	op.SetClaims(map[string]any{"sub": "ctl-user", "name": "Eve\r\nX-Injected: 1\x00", "email": "eve\r\n@example.com\x7f",
		"email_verified": true})
	eve := newBrowser(t)
	if resp, _ := signInCorp(eve, e); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in with a hostile profile: status %d", resp.StatusCode)
	}
	for _, h := range e.Upstream.Requests() {
		for k, vs := range h {
			if strings.EqualFold(k, "X-Injected") {
				t.Errorf("the upstream received an injected header %s", k)
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n\x00\x7f") {
					t.Errorf("the upstream received %s = %q", k, v)
				}
			}
		}
	}
	if got := e.Upstream.Last(t).Get("X-Auth-User-Name"); got != "EveX-Injected: 1" {
		t.Errorf("X-Auth-User-Name = %q, want the name without its control characters", got)
	}
}

// spoofedForwarding is what a client may claim about the way it came.
var spoofedForwarding = http.Header{
	"X-Forwarded-Host":   {"evil.example"},
	"X-Forwarded-Proto":  {"https"},
	"X-Forwarded-Port":   {"443"},
	"X-Forwarded-Prefix": {"/evil"},
	"X-Forwarded-Server": {"evil.example"},
	"X-Forwarded-For":    {"203.0.113.9, 198.51.100.7"},
	"X-Real-Ip":          {"203.0.113.9"},
	"X-Client-Ip":        {"203.0.113.9"},
	"True-Client-Ip":     {"203.0.113.9"},
	"Forwarded":          {`for=203.0.113.9;host=evil.example;proto=https`},
	"X-Original-Url":     {"/_auth/api/v1/users"},
	"X-Rewrite-Url":      {"/_auth/api/v1/users"},
	"X-Host":             {"evil.example"},
	"X-Original-Host":    {"evil.example"},
}

func TestAdversarial_ForwardingHeadersNeverSteer(t *testing.T) {
	e, op := newAdvEnv(t, "")
	spoof := func(extra http.Header) http.Header {
		h := http.Header{}
		for k, v := range spoofedForwarding {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	base, _ := url.Parse(e.Base)

	// The challenge.
	resp, _ := advDo(t, http.MethodGet, e.Base+"/private/x?y=1", spoof(http.Header{"Accept": {"text/html"}}), nil)
	if loc := resp.Header.Get("Location"); loc != "/_auth/sign-in?return_to=%2Fprivate%2Fx%3Fy%3D1" {
		t.Errorf("challenge Location %q", loc)
	}
	resp, body := advDo(t, http.MethodGet, e.Base+"/private", spoof(http.Header{"Accept": {"application/json"}}), nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `"sign_in_url":"/_auth/sign-in?return_to=%2Fprivate"`) {
		t.Errorf("API challenge: %d %s", resp.StatusCode, body)
	}
	// X-Original-URL and friends do not reroute to the gateway's API.
	resp, _ = advDo(t, http.MethodGet, e.Base+"/_auth/health", spoof(nil), nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health with spoofed headers: %d", resp.StatusCode)
	}
	if n := len(e.Upstream.Requests()); n != 0 {
		t.Fatalf("unauthenticated requests with forwarding headers reached the upstream (%d)", n)
	}

	// A whole sign-in with the headers on every hop: the callback URL sent
	// to the provider and every redirect stay on the site as reached.
	b := newBrowser(t)
	hop := func(method, rawURL string, form url.Values) *http.Response {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, rawURL, body)
		for k, v := range spoof(nil) {
			req.Header[k] = v
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, _ := b.do(req)
		return resp
	}
	resp = hop(http.MethodPost, e.Base+"/_auth/oauth/corp/start", url.Values{"return_to": {"/inbox"}})
	resp = hop(http.MethodGet, location(t, resp), nil)
	if cb := op.LastAuthorizeQuery().Get("redirect_uri"); cb != e.Base+"/_auth/oauth/corp/callback" {
		t.Errorf("the provider was given the callback URL %q, want %q", cb, e.Base+"/_auth/oauth/corp/callback")
	}
	cb, _ := url.Parse(location(t, resp))
	if cb.Host != base.Host {
		t.Fatalf("the provider sends the browser back to %s", cb)
	}
	resp = hop(http.MethodGet, cb.String(), nil)
	if loc := resp.Header.Get("Location"); loc != "/inbox" {
		t.Errorf("after sign-in the browser is sent to %q, want /inbox", loc)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "socialgate_session" && (c.Secure || c.Domain != "") {
			// X-Forwarded-Proto: https must not make the gateway believe
			// it runs on TLS (a Secure cookie on plain HTTP is lost), nor
			// X-Forwarded-Host widen the cookie.
			t.Errorf("session cookie Secure=%v Domain=%q from spoofed headers", c.Secure, c.Domain)
		}
	}
	_, page := b.get(e.Base + "/_auth/sign-out")
	csrf := html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))
	resp = hop(http.MethodPost, e.Base+"/_auth/sign-out", url.Values{"csrf_token": {csrf}})
	if loc := resp.Header.Get("Location"); loc != "/_auth/sign-in?notice=signed_out" {
		t.Errorf("after sign-out the browser is sent to %q", loc)
	}
}

func TestAdversarial_ForwardingHeadersNeverChangeTheRateLimitIdentity(t *testing.T) {
	e, _ := newAdvEnv(t, "rate_limit start 3 1m")
	addr := strings.TrimPrefix(e.Base, "http://")
	start := func(local string, claim http.Header) int {
		t.Helper()
		var h strings.Builder
		for k, vs := range claim {
			for _, v := range vs {
				fmt.Fprintf(&h, "%s: %s\r\n", k, v)
			}
		}
		resp, _ := advRawFrom(t, local, addr, "POST /_auth/oauth/corp/start HTTP/1.1\r\nHost: "+addr+
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n"+h.String()+"Connection: close\r\n\r\n")
		return resp.StatusCode
	}
	// 127.0.0.1 claims to be four other clients, one of them 127.0.0.2.
	for i, claim := range []http.Header{
		{"X-Forwarded-For": {"127.0.0.2"}},
		{"X-Real-Ip": {"203.0.113.1"}, "Forwarded": {"for=203.0.113.1"}},
		{"X-Forwarded-For": {"203.0.113.2, 127.0.0.2"}, "True-Client-Ip": {"203.0.113.2"}},
	} {
		if status := start("127.0.0.1", claim); status != http.StatusSeeOther {
			t.Fatalf("start %d: status %d", i+1, status)
		}
	}
	if status := start("127.0.0.1", http.Header{"X-Forwarded-For": {"198.51.100.77"}, "Forwarded": {"for=198.51.100.77"}}); status != http.StatusTooManyRequests {
		t.Errorf("a 4th start claiming another address: status %d, want 429", status)
	}
	// The real 127.0.0.2 was never charged for what 127.0.0.1 claimed.
	if status := start("127.0.0.2", nil); status != http.StatusSeeOther {
		t.Errorf("another client after the spoofing flood: status %d, want 303", status)
	}
}

func TestAdversarial_OversizedBodiesChangeNothing(t *testing.T) {
	e, op := newAdvEnv(t, "")
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	b.connectCorp(e)
	other := newBrowser(t) // a second session of the same user
	other.signInDev(e, "/", ada)
	_, csrf := b.accountPage(e)
	me := b.me(e)
	corpAccount := accountID(me, "oauth_custom_corp")
	pad := strings.Repeat("a", 70<<10)
	redirectURLs := func() int {
		_, list := advAPI(t, e, http.MethodGet, "/redirect_urls")
		l, _ := list.([]any)
		return len(l)
	}
	urlsBefore := redirectURLs()

	// A pending flow and a native nonce, to see whether anything consumes them.
	flowBrowser := newBrowser(t)
	authorize := location(t, mustStatus(t, flowBrowser, http.MethodPost, e.Base+"/_auth/oauth/corp/start", url.Values{"return_to": {"/"}}, http.StatusSeeOther))
	resp, _ := flowBrowser.get(authorize)
	callback, _ := url.Parse(location(t, resp))
	app := newNativeApp()
	resp, _ = startNative(newBrowser(t), e, app, "myapp://cb")
	nativeBack, _ := url.Parse(location(t, resp))
	nonce := nativeBack.Query().Get("rotating_token_nonce")

	cases := []struct {
		path, ctype, body string
		browser           *browser
	}{
		{"/_auth/sign-out", "application/x-www-form-urlencoded", "csrf_token=" + url.QueryEscape(csrf) + "&pad=" + pad, b},
		{"/_auth/account/disconnect", "application/x-www-form-urlencoded", "csrf_token=" + url.QueryEscape(csrf) + "&account_id=" + corpAccount + "&pad=" + pad, b},
		{"/_auth/account/sessions/revoke-others", "application/x-www-form-urlencoded", "csrf_token=" + url.QueryEscape(csrf) + "&pad=" + pad, b},
		{"/_auth/account/connect", "application/x-www-form-urlencoded", "csrf_token=" + url.QueryEscape(csrf) + "&provider=corp&pad=" + pad, b},
		{"/_auth/account/reauthorize", "application/x-www-form-urlencoded", "csrf_token=" + url.QueryEscape(csrf) + "&account_id=" + corpAccount + "&pad=" + pad, b},
		{"/_auth/oauth/corp/start", "application/x-www-form-urlencoded", "return_to=%2F&pad=" + pad, newBrowser(t)},
		{"/_auth/oauth/corp/callback", "application/x-www-form-urlencoded", callback.RawQuery + "&pad=" + pad, flowBrowser},
		{"/_auth/native/token", "application/json", `{"rotating_token_nonce":"` + nonce + `","code_verifier":"` + app.verifier + `","pad":"` + pad + `"}`, newBrowser(t)},
		{"/_auth/native/token", "application/x-www-form-urlencoded", "rotating_token_nonce=" + nonce + "&code_verifier=" + app.verifier + "&pad=" + pad, newBrowser(t)},
		{"/_auth/native/apple", "application/json", `{"id_token":"x","code":"y","nonce":"z","pad":"` + pad + `"}`, newBrowser(t)},
		{"/_auth/native/id_token", "application/json", `{"provider":"corp","id_token":"x","nonce":"z","pad":"` + pad + `"}`, newBrowser(t)},
		{"/_auth/native/nonce", "application/x-www-form-urlencoded", "code_challenge=" + app.challenge + "&pad=" + pad, newBrowser(t)},
		{"/_auth/api/v1/redirect_urls", "application/json", `{"url":"myapp://oversized","pad":"` + pad + `"}`, newBrowser(t)},
	}
	authorizeBefore := op.Calls("authorize")
	tokenBefore := op.Calls("token")
	for _, tc := range cases {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s %s chunked=%v", tc.path, tc.ctype, chunked), func(t *testing.T) {
				var body io.Reader = strings.NewReader(tc.body)
				if chunked {
					body = io.MultiReader(body) // no length: Transfer-Encoding: chunked
				}
				req, _ := http.NewRequest(http.MethodPost, e.Base+tc.path, body)
				req.Header.Set("Content-Type", tc.ctype)
				req.Header.Set("Authorization", "Bearer "+advAPIKey)
				resp, _ := tc.browser.do(req)
				if resp.StatusCode < 400 || resp.StatusCode > 499 {
					t.Errorf("status %d, want 4xx", resp.StatusCode)
				}
				if loc := resp.Header.Get("Location"); loc != "" {
					t.Errorf("redirected to %s", loc)
				}
			})
		}
	}
	// Nothing happened: both sessions live, both accounts linked, no flow
	// started, the pending flow and the nonce still redeemable, no URL added.
	if after := b.me(e); after["session_id"] != me["session_id"] || len(accountsOf(after)) != 2 {
		t.Errorf("the session or the accounts changed: %v", after)
	}
	if status, _ := apiGet(t, other.c, e.Base+"/_auth/me", nil); status != http.StatusOK {
		t.Errorf("the other session was revoked (%d)", status)
	}
	if op.Calls("authorize") != authorizeBefore || op.Calls("token") != tokenBefore {
		t.Error("an oversized request reached the provider")
	}
	if n := redirectURLs(); n != urlsBefore {
		t.Errorf("redirect URLs %d, want %d", n, urlsBefore)
	}
	if resp, _ := flowBrowser.get(callback.String()); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the pending flow was consumed by an oversized callback: %d", resp.StatusCode)
	}
	if status, _ := redeem(t, e, nonce, app.verifier); status != http.StatusOK {
		t.Errorf("the nonce was consumed by an oversized request: %d", status)
	}
}

// mustStatus sends a form and checks the status.
func mustStatus(t *testing.T, b *browser, method, rawURL string, form url.Values, want int) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, rawURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, body := b.do(req)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %.200s", method, rawURL, resp.StatusCode, want, body)
	}
	return resp
}

func TestAdversarial_MethodConfusionChangesNothing(t *testing.T) {
	e, op := newAdvEnv(t, "")
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	b.connectCorp(e)
	other := newBrowser(t)
	other.signInDev(e, "/", ada)
	_, csrf := b.accountPage(e)
	me := b.me(e)
	userID := me["id"].(string)
	corpAccount := accountID(me, "oauth_custom_corp")
	_, sessions := advAPI(t, e, http.MethodGet, "/sessions?user_id="+userID)
	otherSession := ""
	for _, s := range sessions.([]any) {
		if id := s.(map[string]any)["id"].(string); id != me["session_id"] {
			otherSession = id
		}
	}
	_, urls := advAPI(t, e, http.MethodGet, "/redirect_urls")
	urlID := urls.([]any)[0].(map[string]any)["id"].(string)
	urlCount := len(urls.([]any))

	form := url.Values{"csrf_token": {csrf}, "provider": {"corp"}, "account_id": {corpAccount}, "_method": {"POST"}}
	stateChanging := []string{
		"/_auth/sign-out", "/_auth/account/connect", "/_auth/account/reauthorize", "/_auth/account/disconnect",
		"/_auth/account/sessions/revoke-others", "/_auth/native/token", "/_auth/native/apple",
		"/_auth/native/id_token", "/_auth/native/nonce",
		"/_auth/oauth/corp/backchannel-logout",
	}
	api := []struct{ path, realMethod string }{
		{"/_auth/api/v1/users/" + userID, http.MethodDelete},
		{"/_auth/api/v1/users/" + userID + "/external_accounts/" + corpAccount, http.MethodDelete},
		{"/_auth/api/v1/sessions/" + otherSession + "/revoke", http.MethodPost},
		{"/_auth/api/v1/redirect_urls/" + urlID, http.MethodDelete},
		{"/_auth/api/v1/redirect_urls", http.MethodPost},
	}
	authorizeBefore := op.Calls("authorize")
	for _, m := range []string{"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE", "TRACE", "PROPFIND", "get", "Post"} {
		for _, path := range stateChanging {
			h := http.Header{"Cookie": {sessionCookie(b, e)}, "Content-Type": {"application/x-www-form-urlencoded"},
				"Origin": {"https://evil.example"}, "X-Http-Method-Override": {"POST"}, "X-Method-Override": {"POST"}}
			resp, _ := advDo(t, m, e.Base+path+"?"+form.Encode(), h, strings.NewReader(form.Encode()))
			checkNoCORS(t, m+" "+path, resp)
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("%s %s redirects to %s", m, path, loc)
			}
			if resp.StatusCode >= 500 || (resp.StatusCode < 400 && !(path == "/_auth/sign-out" && (m == "GET" || m == "HEAD"))) {
				t.Errorf("%s %s: status %d", m, path, resp.StatusCode)
			}
		}
		for _, a := range api {
			if m == a.realMethod {
				continue
			}
			h := http.Header{"Authorization": {"Bearer " + advAPIKey}, "Content-Type": {"application/json"},
				"X-Http-Method-Override": {a.realMethod}, "Origin": {"https://evil.example"}}
			resp, _ := advDo(t, m, e.Base+a.path+"?_method="+a.realMethod, h, strings.NewReader(`{"url":"myapp://method-confusion"}`))
			checkNoCORS(t, m+" "+a.path, resp)
			// GET reads (a user, a redirect URL); nothing else may succeed.
			if resp.StatusCode >= 500 || (resp.StatusCode < 400 && m != http.MethodGet) {
				t.Errorf("%s %s (a %s endpoint): status %d", m, a.path, a.realMethod, resp.StatusCode)
			}
		}
	}
	// A POST whose CSRF token is only in the query string is a forgery.
	for _, path := range stateChanging[:5] {
		resp, _ := advDo(t, http.MethodPost, e.Base+path+"?"+form.Encode(),
			http.Header{"Cookie": {sessionCookie(b, e)}, "Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader("provider=corp"))
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s with the CSRF token in the query: status %d, want 403", path, resp.StatusCode)
		}
	}
	after := b.me(e)
	if after["session_id"] != me["session_id"] || len(accountsOf(after)) != 2 {
		t.Errorf("the session or the accounts changed: %v", after)
	}
	if status, _ := apiGet(t, other.c, e.Base+"/_auth/me", nil); status != http.StatusOK {
		t.Error("the other session was revoked")
	}
	if status, _ := advAPI(t, e, http.MethodGet, "/users/"+userID); status != http.StatusOK {
		t.Error("the user was deleted")
	}
	if _, urls := advAPI(t, e, http.MethodGet, "/redirect_urls"); len(urls.([]any)) != urlCount {
		t.Errorf("redirect URLs changed: %v", urls)
	}
	if op.Calls("authorize") != authorizeBefore {
		t.Error("a wrong method started a flow at the provider")
	}
}

// checkNoCORS fails when an answer would let another origin read it.
func checkNoCORS(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	if o := resp.Header.Get("Access-Control-Allow-Origin"); o != "" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Errorf("%s: CORS headers Allow-Origin %q, Allow-Credentials %q", what, o, resp.Header.Get("Access-Control-Allow-Credentials"))
	}
}

func TestAdversarial_PathTricksNeverBypassTheGateway(t *testing.T) {
	e, _ := newAdvEnv(t, "")
	b := newBrowser(t)
	signInCorp(b, e)
	email := b.me(e)["email_addresses"].([]any)[0].(map[string]any)["email_address"].(string)
	host := strings.TrimPrefix(e.Base, "http://")
	paths := []string{
		"//_auth/api/v1/users", "///_auth/me", "/_auth/../private", "/_auth/%2e%2e/private", "/_auth/..%2fprivate", "/_auth/%2e%2e%2fprivate",
		"/_AUTH/api/v1/users", "/_Auth/me", "/_AUTH/account", "/%5Fauth/api/v1/users", "/%5fauth/me", "/_auth%2fapi/v1/users", "/_auth%2Fme",
		"/_auth/./api/v1/users", "/_auth//api/v1/users", "/_auth/api/v1/../v1/users", "/_auth/api/v1/users/../../../../private",
		"/_auth/api/v1//users", "/_auth/api/V1/users", "/_auth/API/v1/users", "/_auth/api/v1/users/", "/_auth/api/v1/users%2f",
		"/./_auth/me", "/private/../_auth/api/v1/users", "/private/..%2f_auth/api/v1/users", "/private/%2e%2e/_auth/me",
		"/_auth;/api/v1/users", "/_auth/api/v1/users;.json", "/_auth\\..\\private", "/_auth/me%00", "/_auth/me%0a",
		"/_auth/health/../../private", "/_auth/oauth/corp/start/../../../../private", "/_authx/private", "/_auth.json",
		"/_auth", "/_auth/", "/_auth/%2e", "/_auth/.%2e/private", "/%2F_auth/api/v1/users", "/private?/_auth/me",
		"/_auth/api/v1/users?x=/../../private", "/_auth/account/../../private", "*",
	}
	for _, signed := range []bool{false, true} {
		for _, p := range paths {
			before := len(e.Upstream.Requests())
			cookie := ""
			if signed {
				cookie = "Cookie: " + sessionCookie(b, e) + "\r\n"
			}
			for _, accept := range []string{"text/html", "application/json"} {
				resp, body := advRaw(t, e, "GET "+p+" HTTP/1.1\r\nHost: "+host+"\r\nAccept: "+accept+"\r\n"+cookie+"Connection: close\r\n\r\n")
				what := fmt.Sprintf("GET %s (signed in: %v, %s)", p, signed, accept)
				if resp.StatusCode >= 500 {
					t.Errorf("%s: status %d", what, resp.StatusCode)
				}
				// Without a session nothing reaches the upstream and no
				// user data comes back; with one, the API still needs its key.
				if !signed && strings.Contains(body, email) {
					t.Errorf("%s: the answer shows a user's data", what)
				}
				if strings.Contains(strings.ToLower(p), "api/v1/users") && strings.Contains(body, `"object":"user"`) {
					t.Errorf("%s: the API answered without its key", what)
				}
				if loc := resp.Header.Get("Location"); loc != "" && !landsOnSite(e.Base, loc) {
					t.Errorf("%s: redirected off the site to %q", what, loc)
				}
			}
			if !signed && len(e.Upstream.Requests()) != before {
				t.Errorf("GET %s without a session reached the upstream", p)
			}
		}
	}
	for _, h := range e.Upstream.Requests() {
		if h.Get("X-Auth-User-Id") == "" {
			t.Errorf("the upstream received %s without an identity", h.Get("X-Test-Path"))
		}
	}
}

func TestAdversarial_HostHeaderTricks(t *testing.T) {
	e, op := newAdvEnv(t, "")
	addr := strings.TrimPrefix(e.Base, "http://")
	_, port, _ := net.SplitHostPort(addr)
	hosts := []string{
		"evil.example", "evil.example:" + port, addr + ".evil.example", "127.0.0.1", "127.0.0.1:1", "127.0.0.1." + ":" + port,
		"localhost:" + port, "[::1]:" + port, "127.0.0.1:" + port + "@evil.example", "127.1:" + port, "0x7f.0.0.1:" + port,
		addr + "/evil", addr + "#evil", addr + " evil.example", "",
	}
	for _, h := range hosts {
		for _, req := range []string{
			"GET /private HTTP/1.1\r\nHost: " + h + "\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
			"POST /_auth/oauth/corp/start HTTP/1.1\r\nHost: " + h + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
			"GET /_auth/sign-in?return_to=%2Fok HTTP/1.1\r\nHost: " + h + "\r\nConnection: close\r\n\r\n",
			// Two Host headers, and an absolute-form target naming another host.
			"GET /private HTTP/1.1\r\nHost: " + addr + "\r\nHost: " + h + "\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
			"GET http://" + h + "/private HTTP/1.1\r\nHost: " + addr + "\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
		} {
			calls := op.Calls("authorize")
			resp, body := advRaw(t, e, req)
			what := fmt.Sprintf("%q", strings.SplitN(req, "\r\nConnection", 2)[0])
			if resp.StatusCode >= 500 {
				t.Errorf("%s: status %d", what, resp.StatusCode)
			}
			loc := resp.Header.Get("Location")
			if u, err := url.Parse(loc); loc != "" && err == nil && u.Host != "" {
				// Only the flow's redirect to the provider is absolute. The
				// callback URL it names follows the Host the site answered
				// to; a Host Caddy's matcher reads as 127.0.0.1 with a
				// non-numeric port (127.0.0.1:PORT.evil.example) gives a URL
				// that no URL parser accepts, so no provider redirects to it.
				cb, err := url.Parse(u.Query().Get("redirect_uri"))
				if u.Host != strings.TrimPrefix(op.URL(), "http://") || (err == nil && (strings.Contains(cb.Hostname(), "evil") || cb.User != nil)) {
					t.Errorf("%s: Location %q", what, loc)
				}
			} else if loc != "" && !landsOnSite(e.Base, loc) {
				t.Errorf("%s: Location %q", what, loc)
			}
			if strings.Contains(body, "evil.example") {
				t.Errorf("%s: the page reflects the Host: %.300s", what, body)
			}
			if op.Calls("authorize") != calls {
				t.Errorf("%s: the gateway called the provider", what)
			}
		}
	}
	if n := len(e.Upstream.Requests()); n != 0 {
		t.Errorf("%d unauthenticated requests reached the upstream", n)
	}
}

func TestAdversarial_CookieTossingNeverConfusesSessions(t *testing.T) {
	e, _ := newAdvEnv(t, "")
	victim, attacker, quitter := newBrowser(t), newBrowser(t), newBrowser(t)
	victim.signInDev(e, "/", ada)
	attacker.signInDev(e, "/", person("Mallory", "mallory@example.com", true))
	quitter.signInDev(e, "/", person("Quinn", "quinn@example.com", true))
	v, w := victim.cookie(e.Base, "socialgate_session"), attacker.cookie(e.Base, "socialgate_session")
	victimID, attackerID := signedInAs(t, e, "socialgate_session="+v), signedInAs(t, e, "socialgate_session="+w)
	if victimID == "" || attackerID == "" || victimID == attackerID {
		t.Fatalf("setup: victim %q, attacker %q", victimID, attackerID)
	}
	dead := quitter.cookie(e.Base, "socialgate_session")
	_, page := quitter.get(e.Base + "/_auth/sign-out")
	quitter.post(e.Base+"/_auth/sign-out", url.Values{"csrf_token": {html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))}})
	tampered := []byte(v)
	tampered[len(tampered)/2] ^= 1

	sc := func(value string) string { return "socialgate_session=" + value }
	cases := []struct {
		cookie string
		allow  []string // who the request may be taken for ("" = nobody)
	}{
		{sc("junk") + "; " + sc(v), []string{"", victimID}},
		{sc(v) + "; " + sc("junk"), []string{"", victimID}},
		{sc("") + "; " + sc(v), []string{"", victimID}},
		{sc(dead) + "; " + sc(v), []string{"", victimID}},
		{sc(v) + "; " + sc(dead), []string{"", victimID}},
		{sc(string(tampered)) + "; " + sc(v), []string{"", victimID}},
		{sc(v) + "; " + sc(v), []string{victimID}},
		{sc(v) + ";" + sc(v) + ";theme=dark", []string{victimID}},
		{sc(dead), []string{""}},
		{sc(dead) + "; " + sc(dead), []string{""}},
		{sc(string(tampered)), []string{""}},
		{sc(`"` + v + `"`), []string{"", victimID}},
		{sc(v + "; Path=/admin"), []string{"", victimID}},
		{"SOCIALGATE_SESSION=" + v, []string{""}},
		{"socialgate_session_old=" + v, []string{""}},
		{"x=" + sc(v), []string{""}},
		{sc(strings.Repeat(v, 20)), []string{""}},
		{strings.Repeat(sc("junk")+"; ", 200) + sc(v), []string{"", victimID}},
	}
	for i, tc := range cases {
		got := signedInAs(t, e, tc.cookie)
		ok := false
		for _, a := range tc.allow {
			ok = ok || got == a
		}
		if !ok {
			t.Errorf("case %d: Cookie %.120q… was taken for user %q, want one of %q", i, tc.cookie, got, tc.allow)
		}
	}
	// Whatever the Cookie header, the gateway answers, never fails.
	for _, accept := range []string{"text/html", "application/json"} {
		for _, tc := range cases {
			resp, _ := advDo(t, http.MethodGet, e.Base+"/private", http.Header{"Cookie": {tc.cookie}, "Accept": {accept}}, nil)
			if resp.StatusCode >= 500 {
				t.Errorf("Cookie %.80q: status %d", tc.cookie, resp.StatusCode)
			}
		}
	}
	// A bearer token next to a cookie: the cookie's session, never a mix.
	resp, _ := advDo(t, http.MethodGet, e.Base+"/private", http.Header{"Cookie": {sc(v)}, "Authorization": {"Bearer " + w},
		"Accept": {"application/json"}}, nil)
	if h := e.Upstream.Last(t); resp.StatusCode != http.StatusOK || h.Get("X-Auth-User-Id") != victimID || h.Get("X-Auth-Session-Id") == "" {
		t.Errorf("cookie and bearer: status %d, upstream user %q", resp.StatusCode, h.Get("X-Auth-User-Id"))
	}
}

func TestAdversarial_CredentialsOnlyWhereTheyBelong(t *testing.T) {
	e, _ := newAdvEnv(t, "")
	token, _ := signInNative(t, e)
	if status, _ := apiGet(t, http.DefaultClient, e.Base+"/private", http.Header{"Authorization": {"Bearer " + token}}); status != http.StatusOK {
		t.Fatalf("the session token does not work where it belongs: %d", status)
	}

	// The API key: only Authorization: Bearer.
	for name, place := range map[string]func(r *http.Request){
		"query api_key":        func(r *http.Request) { r.URL.RawQuery = "api_key=" + advAPIKey },
		"query key":            func(r *http.Request) { r.URL.RawQuery = "key=" + advAPIKey },
		"query access_token":   func(r *http.Request) { r.URL.RawQuery = "access_token=" + advAPIKey },
		"query token":          func(r *http.Request) { r.URL.RawQuery = "token=" + advAPIKey },
		"query Authorization":  func(r *http.Request) { r.URL.RawQuery = "Authorization=Bearer+" + advAPIKey },
		"X-API-Key":            func(r *http.Request) { r.Header.Set("X-API-Key", advAPIKey) },
		"Api-Key":              func(r *http.Request) { r.Header.Set("Api-Key", advAPIKey) },
		"X-Auth-Token":         func(r *http.Request) { r.Header.Set("X-Auth-Token", advAPIKey) },
		"Token scheme":         func(r *http.Request) { r.Header.Set("Authorization", "Token "+advAPIKey) },
		"key without scheme":   func(r *http.Request) { r.Header.Set("Authorization", advAPIKey) },
		"cookie":               func(r *http.Request) { r.Header.Set("Cookie", "api_key="+advAPIKey+"; __session="+advAPIKey) },
		"Proxy-Authorization":  func(r *http.Request) { r.Header.Set("Proxy-Authorization", "Bearer "+advAPIKey) },
		"session token":        func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) },
		"two Authorizations":   func(r *http.Request) { r.Header["Authorization"] = []string{"Bearer wrong", "Bearer " + advAPIKey} },
		"key with a suffix":    func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+advAPIKey+"x") },
		"key in a form body":   func(r *http.Request) {},
		"key in a JSON body":   func(r *http.Request) { r.Header.Set("Content-Type", "application/json") },
		"X-Original-URL trick": func(r *http.Request) { r.Header.Set("X-Original-URL", "/_auth/api/v1/users?api_key="+advAPIKey) },
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			body := "api_key=" + advAPIKey
			if name == "key in a JSON body" {
				body = `{"api_key":"` + advAPIKey + `","url":"myapp://via-body"}`
			}
			path := "/_auth/api/v1/users"
			if method == http.MethodPost {
				path = "/_auth/api/v1/redirect_urls"
			}
			req, _ := http.NewRequest(method, e.Base+path, strings.NewReader(body))
			if req.Header.Get("Content-Type") == "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			place(req)
			resp, err := advClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("API key by %s (%s): status %d, want 401", name, method, resp.StatusCode)
			}
		}
	}

	// The session token: only Authorization: Bearer (and never upstream).
	before := len(e.Upstream.Requests())
	for _, q := range []string{"session_token", "token", "access_token", "__session", "socialgate_session", "auth", "bearer", "_auth_token"} {
		for _, path := range []string{"/private", "/_auth/me"} {
			status, _ := apiGet(t, http.DefaultClient, e.Base+path+"?"+q+"="+url.QueryEscape(token), nil)
			if status != http.StatusUnauthorized {
				t.Errorf("session token in ?%s on %s: status %d, want 401", q, path, status)
			}
		}
		resp, _ := advDo(t, http.MethodPost, e.Base+"/private", http.Header{"Content-Type": {"application/x-www-form-urlencoded"},
			"Accept": {"application/json"}}, strings.NewReader(q+"="+url.QueryEscape(token)))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("session token in a form field %s: status %d, want 401", q, resp.StatusCode)
		}
	}
	for _, h := range []http.Header{
		{"Authorization": {"bearer" + token}}, {"Authorization": {"Basic " + token}}, {"X-Session-Token": {token}},
		{"Authorization": {"Bearer " + token[:len(token)-2]}}, {"Authorization": {"Bearer " + token + token}},
	} {
		if status, _ := apiGet(t, http.DefaultClient, e.Base+"/private", h); status != http.StatusUnauthorized {
			t.Errorf("session token as %v: status %d, want 401", h, status)
		}
	}
	if n := len(e.Upstream.Requests()) - before; n != 0 {
		t.Errorf("%d requests with a misplaced session token reached the upstream", n)
	}
}

func TestAdversarial_CallbacksCannotCrossProviders(t *testing.T) {
	e, op := newAdvEnv(t, "")
	b := newBrowser(t)
	// corp's state and code at dev's callback, at an unknown provider, at a
	// provider name in another case.
	authorize := location(t, mustStatus(t, b, http.MethodPost, e.Base+"/_auth/oauth/corp/start", url.Values{"return_to": {"/"}}, http.StatusSeeOther))
	resp, _ := b.get(authorize)
	cb, _ := url.Parse(location(t, resp))
	tokenCalls := op.Calls("token")
	for _, path := range []string{"/_auth/oauth/dev/callback", "/_auth/oauth/nope/callback", "/_auth/oauth/CORP/callback",
		"/_auth/oauth/corp%20/callback", "/_auth/oauth/corp/callback/", "/_auth/oauth/corp/callback/x", "/_auth/oauth//callback"} {
		resp, _ := b.get(e.Base + path + "?" + cb.RawQuery)
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			t.Errorf("corp's callback at %s: status %d, want 4xx", path, resp.StatusCode)
		}
	}
	if op.Calls("token") != tokenCalls {
		t.Error("a callback at another provider's endpoint redeemed corp's code")
	}
	if b.cookie(e.Base, "socialgate_session") != "" {
		t.Fatal("a crossed callback signed the browser in")
	}
	// dev's state at corp's callback: refused before corp hears of it. (The
	// state of the corp flow above was consumed by the dev callback: a state
	// is taken before the provider is checked.)
	authURL := location(t, b.startSignIn(e, "/", "dev"))
	u, _ := url.Parse(authURL)
	form := u.Query()
	form.Set("user", "ada")
	resp, _ = b.post(e.DevURL+"/authorize", form)
	devCB, _ := url.Parse(location(t, resp))
	resp, _ = b.get(e.Base + "/_auth/oauth/corp/callback?" + devCB.RawQuery)
	if resp.StatusCode != http.StatusBadRequest || op.Calls("token") != tokenCalls {
		t.Errorf("dev's callback at corp: status %d, token calls %d → %d", resp.StatusCode, tokenCalls, op.Calls("token"))
	}
	// Mixed parameters: corp's state in the query, another in the body.
	resp, _ = b.get(e.Base + "/_auth/oauth/corp/start")
	resp, _ = b.get(location(t, resp))
	cb2, _ := url.Parse(location(t, resp))
	q := cb2.Query()
	req, _ := http.NewRequest(http.MethodPost, e.Base+"/_auth/oauth/dev/callback?"+cb2.RawQuery,
		strings.NewReader(url.Values{"state": {q.Get("state")}, "code": {q.Get("code")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, _ := b.do(req); resp.StatusCode != http.StatusBadRequest || op.Calls("token") != tokenCalls {
		t.Errorf("corp's state posted to dev's callback: %d", resp.StatusCode)
	}
}

func TestAdversarial_SimultaneousFirstSignInsMakeOneUser(t *testing.T) {
	e, op := newAdvEnv(t, "")
	op.SetClaims(map[string]any{"sub": "twin", "email": "twin@example.com", "email_verified": true, "name": "Twin"})
	const n = 8
	browsers := make([]*browser, n)
	callbacks := make([]string, n)
	for i := range browsers {
		browsers[i] = newBrowser(t)
		callbacks[i] = callbackURL(browsers[i], e)
	}
	// Every callback at the same moment: one identity, first seen n times.
	statuses := make(chan int, n)
	for i := range browsers {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, callbacks[i], nil)
			resp, err := browsers[i].c.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	for range n {
		if status := <-statuses; status != http.StatusSeeOther {
			t.Errorf("a simultaneous first sign-in: status %d", status)
		}
	}
	_, users := advAPI(t, e, http.MethodGet, "/users?email_address=twin@example.com")
	list, _ := users.([]any)
	if len(list) != 1 {
		t.Fatalf("%d users for one identity signed in %d times at once", len(list), n)
	}
	ids := map[any]bool{}
	for _, b := range browsers {
		ids[b.me(e)["id"]] = true
	}
	if len(ids) != 1 {
		t.Errorf("the browsers are signed in as %d different users", len(ids))
	}
}
