package caddymodule_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// lenientApp is an app that switches protocols on any Upgrade request,
// whatever its Connection header says (as servers that still take
// RFC 7540's h2c upgrade do: they need not check that Connection names
// HTTP2-Settings, which a proxy would have removed): it answers 101 and
// then echoes the connection's bytes. It records every request it reads.
type lenientApp struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []*http.Request
}

func newLenientApp(t *testing.T) *lenientApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &lenientApp{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go a.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return a
}

func (a *lenientApp) Addr() string { return a.ln.Addr().String() }

func (a *lenientApp) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, r.Body)
		a.mu.Lock()
		a.seen = append(a.seen, r)
		a.mu.Unlock()
		if up := r.Header.Get("Upgrade"); up != "" {
			fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", up)
			io.Copy(c, br)
			return
		}
		body := "app saw " + r.URL.Path + " as " + r.Header.Get("X-Auth-User-Id")
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
}

// Requests is what the app has read so far.
func (a *lenientApp) Requests() []*http.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*http.Request(nil), a.seen...)
}

// upgradeVia sends, on a fresh connection to addr, a GET of path for host
// asking to upgrade to proto with the given extra header lines, and
// returns the answer; on a 101 it then checks that the tunnel echoes.
func upgradeVia(t *testing.T, addr, host, path, proto, extra string) *http.Response {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\nConnection: Upgrade\r\nUpgrade: %s\r\n%s\r\n", path, host, proto, extra)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s (Upgrade: %s): %v", path, proto, err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		io.WriteString(c, "ping\n")
		if line, err := br.ReadString('\n'); line != "ping\n" {
			t.Errorf("GET %s (Upgrade: %s): the tunnel answered %q, %v", path, proto, line, err)
		}
		return resp
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

// h2cSettings is an HTTP2-Settings header line, as a client asking for h2c
// sends it; Connection does not name it, so a proxy keeps it.
const h2cSettings = "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"

// An upgrade to h2c that a proxy passed on would give the client an HTTP/2
// connection to the app that no later request's gateway check sees (forged
// X-Auth-* headers included): the gateway refuses it before admitting, with
// a session or on a public route, through its in-process handler and
// through the docs' Caddy forward_auth recipe; a WebSocket upgrade passes.
func TestUpgrade_H2CRefusedWebSocketPasses(t *testing.T) {
	s := startSSOGateway(t)
	app := newLenientApp(t)
	app6 := fmt.Sprintf("app6.sso.test:%d", s.gwPort)
	app7 := fmt.Sprintf("app7.sso.test:%d", s.gwPort)
	recipe := replaceAll(t, docCode(t, "docs/forward-auth.md", "## Caddy `forward_auth`", "caddyfile"),
		"app3.example.com", "http://"+app6,
		"auth-internal:8080", fmt.Sprintf("127.0.0.1:%d", s.gwPort),
		"auth.example.com", fmt.Sprintf("auth.sso.test:%d", s.gwPort),
		"localhost:3000", app.Addr())
	handler := "http://" + app7 + " {" + strings.ReplaceAll(recipeSite(t), "localhost:3000", app.Addr()) + "}\n"
	if err := loadCaddyfile(s.caddyfile() + recipe + "\n" + handler); err != nil {
		t.Fatal(err)
	}
	b := ssoBrowser(t)
	s.signInAt(b, s.App3+"/")
	cookie := "Cookie: " + appSessionCookie(t, b, s.App3) + "\r\n"
	gw := fmt.Sprintf("127.0.0.1:%d", s.gwPort)

	for _, tc := range []struct{ name, host, path, extra string }{
		{"forward_auth recipe, signed in", app6, "/x", cookie},
		{"forward_auth recipe, no session", app6, "/x", ""},
		{"handler, signed in", app7, "/admin/x", cookie},
		{"handler, public, signed in", app7, "/blog/x", cookie},
		{"handler, public, anonymous", app7, "/blog/x", ""},
	} {
		for _, proto := range []string{"h2c", "websocket, H2C"} {
			before := len(app.Requests())
			resp := upgradeVia(t, gw, tc.host, tc.path, proto, tc.extra+h2cSettings)
			if resp.StatusCode != http.StatusBadRequest || len(app.Requests()) != before {
				t.Errorf("%s, Upgrade: %s: %d, %d request(s) reached the app; want 400 and none",
					tc.name, proto, resp.StatusCode, len(app.Requests())-before)
			} else if b, _ := io.ReadAll(resp.Body); !strings.Contains(string(b), "upgrade_not_allowed") {
				t.Errorf("%s, Upgrade: %s: the refusal reads %s", tc.name, proto, b)
			}
		}
	}

	// forward_auth's own listener decides with the same Guard: h2c is
	// refused there too, WebSocket answered as the request it is.
	for proto, want := range map[string]int{"h2c": http.StatusBadRequest, "websocket": http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, "http://auth.sso.test/_auth/verify", nil)
		req.Header.Set("X-Original-URL", s.App1+"/x")
		req.Header.Set("Cookie", appSessionCookie(t, b, s.App3))
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", proto)
		if a := askAt(t, s.verifyPort, false, req); a.status != want || (want == http.StatusBadRequest) != strings.Contains(a.body, "upgrade_not_allowed") {
			t.Errorf("the listener, Upgrade: %s: %d %s, want %d", proto, a.status, a.body, want)
		}
	}

	// WebSocket: the app gets the upgrade, with the identity when signed
	// in, and the tunnel carries bytes both ways.
	ws := "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for _, tc := range []struct {
		name, host, path, extra string
		identity                bool
	}{
		{"forward_auth recipe, signed in", app6, "/ws", cookie, true},
		{"handler, signed in", app7, "/ws", cookie, true},
		{"handler, public, anonymous", app7, "/blog/ws", "", false},
	} {
		before := len(app.Requests())
		resp := upgradeVia(t, gw, tc.host, tc.path, "websocket", tc.extra+ws)
		reqs := app.Requests()
		if resp.StatusCode != http.StatusSwitchingProtocols || len(reqs) != before+1 {
			t.Errorf("%s, WebSocket: %d, %d request(s) reached the app; want 101 and one", tc.name, resp.StatusCode, len(reqs)-before)
			continue
		}
		got := reqs[len(reqs)-1]
		if got.Header.Get("Upgrade") != "websocket" || (got.Header.Get("X-Auth-User-Id") != "") != tc.identity {
			t.Errorf("%s, WebSocket: the app got Upgrade %q, X-Auth-User-Id %q", tc.name, got.Header.Get("Upgrade"), got.Header.Get("X-Auth-User-Id"))
		}
	}
}

