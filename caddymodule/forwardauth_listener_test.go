package caddymodule_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// forward_auth's own listener (verifylisten.go) answers every question as
// the gateway's verify through Caddy does: each question is asked of both,
// from the same peer, and the status, every header but Date and Server,
// and the body must be the same.
func TestForwardAuth_Listener_AnswersAsVerifyThroughCaddy(t *testing.T) {
	s := newSSOEnv(t)
	b := ssoBrowser(t)
	s.signInAt(b, s.App1+"/")
	var cookie string
	for _, c := range b.c.Jar.Cookies(mustURL(s.App1)) {
		cookie += c.Name + "=" + c.Value + "; "
	}
	cookie += "theme=dark"
	app4 := fmt.Sprintf("app4.sso.test:%d", s.nginxPort)
	nginx := func(path, cookie string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, "http://auth.sso.test"+path, nil)
			req.Header.Set("X-Original-URL", "http://"+app4+"/reports?q=1")
			req.Header.Set("X-Original-Method", http.MethodGet)
			req.Header.Set("Accept", "application/json")
			if cookie != "" {
				req.Header.Set("Cookie", cookie)
			}
			return req
		}
	}
	traefik := func(cookie string) func() *http.Request {
		return func() *http.Request {
			return traefikAsks("http://auth.sso.test/_auth/verify", app4, "/dash?tab=2", cookie)
		}
	}
	spoofed := func() *http.Request {
		req := nginx("/_auth/verify", cookie)()
		req.Header.Set("X-Auth-User-Email", "root@example.com")
		return req
	}
	envoy := func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, "http://auth.sso.test/_auth/verify/default/dash%2Fx?tab=2", nil)
		req.Host = fmt.Sprintf("127.0.0.1:%d", s.gwPort) // a host Caddy has a socialgate site for
		req.Header.Set("X-Forwarded-Proto", "http")
		req.Header.Set("Cookie", cookie)
		return req
	}
	bare := func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, "http://auth.sso.test/_auth/verify", nil)
		return req
	}
	for _, q := range []struct {
		name      string
		req       func() *http.Request
		untrusted bool
		want      int
	}{
		{"signed in (nginx)", nginx("/_auth/verify", cookie), false, http.StatusOK},
		{"signed out (nginx)", nginx("/_auth/verify", ""), false, http.StatusUnauthorized},
		{"signed in (Traefik)", traefik(cookie), false, http.StatusOK},
		{"a browser navigation signed out (Traefik)", traefik(""), false, http.StatusFound},
		{"signed in, a policy that admits nobody", nginx("/_auth/verify/nobody", cookie), false, http.StatusForbidden},
		{"Envoy's form", envoy, false, http.StatusOK},
		{"spoofed identity headers", spoofed, false, http.StatusBadRequest},
		{"an unknown policy", nginx("/_auth/verify/unknown", cookie), false, http.StatusNotFound},
		{"the original request unnamed", bare, false, http.StatusBadRequest},
		{"an untrusted peer", nginx("/_auth/verify", cookie), true, http.StatusForbidden},
	} {
		viaCaddy := askAt(t, s.gwPort, q.untrusted, q.req())
		viaListener := askAt(t, s.verifyPort, q.untrusted, q.req())
		if viaCaddy.status != q.want {
			t.Errorf("%s: through Caddy %d, want %d", q.name, viaCaddy.status, q.want)
		}
		if d := viaCaddy.diff(viaListener); d != "" {
			t.Errorf("%s: the listener answers otherwise than verify through Caddy:\n%s", q.name, d)
		}
	}
}

// answer is what a test compares of a verify answer.
type answer struct {
	status int
	header http.Header
	body   string
}

