package access

import (
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func TestParseEmails_RefusesWhatIsNotAnAddressOrADomain(t *testing.T) {
	for _, rule := range []string{"example.com", "@example.com", "*@", "ada@", "*@*.example.com", "a*a@example.com",
		"*@exa mple.com", "*@example..com", "*@.example.com", "ada@example.com.", "a@b@c.com", ""} {
		if _, err := ParseEmails([]string{"ok@example.com", rule}); err == nil || !strings.Contains(err.Error(), "allow_emails: \""+rule+"\"") {
			t.Errorf("%q: %v", rule, err)
		}
	}
}

func TestEmails_MatchAddressesAndWholeDomainsWithoutCase(t *testing.T) {
	e, err := ParseEmails([]string{"Ada@Example.com", "*@Corp.Example"})
	if err != nil {
		t.Fatal(err)
	}
	for address, want := range map[string]bool{
		"ada@example.com": true, "ADA@EXAMPLE.COM": true, "bob@example.com": false,
		"bob@corp.example": true, "Bob@CORP.example": true, "bob@sub.corp.example": false,
		"bob@corp.example.evil.com": false, "bob@evilcorp.example": false, "corp.example": false,
		"@corp.example": false, "ada@example.com@evil.com": false, "": false,
	} {
		if got := e.Match(address); got != want {
			t.Errorf("Match(%q) = %v, want %v", address, got, want)
		}
	}
}

func TestEmails_OnlyVerifiedAddressesCount(t *testing.T) {
	e, _ := ParseEmails([]string{"*@example.com"})
	unverified := &store.User{Emails: []store.EmailAddress{{Email: "ada@example.com"}, {Email: "ada@gmail.com", Verified: true}}}
	if e.AllowsUser(unverified) {
		t.Error("a user whose matching address is unverified is allowed")
	}
	verified := &store.User{Emails: []store.EmailAddress{{Email: "ada@gmail.com", Verified: true}, {Email: "ada@example.com", Verified: true}}}
	if !e.AllowsUser(verified) {
		t.Error("a user with a verified matching address (not the first) is refused")
	}
	accounts := []*store.ExternalAccount{{Email: "ada@example.com"}, {Email: "ada@gmail.com", EmailVerified: true}}
	if e.AllowsAccounts(accounts) {
		t.Error("accounts whose matching address is unverified are allowed")
	}
	accounts[0].EmailVerified = true
	if !e.AllowsAccounts(accounts) {
		t.Error("accounts with a verified matching address are refused")
	}
}

func TestEmails_NoRulesAllowEveryone(t *testing.T) {
	e, err := ParseEmails(nil)
	if err != nil || e.Restricts() {
		t.Fatalf("no rules: %v, restricts %v", err, e.Restricts())
	}
	if !e.Match("anyone@anywhere.example") || !e.AllowsUser(&store.User{}) || !e.AllowsAccounts(nil) {
		t.Error("no rules refused someone")
	}
}
