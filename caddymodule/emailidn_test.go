package caddymodule_test

import (
	"net/http"
	"testing"
)

// Every spelling of an internationalised domain is one address: the store
// keeps the domain's ASCII form (store.CleanEmail, IDNA UTS #46). Found open
// by a red-team run: victim@example。com (U+3002) stood verified beside
// victim@example.com, and victim@bücher.org beside victim@xn--bcher-kva.org,
// each for its own user, while mail servers and upstreams that normalise
// the domain take them for one mailbox.

const idnRoute = "route /idn/* {\n\t\tsocialgate {\n\t\t\tallow_emails *@bücher.example\n\t\t}\n\t}"

func TestEmailIDN_EverySpellingOfADomainIsOneHolder(t *testing.T) {
	e := newLinkByEmailEnv(t, "", clubRoute+"\n\t"+idnRoute)
	victim, resp, _ := e.signInAt("corp")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the victim's sign-in: status %d", resp.StatusCode)
	}
	victimID := victim.me(e.env)["id"]
	for i, other := range []string{"victim@example\u3002com", "VICTIM@EXAMPLE\u3002com"} {
		e.shady.SetClaims(map[string]any{"id": "dot-" + string(rune('a'+i)), "mail": other, "mail_ok": true, "name": "Mallory"})
		b, resp, _ := e.signInAt("shady")
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("a sign-in asserting %q: status %d, want 409 email_held", other, resp.StatusCode)
			if b.signedIn(e.env) {
				e.standsOnlyFor(b, victimID)
			}
		}
	}

	// The first of two spellings holds the ASCII form; the allow_emails
	// rule written in Unicode matches it; the second spelling is held.
	e.shady.SetClaims(map[string]any{"id": "ceo-unicode", "mail": "ceo@bücher.example", "mail_ok": true, "name": "CEO"})
	ceo, resp, _ := e.signInAt("shady")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the first sign-in asserting ceo@bücher.example: status %d", resp.StatusCode)
	}
	if resp, _ := ceo.get(e.Base + "/idn/x"); resp.StatusCode != http.StatusOK {
		t.Errorf("allow_emails *@bücher.example refused ceo@bücher.example: status %d", resp.StatusCode)
	} else if got := e.Upstream.Last(t).Get("X-Auth-User-Email"); got != "ceo@xn--bcher-kva.example" {
		t.Errorf("the upstream saw X-Auth-User-Email %q, want ceo@xn--bcher-kva.example", got)
	}
	e.shady.SetClaims(map[string]any{"id": "ceo-ascii", "mail": "ceo@xn--bcher-kva.example", "mail_ok": true, "name": "Mallory"})
	second, resp, _ := e.signInAt("shady")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the sign-in asserting ceo@xn--bcher-kva.example: status %d", resp.StatusCode)
	}
	if me := second.me(e.env); me["id"] == ceo.me(e.env)["id"] || me["primary_email_address"] == "ceo@xn--bcher-kva.example" {
		t.Errorf("the second spelling stands for %v (primary %v), want another user without it", me["id"], me["primary_email_address"])
	}
	if resp, _ := second.get(e.Base + "/inbox"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the second user's request: status %d", resp.StatusCode)
	} else if got := e.Upstream.Last(t).Get("X-Auth-User-Email"); got != "" {
		t.Errorf("the upstream saw X-Auth-User-Email %q for the second spelling's user", got)
	}
}