// nginx leaves Upgrade out of auth_request's question: an app location that
// passes upgrades on (the usual WebSocket lines) handed an h2c upgrade to
// the app, whose HTTP/2 connection no later auth_request saw (the fourth
// attack pass). The docs' verify location passes the client's Upgrade, so
// the gateway refuses h2c there (400, shown by nginx as 500) and the app
// sees nothing; WebSocket still reaches it with the identity.
func TestUpgrade_NginxWithWebSocketLinesRefusesH2C(t *testing.T) {
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skip("nginx is not installed (.ci/run installs it)")
	}
	s := startSSOGateway(t)
	s.nginxAsks = s.gwPort
	app := newLenientApp(t)
	s.startNginxWith(func(dir string) string {
		return replaceAll(t, s.nginxConf(dir), "\t\t\tproxy_pass http://"+s.Upstream.Addr()+";",
			"\t\t\tproxy_http_version 1.1;\n\t\t\tproxy_set_header Upgrade $http_upgrade;\n"+
				"\t\t\tproxy_set_header Connection $http_connection;\n\t\t\tproxy_pass http://"+app.Addr()+";")
	})
	b := ssoBrowser(t)
	s.signInAt(b, s.App3+"/")
	cookie := "Cookie: " + appSessionCookie(t, b, s.App3) + "\r\n"
	ngx := fmt.Sprintf("127.0.0.1:%d", s.nginxPort)
	app1 := fmt.Sprintf("app1.sso.test:%d", s.nginxPort)
	for _, proto := range []string{"h2c", "websocket, h2c", "HTTP/2.0"} {
		before := len(app.Requests())
		resp := upgradeVia(t, ngx, app1, "/x", proto, cookie+h2cSettings)
		if resp.StatusCode == http.StatusSwitchingProtocols || resp.StatusCode < 400 || len(app.Requests()) != before {
			t.Errorf("through nginx, Upgrade: %s: %d, %d request(s) reached the app; want a refusal and none",
				proto, resp.StatusCode, len(app.Requests())-before)
		}
	}
	ws := "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	before := len(app.Requests())
	resp := upgradeVia(t, ngx, app1, "/ws", "websocket", cookie+ws)
	if reqs := app.Requests(); resp.StatusCode != http.StatusSwitchingProtocols || len(reqs) != before+1 ||
		reqs[len(reqs)-1].Header.Get("X-Auth-User-Id") == "" {
		t.Errorf("WebSocket through nginx: %d, %d request(s) at the app; want 101 and one with the identity", resp.StatusCode, len(reqs)-before)
	}
}
