package caddymodule_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A native app signs out with its session token: POST /_auth/sign-out with
// Authorization: Bearer ends the session that token names, whatever the
// request's cookies, and answers JSON (the ended session) rather than a
// redirect meant for a browser. It needs no CSRF token (nothing sends an
// Authorization header on its own) but accepts one, as a client that read
// the sign-out page sends it. Found open by a red-team run: the sign-out
// "succeeded" (303, logged, counted) and the token kept working.
func TestSignOut_ASessionTokenEndsItsSession(t *testing.T) {
	e, _ := newAdvEnv(t, "")
	reaches := func(token string) int {
		t.Helper()
		resp, _ := advDo(t, http.MethodGet, e.Base+"/p", http.Header{"Authorization": {"Bearer " + token}, "Accept": {"application/json"}}, nil)
		return resp.StatusCode
	}
	signOut := func(token string, form url.Values) (*http.Response, map[string]any) {
		t.Helper()
		resp, body := advDo(t, http.MethodPost, e.Base+"/_auth/sign-out", http.Header{
			"Authorization": {"Bearer " + token}, "Content-Type": {"application/x-www-form-urlencoded"},
		}, strings.NewReader(form.Encode()))
		var out map[string]any
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("sign-out answered %d, not JSON: %.200s", resp.StatusCode, body)
		}
		return resp, out
	}

	for _, how := range []string{"as a browser would (the sign-out page's CSRF token)", "without a CSRF token"} {
		t.Run(how, func(t *testing.T) {
			token, sessionID := signInNative(t, e)
			other, _ := signInNative(t, e)
			if reaches(token) != http.StatusOK {
				t.Fatal("the fresh session token does not reach the app")
			}
			form := url.Values{}
			if strings.HasPrefix(how, "as a browser") {
				resp, page := advDo(t, http.MethodGet, e.Base+"/_auth/sign-out", http.Header{"Authorization": {"Bearer " + token}}, nil)
				csrf := htmlUnescape(between(page, `name="csrf_token" value="`, `"`))
				if resp.StatusCode != http.StatusOK || csrf == "" {
					t.Fatalf("the sign-out page for the token: status %d, csrf %q", resp.StatusCode, csrf)
				}
				form.Set("csrf_token", csrf)
			}
			resp, out := signOut(token, form)
			if resp.StatusCode != http.StatusOK || out["id"] != sessionID || out["status"] != "ended" {
				t.Fatalf("sign-out: status %d %v, want 200 and the session %s ended", resp.StatusCode, out, sessionID)
			}
			if got := reaches(token); got != http.StatusUnauthorized {
				t.Errorf("after a successful sign-out the session token still reaches the app: status %d, want 401", got)
			}
			if reaches(other) != http.StatusOK {
				t.Error("another session of the app ended")
			}
			// Signing out again with the dead token: 401, as everywhere.
			if resp, out := signOut(token, nil); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("a sign-out with a dead token: status %d %v, want 401", resp.StatusCode, out)
			}
		})
	}

	// A browser's cookie still needs the CSRF token: the sign-out of a
	// cookie can be forged by another site, a token's cannot.
	t.Run("a cookie without a CSRF token", func(t *testing.T) {
		b := newBrowser(t)
		signInCorp(b, e)
		if resp, _ := b.post(e.Base+"/_auth/sign-out", url.Values{}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a cookie's sign-out without a CSRF token: status %d, want 403", resp.StatusCode)
		}
		if !b.signedIn(e) {
			t.Error("the refused sign-out ended the session")
		}
	})
}
