package caddymodule_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/http2"
)

func TestForwardAuth_NginxAuthRequest_SignInOnceForEveryApp(t *testing.T) {
	nginxSignInOnceForEveryApp(t, newSSOEnv(t))
}

// The same through forward_auth's own listener (verifylisten.go).
func TestForwardAuth_NginxAuthRequest_ThroughListener_SignInOnceForEveryApp(t *testing.T) {
	nginxSignInOnceForEveryApp(t, newSSOEnvAsking(t, true))
}

func nginxSignInOnceForEveryApp(t *testing.T, s *ssoEnv) {
	b := ssoBrowser(t)

	// Without a session: sent to sign in, nothing reaches the app.
	resp, _ := s.signInAt(b, s.App1+"/reports?year=2024&q=a%20b")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != s.App1+"/reports?year=2024&q=a%20b" {
		t.Fatalf("after sign-in the browser is at %s (%d), want the app's page", resp.Request.URL, resp.StatusCode)
	}
	got := s.Upstream.Last(t)
	uid := got.Get("X-Auth-User-Id")
	if uid == "" || got.Get("X-Auth-User-Email") != "ada@example.com" || got.Get("X-Auth-Jwt") == "" {
		t.Fatalf("the app got no identity: %v", got)
	}

	// app2, another host under the cookie domain: signed in already.
	resp, _ = b.get(s.App2 + "/")
	if resp.StatusCode != http.StatusOK || s.Upstream.Last(t).Get("X-Auth-User-Id") != uid {
		t.Fatalf("app2: %d, user %q; want the same user without signing in", resp.StatusCode, s.Upstream.Last(t).Get("X-Auth-User-Id"))
	}

	// Identity headers a client sends reach the gateway in nginx's question
	// and are refused (400, which nginx answers as 500): none reaches the
	// app (forwardauth_refusals_test.go tries every spelling).
	req, _ := http.NewRequest(http.MethodGet, s.App1+"/", nil)
	req.Header.Set("X-Auth-User-Id", "user_evil")
	req.Header.Set("X-Auth-User-Email", "root@example.com")
	req.Header.Set("X-Auth-Jwt", "forged")
	before := len(s.Upstream.Requests())
	resp, _ = b.do(req)
	if resp.StatusCode != http.StatusInternalServerError || len(s.Upstream.Requests()) != before {
		t.Fatalf("spoofed headers: %d, %d reached the app; want nginx's 500 and none", resp.StatusCode, len(s.Upstream.Requests())-before)
	}

	// Sign-out at the gateway ends the session for every app, and a copy
	// of the cookie kept from before is dead too.
	var kept string
	for _, c := range b.c.Jar.Cookies(mustURL(s.App1)) {
		if strings.HasSuffix(c.Name, "socialgate_session") {
			kept = c.Name + "=" + c.Value
		}
	}
	if kept == "" {
		t.Fatal("no session cookie for app1's host")
	}
	n := len(s.Upstream.Requests())
	if resp = b.signOut(s.env, s.App2+"/bye"); location(t, resp) != s.App2+"/bye" {
		t.Errorf("sign-out sent the browser to %s, want back to app2", location(t, resp))
	}
	for _, app := range []string{s.App1, s.App2, s.App3} {
		resp, _ = b.get(app + "/")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(location(t, resp), s.Auth+"/_auth/sign-in?") {
			t.Errorf("%s after sign-out: %d, want a sign-in redirect", app, resp.StatusCode)
		}
	}
	req, _ = http.NewRequest(http.MethodGet, s.App1+"/", nil)
	req.Header.Set("Cookie", kept)
	if resp, _ = ssoBrowser(t).do(req); resp.StatusCode != http.StatusFound {
		t.Errorf("the cookie kept from before sign-out: %d, want a sign-in redirect", resp.StatusCode)
	}
	if len(s.Upstream.Requests()) != n {
		t.Errorf("requests reached the app after sign-out")
	}
}

