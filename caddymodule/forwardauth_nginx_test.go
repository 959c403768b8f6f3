package caddymodule_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestForwardAuth_NginxAuthRequest_SignInOnceForEveryApp(t *testing.T) {
	s := newSSOEnv(t)
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
	s := newSSOEnv(t)
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
			strings.HasPrefix(line, "auth_request_set") || strings.HasPrefix(line, "proxy_set_header") && !strings.Contains(line, "%") && !strings.Contains(line, "auth.sso.test") {
			if !strings.Contains(doc, line) {
				t.Errorf("the docs' nginx configuration lacks %q", line)
			}
		}
	}
}
