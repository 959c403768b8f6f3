package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// linkEnv is a gateway with three providers that assert email addresses:
// corp and work, OpenID providers the operator trusts to vouch for linking
// by email, and shady, an oauth2 look-alike that calls whatever address its
// user typed verified (a misconfigured provider, or a hostile one); plus a
// webhook receiver.
type linkEnv struct {
	*env
	corp, work, shady *testop.Server
	hooks             *hookReceiver
}

const victimEmail = "victim@example.com"

// newLinkByEmailEnv starts a linkEnv; shadyOptions are more lines of
// shady's block, site more lines of the site block.
func newLinkByEmailEnv(t *testing.T, shadyOptions, site string) *linkEnv {
	victim := func(sub string) testop.Options {
		return testop.Options{Claims: map[string]any{"sub": sub, "email": victimEmail, "email_verified": true, "name": "Victim"}}
	}
	corp, work := startOP(t, victim("victim-at-corp")), startOP(t, victim("victim-at-work"))
	shady := startOP(t, testop.Options{Mode: testop.OAuth2,
		Claims: map[string]any{"id": "mallory", "mail": victimEmail, "mail_ok": true, "name": "Mallory"}})
	hooks := newHookReceiver(t)
	o := hookOptions(hooks)
	o.Site = site
	trusted := func(name, display string, op *testop.Server) string {
		return fmt.Sprintf("provider oidc %s {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret test-secret\n"+
			"\t\t\tdisplay_name %s\n\t\t\tlink_by_email on\n\t\t}\n\t\t", name, op.URL(), display)
	}
	o.Global += "\n\t\t" + trusted("corp", "Corp", corp) + trusted("work", "Work", work) + fmt.Sprintf(`provider oauth2 shady {
			authorize_url %s
			token_url %s
			userinfo_url %s
			client_id test-client
			client_secret test-secret
			display_name Shady
			fields {
				email mail
				email_verified mail_ok
				name name
			}
			%s
		}
		redirect_urls myapp://oauth-callback`, shady.AuthorizeURL(), shady.TokenURL(), shady.UserinfoURL(), shadyOptions)
	return &linkEnv{env: newEnv(t, o), corp: corp, work: work, shady: shady, hooks: hooks}
}

// signInAt signs a new browser in through provider, starting at /inbox, and
// returns it with the final answer.
func (e *linkEnv) signInAt(provider string) (*browser, *http.Response, string) {
	b := newBrowser(e.t)
	resp, body := b.follow(b.get(location(e.t, b.startSignIn(e.env, "/inbox", provider))))
	return b, resp, body
}

// signedIn reports whether the browser's session still works.
func (b *browser) signedIn(e *env) bool {
	status, _ := apiGet(b.t, b.c, e.Base+"/_auth/me", nil)
	return status == http.StatusOK
}

func providersOf(me map[string]any) []string {
	var out []string
	for _, a := range accountsOf(me) {
		out = append(out, a["provider"].(string))
	}
	return out
}

// hooksOf returns the delivered events of a type.
func (e *linkEnv) hooksOf(typ string) []hookDelivery {
	var out []hookDelivery
	for _, d := range e.hooks.delivered() {
		if d.Type == typ {
			out = append(out, d)
		}
	}
	return out
}

// The attack from issue 13: Mallory signs up first through a provider that
// calls the victim's address verified; the victim's first sign-in must not
// land in her user, and the victim's own later providers join the victim.
func TestLinkByEmail_PreAccountHijackThroughAMisconfiguredProviderFails(t *testing.T) {
	e := newLinkByEmailEnv(t, "", "")
	mallory, resp, _ := e.signInAt("shady")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the attacker's sign-up: status %d", resp.StatusCode)
	}
	malloryMe := mallory.me(e.env)

	victim, resp, page := e.signInAt("corp")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/inbox" {
		t.Fatalf("the victim's first sign-in ended at %s (status %d): %.300s", resp.Request.URL, resp.StatusCode, page)
	}
	victimMe := victim.me(e.env)
	if victimMe["id"] == malloryMe["id"] {
		t.Fatal("the victim's first sign-in landed in the attacker's user")
	}
	if got := providersOf(victimMe); !slices.Equal(got, []string{"oauth_custom_corp"}) {
		t.Errorf("the victim's accounts = %q", got)
	}
	// The victim took the address over: the attacker's session, which
	// carried it, ended; signed in again, she has her own account only.
	if mallory.signedIn(e.env) {
		t.Error("the attacker's session carrying the taken-over address survived the take-over")
	}
	mallory, _, _ = e.signInAt("shady")
	if got := providersOf(mallory.me(e.env)); !slices.Equal(got, []string{"oauth_custom_shady"}) {
		t.Errorf("the attacker's accounts = %q: she must not hold the victim's", got)
	}

	// The victim's second trusted provider joins the victim, who is told.
	again, resp, page := e.signInAt("work")
	if resp.Request.URL.Path != "/_auth/account" || !strings.Contains(page, "same verified email address") {
		t.Fatalf("the link by email ended at %s without the notice: %.300s", resp.Request.URL, page)
	}
	if me := again.me(e.env); me["id"] != victimMe["id"] || len(accountsOf(me)) != 2 {
		t.Errorf("the victim's second provider landed in %v with %d accounts, want %v with 2", me["id"], len(accountsOf(me)), victimMe["id"])
	}
	if victim.signedIn(e.env) {
		t.Error("the victim's other session survived the link by email")
	}
	if !mallory.signedIn(e.env) {
		t.Error("the attacker's new session ended: the link by email did not involve her user")
	}
	waitFor(t, "external_account.linked_by_email", func() bool { return len(e.hooksOf("external_account.linked_by_email")) == 1 })
	if d := e.hooksOf("external_account.linked_by_email")[0].Data; d["user_id"] != victimMe["id"] || d["provider"] != "oauth_custom_work" {
		t.Errorf("external_account.linked_by_email data = %v, want the work account of %v", d, victimMe["id"])
	}
	// session.revoked: the attacker's first session at the take-over, then
	// the victim's first at the link by email.
	waitFor(t, "session.revoked", func() bool { return len(e.hooksOf("session.revoked")) == 2 })
	if d := e.hooksOf("session.revoked"); d[0].Data["id"] != malloryMe["session_id"] || d[1].Data["id"] != victimMe["session_id"] {
		t.Errorf("session.revoked is about %v then %v, want the attacker's first session %v then the victim's %v",
			d[0].Data["id"], d[1].Data["id"], malloryMe["session_id"], victimMe["session_id"])
	}
}