func TestForwardAuth_NginxAuthRequest_RefusesWithoutASessionAndSpoofing(t *testing.T) {
	nginxRefusesWithoutASessionAndSpoofing(t, newSSOEnv(t))
}

func TestForwardAuth_NginxAuthRequest_ThroughListener_RefusesWithoutASessionAndSpoofing(t *testing.T) {
	nginxRefusesWithoutASessionAndSpoofing(t, newSSOEnvAsking(t, true))
}

func nginxRefusesWithoutASessionAndSpoofing(t *testing.T, s *ssoEnv) {
	b := ssoBrowser(t)
	// Identity headers alone buy nothing: the gateway refuses them (400,
	// nginx's 500), session or not.
	req, _ := http.NewRequest(http.MethodGet, s.App1+"/admin", nil)
	req.Header.Set("X-Auth-User-Id", "user_evil")
	req.Header.Set("Accept", "application/json")
	resp, _ := b.do(req)
	if resp.StatusCode != http.StatusInternalServerError || len(s.Upstream.Requests()) != 0 {
		t.Fatalf("a request without a session: %d, %d reached the app", resp.StatusCode, len(s.Upstream.Requests()))
	}
	// A forwarded host or URI from the client does not steer where the
	// browser comes back to: nginx names the original URL itself.
	req, _ = http.NewRequest(http.MethodGet, s.App1+"/x", nil)
	req.Header.Set("X-Forwarded-Host", "evil.test")
	req.Header.Set("X-Forwarded-Uri", "//evil.test/")
	req.Header.Set("X-Original-URL", "http://evil.test/")
	resp, _ = b.do(req)
	if loc := location(t, resp); loc != s.Auth+"/_auth/sign-in?return_to="+url.QueryEscape(s.App1+"/x") {
		t.Fatalf("forwarded headers from the client steered the sign-in to %s", loc)
	}
	// A return-to on a host outside return_hosts falls back to the gateway.
	resp, page := b.get(s.Auth + "/_auth/sign-in?return_to=" + url.QueryEscape("http://evil.test/"))
	if resp.StatusCode != http.StatusOK || strings.Contains(page, "evil.test") {
		t.Fatalf("the sign-in page kept a return-to on another host")
	}
	// The verify endpoint names no policy the operator did not write, and
	// wants the original request named.
	if resp, _ = b.get(s.Auth + "/_auth/verify/unknown"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("verify of an unknown policy: %d, want 404", resp.StatusCode)
	}
	if resp, _ = b.get(s.Auth + "/_auth/verify"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("verify without the original request: %d, want 400", resp.StatusCode)
	}
}

// Every line of the nginx configuration the tests run is in the one
// docs/forward-auth.md gives, apart from the test's ports and paths.
func TestForwardAuth_NginxConfIsTheDocs(t *testing.T) {
	doc := docCode(t, "docs/forward-auth.md", "## nginx (`auth_request`)", "nginx")
	for _, line := range strings.Split((&ssoEnv{env: &env{Upstream: &upstream{srv: &httptest.Server{URL: "http://127.0.0.1:1"}}}}).nginxConf("/dir"), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "map ") || strings.HasPrefix(line, "\"~") || strings.HasPrefix(line, "if (") ||
			strings.HasPrefix(line, "auth_request_set") || strings.HasPrefix(line, "proxy_buffer") || strings.HasPrefix(line, "proxy_set_header") && !strings.Contains(line, "%") && !strings.Contains(line, "auth.sso.test") {
			if !strings.Contains(doc, line) {
				t.Errorf("the docs' nginx configuration lacks %q", line)
			}
		}
	}
}

// appCookieJar is a realistic jar of an app's own cookies, about 7 KiB in
// all: analytics, a consent string, a framework's session and its CSRF
// token, a cart, preferences. verify's answer echoes them beside the
// identity, more than nginx's default proxy_buffer_size (4k) holds.
func appCookieJar() []*http.Cookie {
	pad := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	return []*http.Cookie{
		{Name: "_ga", Value: "GA1.2.1234567890.1700000000"},
		{Name: "_gid", Value: "GA1.2.987654321.1700000000"},
		{Name: "consent", Value: "v2." + pad('c', 600)},
		{Name: "app_session", Value: "eyJhbGciOiJIUzI1NiJ9." + pad('s', 3000) + ".sig"},
		{Name: "csrftoken", Value: pad('t', 64)},
		{Name: "cart", Value: pad('k', 1800)},
		{Name: "prefs", Value: "theme=dark&lang=en&tz=Europe%2FBerlin&" + pad('p', 1200)},
	}
}

