package caddymodule_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Red-team findings, each reproduced through a real Caddy. Every test here
// fails on the code it was written against and passes once the finding is
// fixed. Run them alone: go test -run 'TestRedTeam' ./caddymodule/

// Finding 1: POST /_auth/sign-out with a native app's session token
// (Authorization: Bearer) answers like a successful sign-out (303 to the
// sign-in page, "signed out" in the log, sessions{event="ended"}), but only
// the sessions of the request's cookies are deleted (session.Manager.End):
// the token keeps working. "Sign-out deletes the server-side record, so a
// replayed cookie is dead" holds for cookies only.
func TestRedTeam_SignOutWithASessionTokenEndsItsSession(t *testing.T) {
	e, _ := newAdvEnv(t, "")
	token, _ := signInNative(t, e)
	bearer := http.Header{"Authorization": {"Bearer " + token}, "Accept": {"application/json"}}
	if resp, _ := advDo(t, http.MethodGet, e.Base+"/p", bearer, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the fresh session token: status %d", resp.StatusCode)
	}

	// The app signs out as a browser would: the sign-out page gives the
	// session's CSRF token, the POST ends the session.
	resp, page := advDo(t, http.MethodGet, e.Base+"/_auth/sign-out", http.Header{"Authorization": {"Bearer " + token}}, nil)
	csrf := htmlUnescape(between(page, `name="csrf_token" value="`, `"`))
	if resp.StatusCode != http.StatusOK || csrf == "" {
		t.Fatalf("the sign-out page for the token: status %d, csrf %q", resp.StatusCode, csrf)
	}
	resp, _ = advDo(t, http.MethodPost, e.Base+"/_auth/sign-out", http.Header{
		"Authorization": {"Bearer " + token}, "Content-Type": {"application/x-www-form-urlencoded"},
	}, strings.NewReader(url.Values{"csrf_token": {csrf}}.Encode()))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: status %d", resp.StatusCode)
	}

	if resp, _ := advDo(t, http.MethodGet, e.Base+"/p", bearer, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after a successful sign-out the session token still reaches the app: status %d, want 401", resp.StatusCode)
	}
}