func (a answer) diff(b answer) string {
	var out []string
	if a.status != b.status {
		out = append(out, fmt.Sprintf("status %d, listener %d", a.status, b.status))
	}
	var names []string
	for k := range a.header {
		names = append(names, k)
	}
	for k := range b.header {
		if _, ok := a.header[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		if k == "Date" || k == "Server" {
			continue
		}
		if !slices.Equal(a.header[k], b.header[k]) {
			out = append(out, fmt.Sprintf("%s: %q, listener %q", k, a.header[k], b.header[k]))
		}
	}
	if a.body != b.body {
		out = append(out, fmt.Sprintf("body %q, listener %q", a.body, b.body))
	}
	return strings.Join(out, "\n")
}

// askAt sends req to 127.0.0.1:port, from 127.0.0.2 when untrusted (the
// listener and trusted_proxies trust 127.0.0.1/32 alone), following no
// redirect.
func askAt(t *testing.T, port int, untrusted bool, req *http.Request) answer {
	t.Helper()
	d := &net.Dialer{}
	if untrusted {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	}
	c := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s at port %d: %v", req.URL, port, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(body)}
}

// The listener serves verify alone: every other path of the gateway is a
// bare 404, a header block over 64 KiB is 431, and HTTP/2 is not spoken.
func TestForwardAuth_Listener_ServesVerifyAlone(t *testing.T) {
	s := startSSOGateway(t)
	for _, path := range []string{"/", "/_auth", "/_auth/sign-in", "/_auth/verifyx", "/_auth/api/v1/users", "/_auth/console",
		"/_auth/.well-known/jwks.json", "/x/_auth/verify", "/_auth/sign-in?/_auth/verify", "/_auth%2fverify", "/_auth/%76erify",
		"/_auth%2Fverify/nobody"} {
		req, _ := http.NewRequest(http.MethodGet, "http://auth.sso.test"+path, nil)
		req.Header.Set("X-Original-URL", "http://app1.sso.test/")
		a := askAt(t, s.verifyPort, false, req)
		if a.status != http.StatusNotFound || a.body != "404 page not found\n" {
			t.Errorf("GET %s at the listener: %d %q, want a bare 404", path, a.status, a.body)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://auth.sso.test/_auth/verify", nil)
	req.Header.Set("Cookie", "big="+strings.Repeat("a", 70<<10))
	if a := askAt(t, s.verifyPort, false, req); a.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 70 KiB Cookie: %d, want 431", a.status)
	}
	req, _ = http.NewRequest(http.MethodGet, "http://auth.sso.test/_auth/verify", nil)
	req.Header.Set("Cookie", "big="+strings.Repeat("a", 60<<10))
	req.Header.Set("X-Original-URL", "http://app1.sso.test/")
	if a := askAt(t, s.verifyPort, false, req); a.status != http.StatusUnauthorized {
		t.Errorf("a 60 KiB Cookie: %d, want verify's 401", a.status)
	}
	// HTTP/2 with prior knowledge (h2c) gets no HTTP/2 answer.
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.verifyPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 4") {
		t.Errorf("h2c preface: %q, want an HTTP/1.1 refusal", line)
	}
	// OPTIONS * is no verify address: a bare 404 from any peer, where
	// net/http's own 200 answered it (the fourth attack pass).
	for local, want := range map[string]string{"127.0.0.1": "HTTP/1.1 404", "127.0.0.2": "HTTP/1.1 404"} {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", s.verifyPort))
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "OPTIONS * HTTP/1.1\r\nHost: auth.sso.test\r\n\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, want) {
			t.Errorf("OPTIONS * from %s: %q, want %s", local, line, want)
		}
	}
}

// A reload that keeps the listener keeps it answering; one that moves it
// leaves nothing on the old port; one that drops it leaves nothing.
func TestForwardAuth_Listener_Reloads(t *testing.T) {
	s := startSSOGateway(t)
	asks := func(port int) (int, error) {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/_auth/verify", port), nil)
		req.Header.Set("X-Original-URL", "http://app1.sso.test/")
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := asks(s.verifyPort); code != http.StatusUnauthorized {
		t.Fatalf("before reloading: %d %v, want 401", code, err)
	}
	if err := loadCaddyfile(strings.Replace(s.caddyfile(), `respond "gateway home"`, `respond "home, reloaded"`, 1)); err != nil {
		t.Fatal(err)
	}
	if code, err := asks(s.verifyPort); code != http.StatusUnauthorized {
		t.Fatalf("after a reload that keeps it: %d %v, want 401", code, err)
	}
	old := s.verifyPort
	s.verifyPort = freePortOtherThan(t, old)
	if err := loadCaddyfile(s.caddyfile()); err != nil {
		t.Fatal(err)
	}
	if code, err := asks(s.verifyPort); code != http.StatusUnauthorized {
		t.Fatalf("after moving it: %d %v at the new port, want 401", code, err)
	}
	if code, err := asks(old); err == nil {
		t.Fatalf("after moving it the old port answers %d", code)
	}
	moved := s.verifyPort
	if err := loadCaddyfile(strings.Replace(s.caddyfile(), fmt.Sprintf("listen 127.0.0.1:%d {\n\t\t\t\ttrusted 127.0.0.1/32\n\t\t\t}", moved), "", 1)); err != nil {
		t.Fatal(err)
	}
	if code, err := asks(moved); err == nil {
		t.Fatalf("after dropping it the port answers %d", code)
	}
}

func freePortOtherThan(t *testing.T, port int) int {
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if p != port {
			return p
		}
	}
}
