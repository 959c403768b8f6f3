package caddymodule_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// forged is the value a client puts in the identity headers it sends.
const forged = "corp:admins"

// carriesForged reports whether h has a header of the gateway's namespace,
// in any spelling, with the client's value.
func carriesForged(h http.Header) bool {
	for k, v := range h {
		n := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(k))
		if strings.HasPrefix(n, "x-auth-") && slices.Contains(v, forged) {
			return true
		}
	}
	return false
}

func TestForwardAuth_ClientIdentityHeadersNeverReachTheApp(t *testing.T) {
	s := newSSOEnv(t)
	b := ssoBrowser(t)
	s.signInAt(b, s.App1+"/")

	// Through the documented recipes, a signed-in user's request gets the
	// gateway's identity, every header of it.
	for _, app := range []string{s.App1, s.App3} {
		if resp, _ := b.get(app + "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", app, resp.StatusCode)
		}
		got := s.Upstream.Last(t)
		if got.Get("X-Auth-User-Email-Verified") != "true" || !strings.HasPrefix(got.Get("X-Auth-Session-Id"), "sess_") ||
			got.Get("X-Auth-User-Name") != "Ada Lovelace" || got.Get("X-Auth-User-Groups") != "" {
			t.Errorf("%s: the app got %v", app, got)
		}
	}

	// Headers the recipes once left out, and spellings an upstream reads as
	// the same name: the gateway sees them in the proxy's question and
	// refuses it, whichever headers the proxy copies back.
	names := []string{"X-Auth-User-Groups", "X-Auth-User-Email-Verified", "X-Auth-Session-Id", "x-auth-user-id",
		"X.Auth.User.Groups", "X_Auth_User_Groups", "X-Auth-Something-New"}
	for _, app := range []string{s.App1, s.App3} {
		for _, name := range names {
			req, _ := http.NewRequest(http.MethodGet, app+"/x", nil)
			req.Header[name] = []string{forged}
			req.Header.Set("Accept", "application/json")
			before := len(s.Upstream.Requests())
			resp, body := b.do(req)
			reached := s.Upstream.Requests()[before:]
			for _, got := range reached {
				if carriesForged(got) {
					t.Errorf("%s: the client's %s reached the app: %v", app, name, got)
				}
			}
			switch {
			case strings.ContainsAny(name, "_."):
				// Both proxies drop such names before anyone reads them
				// (nginx's underscores_in_headers off and
				// ignore_invalid_headers, Caddy's server); the gateway
				// refuses them from a proxy that passes them (verify_test.go).
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s with %s: %d, want the proxy to drop the header and pass", app, name, resp.StatusCode)
				}
			case app == s.App1:
				// The gateway's 400, which auth_request turns into 500.
				if resp.StatusCode != http.StatusInternalServerError || len(reached) != 0 {
					t.Errorf("%s with %s: %d, %d reached the app; want 500 and none", app, name, resp.StatusCode, len(reached))
				}
			default:
				// forward_auth passes the gateway's refusal on.
				if resp.StatusCode != http.StatusBadRequest || len(reached) != 0 || !strings.Contains(body, "the gateway's namespace") {
					t.Errorf("%s with %s: %d %s, %d reached the app; want 400 and none", app, name, resp.StatusCode, body, len(reached))
				}
			}
		}
	}
}

func TestForwardAuth_ARefusalOnTheAppsHostCarriesNoSessionToken(t *testing.T) {
	s := newSSOEnv(t)
	b := ssoBrowser(t)
	s.signInAt(b, s.App1+"/")
	app5 := fmt.Sprintf("http://app5.sso.test:%d", s.gwPort)
	// The gateway's own sign-out page holds the session's CSRF token.
	_, page := b.get(s.Auth + "/_auth/sign-out")
	token := strings.SplitN(page, `name="csrf_token" value="`, 2)
	if len(token) != 2 {
		t.Fatal("the gateway's sign-out page holds no CSRF token")
	}
	csrf := token[1][:strings.IndexByte(token[1], '"')]

	// forward_auth hands the policy's refusal to the browser on app5's
	// origin, where the app's scripts can read it: no token there, and
	// sign-out is a link to the gateway's page.
	resp, body := b.get(app5 + "/admin")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("app5 under the policy nobody: %d, want 403", resp.StatusCode)
	}
	if strings.Contains(body, csrf) || strings.Contains(body, "csrf_token") {
		t.Errorf("the refusal on the app's host carries the session's CSRF token:\n%s", body)
	}
	if !strings.Contains(body, `href="`+s.Auth+`/_auth/sign-out"`) || strings.Contains(body, `="/_auth/`) {
		t.Errorf("the refusal's links are not the gateway's own:\n%s", body)
	}
	req, _ := http.NewRequest(http.MethodGet, app5+"/api", nil)
	req.Header.Set("Accept", "application/json")
	if resp, body = b.do(req); resp.StatusCode != http.StatusForbidden || strings.Contains(body, csrf) {
		t.Errorf("a fetch on app5: %d %s", resp.StatusCode, body)
	}
}