// An operator may trust the look-alike all the same: then the victim joins
// Mallory's user, but Mallory's sessions end, the victim sees what the
// account holds, and the backend hears of it.
func TestLinkByEmail_ALinkEndsTheHoldersSessionsAndEveryoneIsTold(t *testing.T) {
	e := newLinkByEmailEnv(t, "link_by_email on", "")
	mallory, _, _ := e.signInAt("shady")
	malloryMe := mallory.me(e.env)

	victim, resp, page := e.signInAt("corp")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/_auth/account" {
		t.Fatalf("the link by email ended at %s (status %d), want the account page", resp.Request.URL, resp.StatusCode)
	}
	for _, want := range []string{"same verified", "every other session of this account was signed out",
		"Shady", "Corp", `href="/inbox">Continue</a>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page after the link lacks %q", want)
		}
	}
	if me := victim.me(e.env); me["id"] != malloryMe["id"] {
		t.Fatalf("the rules allowed a link, but the victim is in %v, not %v", me["id"], malloryMe["id"])
	}
	if mallory.signedIn(e.env) {
		t.Error("the holder's session survived the link by email")
	}
	if resp, _ := mallory.get(e.Base + "/inbox"); resp.StatusCode != http.StatusFound {
		t.Errorf("the holder's browser reached the app after the link: status %d", resp.StatusCode)
	}

	waitFor(t, "the link's events", func() bool { return len(e.hooksOf("session.revoked")) == 1 })
	linked := e.hooksOf("external_account.linked_by_email")
	if len(linked) != 1 || linked[0].Data["user_id"] != malloryMe["id"] || linked[0].Data["provider"] != "oauth_custom_corp" || linked[0].Verified != nil {
		t.Errorf("external_account.linked_by_email deliveries = %v", linked)
	}
	if d := e.hooksOf("session.revoked")[0].Data; d["id"] != malloryMe["session_id"] || d["status"] != "revoked" {
		t.Errorf("session.revoked data = %v, want the holder's session %v", d, malloryMe["session_id"])
	}
	log, _ := os.ReadFile(filepath.Join(e.Storage, "debug.log"))
	if !strings.Contains(string(log), "linked by email") {
		t.Error("the link by email was not logged")
	}
}

// An untrusted provider's newcomer cannot join an account a trusted
// provider vouched for, nor start a second one with that address; the
// address's owner confirms by signing in to the account, then connects.
func TestLinkByEmail_AnUntrustedNewcomerIsRefusedUntilTheOwnerConnectsIt(t *testing.T) {
	e := newLinkByEmailEnv(t, "", "")
	owner, _, _ := e.signInAt("corp")
	ownerMe := owner.me(e.env)

	b, resp, page := e.signInAt("shady")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "An account here already uses "+victimEmail) ||
		!strings.Contains(page, "connect Shady from its account page") {
		t.Fatalf("an untrusted newcomer with a held address: status %d: %.400s", resp.StatusCode, page)
	}
	if b.signedIn(e.env) || userCount(t, e.env) != 1 {
		t.Errorf("the refused sign-in created something: signed in %v, %d users", b.signedIn(e.env), userCount(t, e.env))
	}

	// The owner, signed in to the account, connects shady: a link they confirmed.
	_, csrf := owner.accountPage(e.env)
	resp, page = owner.follow(owner.post(e.Base+"/_auth/account/connect", url.Values{"csrf_token": {csrf}, "provider": {"shady"}}))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Account connected.") {
		t.Fatalf("connect shady: status %d", resp.StatusCode)
	}
	again, resp, _ := e.signInAt("shady")
	if resp.StatusCode != http.StatusOK || again.me(e.env)["id"] != ownerMe["id"] {
		t.Errorf("shady after the connect: status %d, user %v, want %v", resp.StatusCode, again.me(e.env)["id"], ownerMe["id"])
	}
}

// A native app's sign-in that links by email says so in its JSON answer.
func TestLinkByEmail_ANativeAppIsToldInItsAnswer(t *testing.T) {
	e := newLinkByEmailEnv(t, "", "")
	browserSession, _, _ := e.signInAt("corp")
	app := newNativeApp()
	resp, _ := startNativeWith(newBrowser(t), e.env, "work", app, "myapp://oauth-callback")
	u, _ := url.Parse(location(t, resp))
	status, out := redeem(t, e.env, u.Query().Get("rotating_token_nonce"), app.verifier)
	if status != http.StatusOK {
		t.Fatalf("redeem: %d %v", status, out)
	}
	linked, _ := out["linked_by_email"].(map[string]any)
	if linked["provider"] != "work" || linked["email_address"] != victimEmail || linked["revoked_sessions"] != 1.0 ||
		!strings.Contains(fmt.Sprint(linked["message"]), "signed out") {
		t.Errorf("linked_by_email = %v", out["linked_by_email"])
	}
	if browserSession.signedIn(e.env) {
		t.Error("the browser's session survived the native link by email")
	}
}