// jarReachedTheApp fails unless the app got every cookie of jar, as set,
// and none of the gateway's.
func jarReachedTheApp(t *testing.T, got http.Header, jar []*http.Cookie) {
	t.Helper()
	cookie := got.Get("Cookie")
	if strings.Contains(cookie, "socialgate") {
		t.Errorf("the app got the gateway's cookies")
	}
	for _, c := range jar {
		if !strings.Contains("; "+cookie+"; ", "; "+c.Name+"="+c.Value+"; ") {
			t.Errorf("the app lacks its cookie %s (%d B of Cookie)", c.Name, len(cookie))
		}
	}
}

// F2 of issue 17's attack pass: verify's answer, with ~7 KiB of the app's
// cookies, is more than nginx's default proxy_buffer_size; nginx logged
// "upstream sent too big header" and answered 500 on every app.
func TestForwardAuth_NginxAuthRequest_TheAppsCookieJarFitsTheAnswer(t *testing.T) {
	s := newSSOEnv(t)
	b := ssoBrowser(t)
	s.signInAt(b, s.App1+"/")
	jar := appCookieJar()
	b.c.Jar.SetCookies(mustURL(s.App1), jar)
	resp, _ := b.get(s.App1 + "/orders")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signed in with the app's cookie jar: %d, want 200", resp.StatusCode)
	}
	got := s.Upstream.Last(t)
	if got.Get("X-Auth-User-Email") != "ada@example.com" || got.Get("X-Test-Path") != "/orders" {
		t.Fatalf("the app got %v", got)
	}
	jarReachedTheApp(t, got, jar)
	s.h2JarReachesTheApp(b, jar)
}

// h2JarReachesTheApp sends a signed-in request over HTTP/2 to the nginx
// listener on s.nginxH2Port with jar and ~11 KiB more of the app's cookies
// (its session chunked over several cookies, as ASP.NET Core does): a
// browser sends cookies as crumbs there, which nginx joins into one Cookie
// of up to the request's 32 KiB, past what 16k of proxy_buffer_size holds.
func (s *ssoEnv) h2JarReachesTheApp(b *browser, jar []*http.Cookie) {
	t := s.t
	t.Helper()
	for i := 1; i <= 3; i++ {
		jar = append(jar, &http.Cookie{Name: fmt.Sprintf(".AspNetCore.CookiesC%d", i), Value: strings.Repeat(string(rune('0'+i)), 3800)})
	}
	var cookie []string
	for _, c := range b.c.Jar.Cookies(mustURL(s.App1)) {
		if strings.Contains(c.Name, "socialgate_session") {
			cookie = append(cookie, c.String())
		}
	}
	if len(cookie) != 1 {
		t.Fatalf("%d session cookies for app1", len(cookie))
	}
	for _, c := range jar {
		cookie = append(cookie, c.String())
	}
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, _ string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", s.nginxH2Port))
	}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, s.App1+"/h2", nil)
	req.Header.Set("Cookie", strings.Join(cookie, "; ")) // sent as crumbs
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := len(req.Header.Get("Cookie")); resp.StatusCode != http.StatusOK || n < 18<<10 {
		t.Fatalf("signed in over HTTP/2 with %d B of cookies: %d, want 200 with at least 18 KiB", n, resp.StatusCode)
	}
	got := s.Upstream.Last(t)
	if got.Get("X-Auth-User-Email") != "ada@example.com" || got.Get("X-Test-Path") != "/h2" {
		t.Fatalf("the app got %v", got)
	}
	jarReachedTheApp(t, got, jar)
}