func TestForwardAuth_CaddyConnectionNamingIdentityHeadersIsRefused(t *testing.T) {
	s := newSSOEnv(t)
	b := ssoBrowser(t)
	s.signInAt(b, s.App3+"/")
	// Caddy drops the headers that Connection names from forward_auth's
	// question (the gateway never sees them) and from the request to the
	// app after copy_headers set them: the app would get a request the
	// gateway approved without its user id and signed token.
	for _, conn := range []string{"keep-alive, X-Auth-User-Id, X-Auth-Jwt", "x_auth_jwt", "X-AUTH-USER-GROUPS"} {
		req, _ := http.NewRequest(http.MethodGet, s.App3+"/x", nil)
		req.Header.Set("Connection", conn)
		before := len(s.Upstream.Requests())
		resp, _ := b.do(req)
		if resp.StatusCode != http.StatusBadRequest || len(s.Upstream.Requests()) != before {
			t.Errorf("Connection: %s: %d, %d reached the app; want 400 and none", conn, resp.StatusCode, len(s.Upstream.Requests())-before)
		}
	}
	// An ordinary Connection header passes, with the whole identity.
	req, _ := http.NewRequest(http.MethodGet, s.App3+"/x", nil)
	req.Header.Set("Connection", "keep-alive")
	if resp, _ := b.do(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("Connection: keep-alive: %d", resp.StatusCode)
	}
	if got := s.Upstream.Last(t); got.Get("X-Auth-User-Id") == "" || got.Get("X-Auth-Jwt") == "" {
		t.Errorf("the app got a partial identity: %v", got)
	}
}

// The apps behind the nginx and Caddy recipes get their own cookies and
// none of the gateway's (forwardauth_traefik_test.go tries Traefik's).
func TestForwardAuth_GatewayCookiesNeverReachTheApp(t *testing.T) {
	s := newSSOEnv(t)
	b := ssoBrowser(t)
	s.signInAt(b, s.App1+"/")
	session := appSessionCookie(t, b, s.App1)
	appGetsItsOwnCookies(t, s, session, s.App1, s.App3)
	// Caddy's forward_auth logs the verify answer's headers at DEBUG: its
	// Cookie as REDACTED.
	log, err := os.ReadFile(filepath.Join(s.Storage, "debug.log"))
	if err != nil || !strings.Contains(string(log), "upstream roundtrip") {
		t.Fatalf("no DEBUG log of forward_auth's round trips (%v)", err)
	}
	_, value, _ := strings.Cut(session, "=")
	for _, secret := range []string{value, "app_pref=1", "theme=dark"} {
		if strings.Contains(string(log), secret) {
			t.Errorf("the log has the cookie %q", secret)
		}
	}
}

// appGetsItsOwnCookies sends signed-in requests (session is the session
// cookie) to each app with Cookie headers that mix the app's cookies with
// the gateway's, under every name of each (session.Names), and checks that
// the app gets its own, as sent and in order, and none of the gateway's:
// no Cookie at all when the request carried only the gateway's.
func appGetsItsOwnCookies(t *testing.T, s *ssoEnv, session string, apps ...string) {
	t.Helper()
	every := session + "; socialgate_session=a; __Host-socialgate_session=b; __Secure-socialgate_session=c; " +
		"socialgate_flow=d; __Host-socialgate_flow=e; __Secure-socialgate_flow=f"
	for _, app := range apps {
		for _, c := range []struct {
			lines []string
			want  string // "" for no Cookie header
		}{
			{[]string{"app_pref=1; " + session + "; theme=dark"}, "app_pref=1; theme=dark"},
			{[]string{session + "; app_pref=1; socialgate_flow=f; theme=dark"}, "app_pref=1; theme=dark"},
			{[]string{"__Host-socialgate_flow=f; app_pref=1; " + session + "; theme=dark; my_socialgate_session=mine"},
				"app_pref=1; theme=dark; my_socialgate_session=mine"},
			{[]string{"a=1; " + every + "; b=socialgate_session; xsocialgate_flow=2"}, "a=1; b=socialgate_session; xsocialgate_flow=2"},
			// Caddy's copy_headers sets the answer through a placeholder:
			// one in a cookie's value stays as sent.
			{[]string{session + "; p={http.request.uri}; q=$host"}, "p={http.request.uri}; q=$host"},
			// One line per cookie, as HTTP/2 sends them.
			{[]string{"app_pref=1", session, "theme=dark", "socialgate_flow=f"}, "app_pref=1; theme=dark"},
			{[]string{session}, ""},
			{[]string{every}, ""},
			{[]string{session, "__Host-socialgate_flow=f"}, ""},
		} {
			n := len(s.Upstream.Requests())
			req, _ := http.NewRequest(http.MethodGet, app+"/", nil)
			req.Header["Cookie"] = c.lines
			resp, err := ssoBrowser(t).c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || len(s.Upstream.Requests()) == n {
				t.Errorf("%s with Cookie %q: %d, want the app's page", app, c.lines, resp.StatusCode)
				continue
			}
			got := s.Upstream.Last(t)["Cookie"]
			if c.want == "" && got != nil || c.want != "" && (len(got) != 1 || got[0] != c.want) {
				t.Errorf("%s with Cookie %q: the app got Cookie %q, want %q", app, c.lines, got, c.want)
			}
		}
	}
}
