package caddymodule_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"
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
	// The recipe asks app3's policy: the identity JWT names app3 alone.
	if aud := fmt.Sprint(identityClaims(t, b, s.env, got.Get("X-Auth-Jwt"))["aud"]); aud != "https://app3.example.com" && aud != "[https://app3.example.com]" {
		t.Errorf("the identity JWT's aud is %s, want app3's origin", aud)
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

// appSessionCookie is the Cookie header b sends to appURL: its session.
func appSessionCookie(t *testing.T, b *browser, appURL string) string {
	t.Helper()
	for _, c := range b.c.Jar.Cookies(mustURL(appURL)) {
		if strings.HasSuffix(c.Name, "socialgate_session") {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no session cookie for %s", appURL)
	return ""
}

// Trailers come after the body, which forward_auth never shows the
// gateway, and Caddy's reverse_proxy passes a request's trailers on: the
// recipe refuses an HTTP/1.1 body of unknown length, the only kind that
// carries trailers there (411). Over HTTP/2 no Caddyfile matcher sees them
// (docs/forward-auth.md says so): a body with a length still goes through.
func TestForwardAuth_CaddyForwardAuth_RefusesBodiesThatCarryTrailers(t *testing.T) {
	s := newSSOEnv(t)
	b := ssoBrowser(t)
	s.signInAt(b, s.App3+"/")
	cookie := appSessionCookie(t, b, s.App3)
	host := fmt.Sprintf("app3.sso.test:%d", s.gwPort)
	raw := func(head, body string) int {
		t.Helper()
		conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.gwPort))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /x HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n%sConnection: close\r\n\r\n%s", host, cookie, head, body)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	trailers := "3\r\nabc\r\n0\r\nX-Foo: 1\r\nX-Auth-User-Groups: " + forged + "\r\nX-Auth-User-Email: victim@example.com\r\n\r\n"
	n := len(s.Upstream.Requests())
	for _, declare := range []string{"Trailer: X-Foo\r\n", "Trailer: X-Auth-User-Groups\r\n", ""} {
		if code := raw(declare+"Transfer-Encoding: chunked\r\n", trailers); code != http.StatusLengthRequired {
			t.Errorf("a chunked body with trailers (%q): %d, want 411", declare, code)
		}
	}
	if len(s.Upstream.Requests()) != n {
		t.Fatalf("%d chunked requests reached the app, trailers %v", len(s.Upstream.Requests())-n, s.Upstream.LastTrailer())
	}
	// A body with a length passes, over HTTP/1.1 and HTTP/2 (h2c, prior
	// knowledge), with the gateway's identity and no trailer.
	if code := raw("Content-Length: 3\r\n", "abc"); code != http.StatusOK || s.Upstream.Last(t).Get("X-Auth-User-Email") != "ada@example.com" {
		t.Fatalf("an HTTP/1.1 body with a length: %d, the app got %v", code, s.Upstream.Last(t))
	}
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, _ string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", s.gwPort))
	}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "http://"+host+"/x", strings.NewReader("abc"))
	req.Header.Set("Cookie", cookie)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || s.Upstream.Last(t).Get("X-Auth-User-Email") != "ada@example.com" {
		t.Fatalf("an h2c body with a length: %s %d, the app got %v", resp.Proto, resp.StatusCode, s.Upstream.Last(t))
	}
}
