package caddymodule_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
)

// traefikAsks is the verify request Traefik's ForwardAuth middleware sends
// for a client's GET, written out to ask from a peer Traefik cannot be
// (forwardauth_traefik_test.go runs the real Traefik): GET to the
// configured address, the client's headers copied (its Cookie and Accept
// among them), and X-Forwarded-Method, -Proto, -Host, -Uri and -For set
// by Traefik, overwriting the client's (trustForwardHeader false).
func traefikAsks(verifyURL, host, uri, cookie string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, verifyURL, nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	req.Header.Set("User-Agent", "Mozilla/5.0")
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	req.Header.Set("X-Forwarded-Method", http.MethodGet)
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.Set("X-Forwarded-Host", host)
	req.Header.Set("X-Forwarded-Uri", uri)
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	return req
}

func TestForwardAuth_TraefikWireFormat_RedirectsThenAnswersIdentity(t *testing.T) {
	s := newSSOEnv(t)
	b := ssoBrowser(t)
	app4 := fmt.Sprintf("app4.sso.test:%d", s.nginxPort)
	verify := s.Auth + "/_auth/verify"

	// No session: Traefik hands the answer to the browser, a redirect to
	// sign in that comes back to the original URL.
	resp, _ := b.do(traefikAsks(verify, app4, "/dash?tab=2", ""))
	want := s.Auth + "/_auth/sign-in?return_to=" + url.QueryEscape("http://"+app4+"/dash?tab=2")
	if resp.StatusCode != http.StatusFound || location(t, resp) != want {
		t.Fatalf("verify without a session: %d to %s, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}

	// Signed in (through app1), the same request gets 200 and the identity
	// in the headers Traefik's authResponseHeaders copies.
	s.signInAt(b, s.App1+"/")
	var cookie string
	for _, c := range b.c.Jar.Cookies(mustURL("http://" + app4)) {
		cookie = c.Name + "=" + c.Value
	}
	resp, _ = ssoBrowser(t).do(traefikAsks(verify, app4, "/dash?tab=2", cookie))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Auth-User-Email") != "ada@example.com" || resp.Header.Get("X-Auth-Jwt") == "" {
		t.Fatalf("verify with a session: %d, headers %v", resp.StatusCode, resp.Header)
	}

	// A client reaching the gateway from outside trusted_proxies (here
	// ::1, which 127.0.0.1/32 leaves out) names no URL: 403.
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp6", fmt.Sprintf("[::1]:%d", s.gwPort))
	}}}
	resp, err := c.Do(traefikAsks(verify, app4, "/", cookie))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Auth-User-Id") != "" {
		t.Fatalf("verify from an untrusted peer: %d, want 403 without identity", resp.StatusCode)
	}
}
