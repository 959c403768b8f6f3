// Package access decides who may use a site by email address: the
// allow_emails rules of the app (who may sign in at all) and of a route
// (who may reach it). A rule is an address, ada@example.com, or a whole
// domain, *@example.com; both match without regard to case. Only
// addresses a provider verified count (each provider's own rules decide
// what is verified: see the store's EmailAddress and the provider presets),
// so nobody gets in by typing an address into an unverifying provider.
package access

import (
	"fmt"
	"slices"
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Emails is a set of allow_emails rules. The zero value, and nil, allow
// everyone: no rule means no restriction.
type Emails struct {
	addresses map[string]bool
	domains   map[string]bool
}

// ParseEmails reads rules. An error names the rule that is wrong.
func ParseEmails(rules []string) (*Emails, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	e := &Emails{addresses: map[string]bool{}, domains: map[string]bool{}}
	for _, rule := range rules {
		r := strings.ToLower(strings.TrimSpace(rule))
		local, domain, ok := strings.Cut(r, "@")
		switch {
		case !ok || local == "" || !validDomain(domain):
			return nil, fmt.Errorf("allow_emails: %q is neither an address (ada@example.com) nor a domain (*@example.com)", rule)
		case local == "*":
			e.domains[domain] = true
		case strings.ContainsAny(local, "*@ \t") || len(r) > 254:
			return nil, fmt.Errorf("allow_emails: %q: an address has no * (for a whole domain write *@example.com)", rule)
		default:
			e.addresses[r] = true
		}
	}
	return e, nil
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return false
	}
	for _, c := range d {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c > 127) {
			return false
		}
	}
	return true
}

// Restricts reports whether e has any rule.
func (e *Emails) Restricts() bool { return e != nil && (len(e.addresses) > 0 || len(e.domains) > 0) }

// Match reports whether an address matches a rule; with no rule every
// address does.
func (e *Emails) Match(address string) bool {
	if !e.Restricts() {
		return true
	}
	a := strings.ToLower(address)
	i := strings.LastIndexByte(a, '@')
	if i <= 0 {
		return false
	}
	return e.addresses[a] || e.domains[a[i+1:]]
}

// AllowsUser reports whether one of the user's verified addresses matches.
func (e *Emails) AllowsUser(u *store.User) bool {
	if !e.Restricts() {
		return true
	}
	return slices.ContainsFunc(u.Emails, func(a store.EmailAddress) bool { return a.Verified && e.Match(a.Email) })
}

// AllowsAccounts reports whether one of a user's linked accounts has a
// verified address that matches: the same answer as AllowsUser, from the
// accounts that vouch for the user's addresses.
func (e *Emails) AllowsAccounts(accounts []*store.ExternalAccount) bool {
	if !e.Restricts() {
		return true
	}
	return slices.ContainsFunc(accounts, func(a *store.ExternalAccount) bool { return a.EmailVerified && e.Match(a.Email) })
}
