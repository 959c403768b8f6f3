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

// Finding 3: disconnecting a linked account (account page, backend API or
// CLI) leaves every session that was signed in through that account alive.
// Whoever signed in with the identity the user just removed (a compromised
// or shared account at the provider, an identity linked by mistake: the
// very case the link-by-email notice tells people to "disconnect any that
// is not yours" for) keeps the user's account for the session's whole
// lifetime. store.DeleteExternalAccount removes the account and its email
// vouching but no session, though each session records its AccountID.
func TestRedTeam_DisconnectEndsTheSessionsSignedInThroughTheAccount(t *testing.T) {
	e, _ := newLinkEnv(t, "", "")
	owner := newBrowser(t)
	owner.signInDev(e, "/", ada)
	if resp, _ := owner.connectCorp(e); resp.StatusCode != http.StatusOK {
		t.Fatalf("connecting corp: status %d", resp.StatusCode)
	}
	me := owner.me(e)
	corpID := accountID(me, "oauth_corp")
	if corpID == "" {
		t.Fatal("corp is not linked")
	}

	// Someone else who holds the corp identity signs in through it.
	intruder := newBrowser(t)
	intruder.follow(intruder.get(location(t, intruder.startSignIn(e, "/", "corp"))))
	if got := intruder.me(e)["id"]; got != me["id"] {
		t.Fatalf("the corp sign-in landed in %v, want the owner's %v", got, me["id"])
	}

	// The owner removes the corp identity from the account.
	_, csrf := owner.accountPage(e)
	resp, _ := owner.post(e.Base+"/_auth/account/disconnect", url.Values{"csrf_token": {csrf}, "account_id": {corpID}})
	if loc := location(t, resp); !strings.HasSuffix(loc, "/_auth/account?notice=disconnected") {
		t.Fatalf("disconnect went to %s", loc)
	}
	if got := providersOf(owner.me(e)); len(got) != 1 || got[0] != "oauth_dev" {
		t.Fatalf("the owner's accounts after the disconnect: %q", got)
	}

	if intruder.signedIn(e) {
		t.Error("the session signed in through the disconnected corp account still works")
	}
	if resp, _ := intruder.get(e.Base + "/"); resp.StatusCode == http.StatusOK {
		t.Error("the session signed in through the disconnected corp account still reaches the app")
	}
}
