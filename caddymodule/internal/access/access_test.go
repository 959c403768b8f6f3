package access

import (
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func TestParse_RefusesWhatIsNotAnAddressOrADomain(t *testing.T) {
	for _, rule := range []string{"example.com", "@example.com", "*@", "ada@", "*@*.example.com", "a*a@example.com",
		"*@exa mple.com", "*@example..com", "*@.example.com", "ada@example.com.", "a@b@c.com", ""} {
		if _, err := Parse([]string{"ok@example.com", rule}, nil, nil); err == nil || !strings.Contains(err.Error(), "allow_emails: \""+rule+"\"") {
			t.Errorf("%q: %v", rule, err)
		}
	}
}

func TestParse_GroupRulesNameAConfiguredProvider(t *testing.T) {
	for rule, want := range map[string]string{
		"admins":      `allow_groups: "admins" is not provider:group`,
		"corp:":       `allow_groups: "corp:" is not provider:group`,
		":admins":     `allow_groups: ":admins" is not provider:group`,
		"other:admin": `allow_groups: "other:admin": no provider named other is configured (want one of corp, github)`,
		"gihtub:devs": `allow_groups: "gihtub:devs": no provider named gihtub is configured (did you mean github?)`,
	} {
		if _, err := Parse(nil, []string{rule}, []string{"corp", "github"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", rule, err, want)
		}
	}
	if _, err := Parse(nil, []string{"corp:team:a/b c"}, []string{"corp"}); err != nil {
		t.Errorf("a group with : / and a space: %v", err)
	}
}

func TestRules_MatchAddressesAndWholeDomainsWithoutCase(t *testing.T) {
	r, err := Parse([]string{"Ada@Example.com", "*@Corp.Example"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for address, want := range map[string]bool{
		"ada@example.com": true, "ADA@EXAMPLE.COM": true, "bob@example.com": false,
		"bob@corp.example": true, "Bob@CORP.example": true, "bob@sub.corp.example": false,
		"bob@corp.example.evil.com": false, "bob@evilcorp.example": false, "corp.example": false,
		"@corp.example": false, "ada@example.com@evil.com": false, "": false,
	} {
		if got := r.MatchEmail(address); got != want {
			t.Errorf("MatchEmail(%q) = %v, want %v", address, got, want)
		}
	}
}

func TestRules_OnlyTheUsersVerifiedAddressesCount(t *testing.T) {
	r, _ := Parse([]string{"*@example.com"}, nil, nil)
	u := &store.User{Emails: []store.EmailAddress{{Email: "ada@example.com"}, {Email: "ada@gmail.com", Verified: true}}}
	if r.Admits(u, nil) {
		t.Error("a user whose matching address is unverified is admitted")
	}
	// An account at a provider calling the address verified, while another
	// user holds it (so it is not verified on this one), admits no one.
	accounts := []*store.ExternalAccount{{Provider: "shady", Email: "ada@example.com", EmailVerified: true}}
	if r.Admits(u, accounts) {
		t.Error("an account's email_verified admitted a user on whom the address is not verified")
	}
	u.Emails[0].Verified = true
	if !r.Admits(u, nil) {
		t.Error("a user with a verified matching address (not the first) is refused")
	}
}

func TestRules_AGroupCountsOnlyFromTheProviderItNames(t *testing.T) {
	r, _ := Parse([]string{"boss@example.com"}, []string{"corp:admins", "corp:ops"}, []string{"corp", "gitlab"})
	for _, tc := range []struct {
		name     string
		accounts []*store.ExternalAccount
		want     bool
	}{
		{"in the group", []*store.ExternalAccount{{Provider: "corp", Groups: []string{"staff", "ops"}}}, true},
		{"the same name at another provider", []*store.ExternalAccount{{Provider: "gitlab", Groups: []string{"admins"}}}, false},
		{"not in the group", []*store.ExternalAccount{{Provider: "corp", Groups: []string{"staff", "Admins"}}}, false},
		{"no groups", []*store.ExternalAccount{{Provider: "corp"}}, false},
		{"another account's group", []*store.ExternalAccount{{Provider: "gitlab"}, {Provider: "corp", Groups: []string{"admins"}}}, true},
		{"an email rule instead", []*store.ExternalAccount{{Provider: "gitlab", Email: "boss@example.com", EmailVerified: true}}, true},
	} {
		u := &store.User{}
		for _, a := range tc.accounts {
			if a.EmailVerified {
				u.Emails = append(u.Emails, store.EmailAddress{Email: a.Email, Verified: true, VerifiedBy: []string{a.ID}})
			}
		}
		if got := r.Admits(u, tc.accounts); got != tc.want {
			t.Errorf("%s: Admits = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRules_NoRulesAdmitEveryone(t *testing.T) {
	r, err := Parse(nil, nil, nil)
	if err != nil || r.Restricts() {
		t.Fatalf("no rules: %v, restricts %v", err, r.Restricts())
	}
	if !r.Admits(&store.User{}, nil) || !r.Admits(&store.User{}, []*store.ExternalAccount{{Email: "x@y.example"}}) {
		t.Error("no rules refused someone")
	}
}

// ParseMixed (the admins option) reads addresses, domains and groups from
// one list, and admits like Parse: only verified addresses, only groups of
// the provider the rule names.
func TestParseMixed_AdmitsByVerifiedAddressOrGroup(t *testing.T) {
	r, err := ParseMixed("admins", []string{"ada@example.com", "*@ops.example", "corp:admins"}, []string{"corp", "github"})
	if err != nil {
		t.Fatal(err)
	}
	user := func(email string, verified bool) *store.User {
		return &store.User{Emails: []store.EmailAddress{{Email: email, Verified: verified}}}
	}
	for _, tc := range []struct {
		name     string
		u        *store.User
		accounts []*store.ExternalAccount
		want     bool
	}{
		{"verified address", user("ADA@example.com", true), nil, true},
		{"unverified address", user("ada@example.com", false), nil, false},
		{"verified domain", user("grace@ops.example", true), nil, true},
		{"group at the named provider", user("x@y.example", true), []*store.ExternalAccount{{Provider: "corp", Groups: []string{"admins"}}}, true},
		{"the group at another provider", user("x@y.example", true), []*store.ExternalAccount{{Provider: "github", Groups: []string{"admins"}}}, false},
		{"nobody", user("mallory@example.com", true), nil, false},
	} {
		if got := r.Admits(tc.u, tc.accounts); got != tc.want {
			t.Errorf("%s: admitted %v, want %v", tc.name, got, tc.want)
		}
	}
	for rule, want := range map[string]string{
		"example.com": `admins: "example.com" is not provider:group`,
		"a*b@x.org":   `admins: "a*b@x.org": an address has no *`,
		"gihtub:devs": `admins: "gihtub:devs": no provider named gihtub is configured (did you mean github?)`,
		"*@":          `admins: "*@" is neither an address`,
	} {
		if _, err := ParseMixed("admins", []string{rule}, []string{"corp", "github"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", rule, err, want)
		}
	}
	if r, err := ParseMixed("admins", nil, nil); r != nil || err != nil {
		t.Errorf("no rule: %v %v, want nil", r, err)
	}
}
