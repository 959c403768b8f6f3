package caddymodule_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
)

// These tests attack the forward-auth set-up of forwardauth_test.go (nginx
// auth_request and Caddy's forward_auth, as docs/forward-auth.md writes
// them) the way a client of the apps, or of the gateway directly, would.

// untrustedClient reaches the gateway from 127.0.0.2, which the set-up's
// trusted_proxies (127.0.0.1/32) leaves out.
func untrustedClient(s *ssoEnv) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	return &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", s.gwPort))
	}}}
}

func TestForwardAuth_AnUntrustedPeerLearnsNoPolicyName(t *testing.T) {
	s := newSSOEnv(t)
	c := untrustedClient(s)
	// "nobody" exists, "nope" does not: an untrusted peer cannot tell.
	for _, path := range []string{"/_auth/verify", "/_auth/verify/nobody", "/_auth/verify/nope", "/_auth/verify/nope/x"} {
		req, _ := http.NewRequest(http.MethodGet, s.Auth+path, nil)
		req.Header.Set("X-Original-URL", s.App1+"/")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s from an untrusted peer: %d, want 403", path, resp.StatusCode)
		}
	}
}
