package caddymodule_test

import (
	"net/http"
	"net/url"
	"testing"
)

// A verified address belongs to one user at a time (store.Emails): every
// other user that carries it, whatever the path that brought it (a sign-up
// beside its holder, a connect, a provider's change), has it unverified, and
// it reaches no upstream, identity token, /me, API or allow_emails rule as
// theirs. Found open by a red-team run.

// clubRoute admits only the victim's address.
const clubRoute = "route /club/* {\n\t\tsocialgate {\n\t\t\tallow_emails " + victimEmail + "\n\t\t}\n\t}"

// standsOnlyFor checks everything that may present victimEmail as the user
// of b: upstream headers, the identity token and /me carry another or no
// address, the club route refuses b, and the API lists the address as
// verified on holder only.
func (e *linkEnv) standsOnlyFor(b *browser, holder any) {
	e.t.Helper()
	me := b.me(e.env)
	if me["id"] == holder {
		e.t.Fatal("the browser is signed in to the holder's user")
	}
	if got := me["primary_email_address"]; got == victimEmail {
		e.t.Errorf("primary_email_address of user %v is the holder's %q", me["id"], got)
	}
	if _, err := b.c.Get(e.Base + "/inbox"); err != nil {
		e.t.Fatal(err)
	}
	up := e.Upstream.Last(e.t)
	if up.Get("X-Auth-User-Id") != me["id"] {
		e.t.Fatalf("the upstream saw %q, want %v", up.Get("X-Auth-User-Id"), me["id"])
	}
	if got := up.Get("X-Auth-User-Email"); got == victimEmail {
		e.t.Errorf("user %v reaches the app as %s (X-Auth-User-Email-Verified: %s), an address another user holds",
			me["id"], got, up.Get("X-Auth-User-Email-Verified"))
	}
	if claims := identityClaims(e.t, b, e.env, up.Get("X-Auth-Jwt")); claims["email"] == victimEmail {
		e.t.Errorf("the identity token of user %v carries %v (email_verified %v)", me["id"], claims["email"], claims["email_verified"])
	}
	if resp, _ := b.get(e.Base + "/club/x"); resp.StatusCode != http.StatusForbidden {
		e.t.Errorf("allow_emails %s: user %v got status %d, want 403", victimEmail, me["id"], resp.StatusCode)
	}
	status, list := apiGet(e.t, http.DefaultClient, e.Base+"/_auth/api/v1/users?paginated=true&email_address="+url.QueryEscape(victimEmail),
		http.Header{"Authorization": {"Bearer " + apiKey}})
	if status != http.StatusOK {
		e.t.Fatalf("listing the users with the address: status %d", status)
	}
	var verifiedOn []any
	for _, u := range list["data"].([]any) {
		user := u.(map[string]any)
		for _, a := range user["email_addresses"].([]any) {
			addr := a.(map[string]any)
			if addr["email_address"] == victimEmail && addr["verification"].(map[string]any)["status"] == "verified" {
				verifiedOn = append(verifiedOn, user["id"])
			}
		}
	}
	if len(verifiedOn) != 1 || verifiedOn[0] != holder {
		e.t.Errorf("the API lists %s as verified on %v, want on its holder %v only", victimEmail, verifiedOn, holder)
	}
}

// Mallory signs up first through shady (not trusted for linking) with the
// victim's address; the victim's first sign-in through corp (trusted) takes
// the address over. Mallory's session that carried it ends, and her later
// sign-ins never present it again.
func TestEmailHolder_ATakenOverAddressNoLongerStandsForTheSquatter(t *testing.T) {
	e := newLinkByEmailEnv(t, "", clubRoute)
	mallory, _, _ := e.signInAt("shady")
	malloryID := mallory.me(e.env)["id"]

	victim, resp, _ := e.signInAt("corp")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the victim's sign-in: status %d", resp.StatusCode)
	}
	victimID := victim.me(e.env)["id"]
	if victimID == malloryID {
		t.Fatal("the victim landed in Mallory's user")
	}
	if mallory.signedIn(e.env) {
		t.Error("Mallory's session, which carried the taken-over address, survived the take-over")
	}
	if resp, _ := victim.get(e.Base + "/club/x"); resp.StatusCode != http.StatusOK {
		t.Errorf("allow_emails %s refused its holder: status %d", victimEmail, resp.StatusCode)
	}

	// Mallory signs in again later, from a fresh browser.
	mallory2, _, _ := e.signInAt("shady")
	if got := mallory2.me(e.env)["id"]; got != malloryID {
		t.Fatalf("Mallory's second sign-in landed in %v, want her user %v", got, malloryID)
	}
	e.standsOnlyFor(mallory2, victimID)
}

// The email_held refusal cannot be bypassed by connecting: Mallory, refused
// a sign-in through shady with an address corp vouched for another user,
// signs in with an identity of her own and connects shady from her account
// page. The connect links the identity (she proved she holds it), but the
// address stays the victim's.
func TestEmailHolder_ConnectingCannotBypassTheEmailHeldRefusal(t *testing.T) {
	e := newLinkByEmailEnv(t, "", clubRoute)
	victim, resp, _ := e.signInAt("corp")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the victim's sign-in: status %d", resp.StatusCode)
	}
	victimID := victim.me(e.env)["id"]

	// The direct way is refused, as documented.
	_, resp, _ = e.signInAt("shady")
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("Mallory's sign-in through shady: status %d, want 409 email_held", resp.StatusCode)
	}

	// Mallory signs in with an identity of her own, then connects shady.
	mallory := newBrowser(t)
	mallory.signInDev(e.env, "/inbox", person("Mallory", "mallory@evil.example", false))
	_, csrf := mallory.accountPage(e.env)
	resp, _ = mallory.follow(mallory.post(e.Base+"/_auth/account/connect", url.Values{"csrf_token": {csrf}, "provider": {"shady"}}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("connecting shady: status %d", resp.StatusCode)
	}
	if got := providersOf(mallory.me(e.env)); len(got) != 2 {
		t.Fatalf("Mallory's accounts after the connect: %q", got)
	}
	e.standsOnlyFor(mallory, victimID)
	if !victim.signedIn(e.env) {
		t.Error("the holder's session ended")
	}
	if resp, _ := victim.get(e.Base + "/club/x"); resp.StatusCode != http.StatusOK {
		t.Errorf("allow_emails %s refused its holder: status %d", victimEmail, resp.StatusCode)
	}
}

// A known shady identity whose address later changes, at shady, to one that
// a trusted provider vouched for another user does not get it verified at
// its next sign-in.
func TestEmailHolder_AKnownIdentitysNewAddressHeldElsewhereStaysUnverified(t *testing.T) {
	e := newLinkByEmailEnv(t, "", clubRoute)
	e.shady.SetClaims(map[string]any{"id": "mallory", "mail": "mallory@evil.example", "mail_ok": true, "name": "Mallory"})
	if _, resp, _ := e.signInAt("shady"); resp.StatusCode != http.StatusOK {
		t.Fatalf("Mallory's sign-up: status %d", resp.StatusCode)
	}
	victim, _, _ := e.signInAt("corp")
	victimID := victim.me(e.env)["id"]

	e.shady.SetClaims(map[string]any{"id": "mallory", "mail": victimEmail, "mail_ok": true, "name": "Mallory"})
	mallory, resp, _ := e.signInAt("shady")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Mallory's sign-in with her new address: status %d", resp.StatusCode)
	}
	e.standsOnlyFor(mallory, victimID)
}
