package caddymodule_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An address is trimmed of surrounding whitespace and must then be a plain
// addr-spec (store.CleanEmail). Found open by a red-team run: a provider
// asserting " victim@example.com" (verified) made a second user hold it
// verified beside the victim, and HTTP drops the space, so the upstream
// read the victim's address.

// A first sign-in with the held address spaced is refused as with the
// address itself (email_held); connected from an account of one's own, it
// stays unverified; either way it never reaches the upstream.
func TestEmailClean_ASpacedAddressIsTheHeldAddress(t *testing.T) {
	e := newLinkByEmailEnv(t, "", clubRoute)
	victim, resp, _ := e.signInAt("corp")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the victim's sign-in: status %d", resp.StatusCode)
	}
	victimID := victim.me(e.env)["id"]
	for i, spaced := range []string{" " + victimEmail, victimEmail + " ", "\t" + victimEmail, victimEmail + "\u00a0"} {
		e.shady.SetClaims(map[string]any{"id": "mallory-" + string(rune('a'+i)), "mail": spaced, "mail_ok": true, "name": "Mallory"})
		b, resp, _ := e.signInAt("shady")
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("a sign-in asserting %q: status %d, want 409 email_held", spaced, resp.StatusCode)
			if b.signedIn(e.env) {
				e.standsOnlyFor(b, victimID)
			}
		}
	}
	e.shady.SetClaims(map[string]any{"id": "mallory-connect", "mail": " " + victimEmail, "mail_ok": true, "name": "Mallory"})
	mallory := newBrowser(t)
	mallory.signInDev(e.env, "/inbox", person("Mallory", "mallory@evil.example", false))
	_, csrf := mallory.accountPage(e.env)
	resp, _ = mallory.follow(mallory.post(e.Base+"/_auth/account/connect", url.Values{"csrf_token": {csrf}, "provider": {"shady"}}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("connecting shady: status %d", resp.StatusCode)
	}
	e.standsOnlyFor(mallory, victimID)
	if resp, _ := victim.get(e.Base + "/club/x"); resp.StatusCode != http.StatusOK {
		t.Errorf("allow_emails %s refused its holder: status %d", victimEmail, resp.StatusCode)
	}
}

// An assertion that is not a plain address (a zero-width space, a display
// name, a full-width look-alike) is no address: the sign-in goes on without
// one, nothing reaches the upstream, and the log says so without the
// address.
func TestEmailClean_NotAnAddressIsNoAddress(t *testing.T) {
	e := newLinkByEmailEnv(t, "", clubRoute)
	victim, _, _ := e.signInAt("corp")
	victimID := victim.me(e.env)["id"]
	for i, bad := range []string{victimEmail + "\u200b", "Victim <" + victimEmail + ">", "\uff56ictim@example.com", "victim @example.com"} {
		e.shady.SetClaims(map[string]any{"id": "odd-" + string(rune('a'+i)), "mail": bad, "mail_ok": true, "name": "Odd"})
		b, resp, _ := e.signInAt("shady")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a sign-in asserting %q: status %d, want 200", bad, resp.StatusCode)
		}
		me := b.me(e.env)
		if got := me["primary_email_address"]; got != nil && got != "" {
			t.Errorf("asserting %q: primary_email_address %q, want none", bad, got)
		}
		if addrs, _ := me["email_addresses"].([]any); len(addrs) != 0 {
			t.Errorf("asserting %q: the user has addresses %v, want none", bad, addrs)
		}
		e.standsOnlyFor(b, victimID)
		if got := e.Upstream.Last(t).Get("X-Auth-User-Email"); got != "" {
			t.Errorf("asserting %q: the upstream saw X-Auth-User-Email %q", bad, got)
		}
	}
	log, _ := os.ReadFile(filepath.Join(e.Storage, "debug.log"))
	if n := strings.Count(string(log), "not a plain address"); n != 4 {
		t.Errorf("the log notes %d sign-ins with an address that is not one, want 4", n)
	}
	if strings.Contains(string(log), "\uff56ictim") || strings.Contains(string(log), `Victim \u003c`) {
		t.Error("the log holds the asserted address")
	}
}
