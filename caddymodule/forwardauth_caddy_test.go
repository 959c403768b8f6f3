package caddymodule_test

import (
	"net/http"
	"testing"
)

func TestForwardAuth_CaddyForwardAuth_RedirectsBrowsersAndCopiesIdentity(t *testing.T) {
	s := newSSOEnv(t)
	b := ssoBrowser(t)
	resp, _ := s.signInAt(b, s.App3+"/deep/page?x=1")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != s.App3+"/deep/page?x=1" {
		t.Fatalf("after sign-in the browser is at %s (%d)", resp.Request.URL, resp.StatusCode)
	}
	got := s.Upstream.Last(t)
	if got.Get("X-Auth-User-Id") == "" || got.Get("X-Auth-User-Email") != "ada@example.com" {
		t.Fatalf("the app behind forward_auth got no identity: %v", got)
	}
	// A spoofed copy reaches the gateway in forward_auth's question and is
	// refused, 400 passed on to the client.
	req, _ := http.NewRequest(http.MethodGet, s.App3+"/", nil)
	req.Header.Set("X-Auth-User-Email", "root@example.com")
	before := len(s.Upstream.Requests())
	if resp, _ = b.do(req); resp.StatusCode != http.StatusBadRequest || len(s.Upstream.Requests()) != before {
		t.Fatalf("a spoofed email: %d, %d reached the app; want 400 and none", resp.StatusCode, len(s.Upstream.Requests())-before)
	}
	// A fetch without a session gets 401 JSON, not the app.
	n := len(s.Upstream.Requests())
	code, body := apiGet(t, ssoBrowser(t).c, s.App3+"/api", nil)
	if code != http.StatusUnauthorized || body["sign_in_url"] == nil || len(s.Upstream.Requests()) != n {
		t.Fatalf("a fetch without a session: %d %v", code, body)
	}
	// The client's X-Original-URL cannot stand in for Caddy's forwarded URI.
	req, _ = http.NewRequest(http.MethodGet, s.App3+"/", nil)
	req.Header.Set("X-Original-URL", "http://evil.test/")
	resp, _ = b.do(req)
	if resp.StatusCode != http.StatusBadRequest || len(s.Upstream.Requests()) != n {
		t.Fatalf("a planted X-Original-URL: %d, want 400 and nothing upstream", resp.StatusCode)
	}
}
