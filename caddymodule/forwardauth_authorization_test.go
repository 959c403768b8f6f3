package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// signInNativeSSO signs in as a native app at the gateway of s (its
// 127.0.0.1 site), through the dev provider, as signInNative does, and
// returns the session token.
func signInNativeSSO(t *testing.T, s *ssoEnv) string {
	t.Helper()
	e := *s.env
	e.Base = fmt.Sprintf("http://127.0.0.1:%d", s.gwPort)
	app := newNativeApp()
	recordSecret(app.challenge)
	recordSecret(app.verifier)
	b := newBrowser(t)
	q := url.Values{"redirect_url": {"myapp://cb"}, "code_challenge": {app.challenge}}
	resp, _ := b.get(e.Base + "/_auth/oauth/dev/start?" + q.Encode())
	resp, _, _ = b.atDevProvider(location(t, resp), ada)
	for loc := location(t, resp); strings.HasPrefix(loc, "http"); loc = location(t, resp) {
		resp, _ = b.get(loc)
	}
	back, _ := url.Parse(location(t, resp))
	status, out := redeem(t, &e, back.Query().Get("rotating_token_nonce"), app.verifier)
	token, _ := out["session_token"].(string)
	if status != http.StatusOK || token == "" {
		t.Fatalf("native session token: %d %v", status, out)
	}
	recordSecret(token)
	return token
}

// appGetsItsOwnAuthorization sends requests signed in by a native app's
// session token or by the session cookie to each app, with Authorization
// values that mix the token with the app's own, and checks that the app
// gets its own, as sent, and never the token: no Authorization at all when
// the request carried none of the app's. nginx refuses (400) a request
// with two Authorization lines before it asks the gateway.
func appGetsItsOwnAuthorization(t *testing.T, s *ssoEnv, token, session string, apps ...string) {
	t.Helper()
	for _, app := range apps {
		for _, c := range []struct {
			name   string
			cookie string
			lines  []string
			want   string // "" for no Authorization header
		}{
			{"the session token", "", []string{"Bearer " + token}, ""},
			{"the token, then the app's", "", []string{"Bearer " + token, "Bearer app-token"}, "Bearer app-token"},
			{"the cookie and the token", session, []string{"Bearer " + token}, ""},
			{"the cookie and the app's", session, []string{"Bearer app-token"}, "Bearer app-token"},
			{"the cookie, the app's, then the token", session, []string{"Bearer app-token", "Bearer " + token}, "Bearer app-token"},
			{"the cookie and no Authorization", session, nil, ""},
		} {
			n := len(s.Upstream.Requests())
			req, _ := http.NewRequest(http.MethodGet, app+"/", nil)
			req.Header["Authorization"] = c.lines
			if c.cookie != "" {
				req.Header.Set("Cookie", c.cookie)
			}
			resp, err := ssoBrowser(t).c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if len(c.lines) > 1 && strings.Contains(app, fmt.Sprintf(":%d", s.nginxPort)) {
				// nginx refuses a duplicate Authorization line itself.
				if resp.StatusCode != http.StatusBadRequest || len(s.Upstream.Requests()) != n {
					t.Errorf("%s, %s: %d, want nginx's 400 and nothing at the app", app, c.name, resp.StatusCode)
				}
				continue
			}
			if resp.StatusCode != http.StatusOK || len(s.Upstream.Requests()) == n {
				t.Errorf("%s, %s: %d, want the app's page", app, c.name, resp.StatusCode)
				continue
			}
			got := s.Upstream.Last(t)["Authorization"]
			if c.want == "" && got != nil || c.want != "" && (len(got) != 1 || got[0] != c.want) {
				t.Errorf("%s, %s: the app got Authorization %q, want %q", app, c.name, got, c.want)
			}
		}
	}
}

// A native app's session token never reaches the apps behind the nginx
// and Caddy recipes; their own Authorization does.
func TestForwardAuth_SessionTokensNeverReachTheApp(t *testing.T) {
	s := newSSOEnv(t)
	b := ssoBrowser(t)
	s.signInAt(b, s.App1+"/")
	appGetsItsOwnAuthorization(t, s, signInNativeSSO(t, s), appSessionCookie(t, b, s.App1), s.App1, s.App3)
}

// Behind Traefik too: authResponseHeaders lists Authorization.
func TestForwardAuth_Traefik_SessionTokensNeverReachTheApp(t *testing.T) {
	s := newTraefikEnv(t)
	b := ssoBrowser(t)
	s.signInAt(b, s.App1+"/")
	appGetsItsOwnAuthorization(t, s.ssoEnv, signInNativeSSO(t, s.ssoEnv), appSessionCookie(t, b, s.App1), s.App1, s.App2)
}
