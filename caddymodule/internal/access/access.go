// Package access decides who may use a site: the allow_emails and
// allow_groups rules of the app (who may sign in at all) and of a route (who
// may reach it). A user is admitted when one of their verified addresses
// matches an email rule, or one of their linked accounts a group rule.
//
// An email rule is an address, ada@example.com, or a whole domain,
// *@example.com; both match without regard to case, and a domain in any
// spelling of it (Unicode or xn--, as the store keeps it: store.ASCIIDomain). Only the addresses
// verified on the user count, the same that the upstream may see: a
// provider verified them (each provider's own rules decide what is
// verified: see the provider presets) and no other user holds them (see
// the store's Emails). So nobody gets in by typing an address into an
// unverifying provider, nor by linking an account whose provider calls
// someone else's address verified.
//
// A group rule is provider:group, corp:admins: the group as the provider
// named corp asserted it at the account's last sign-in (its fields groups
// mapping). A group counts only from the provider the rule names, so
// another provider whose users name their own groups cannot forge one.
package access

import (
	"fmt"
	"slices"
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/confcheck"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Rules is a set of allow_emails and allow_groups rules. Nil, and a set
// without any rule, admit everyone: no rule means no restriction.
type Rules struct {
	addresses map[string]bool
	domains   map[string]bool
	groups    map[string][]string // provider name → groups
}

// Parse reads the rules. providers are the configured provider names a
// group rule may name. An error names the rule that is wrong.
func Parse(emails, groups, providers []string) (*Rules, error) {
	if len(emails) == 0 && len(groups) == 0 {
		return nil, nil
	}
	r := &Rules{addresses: map[string]bool{}, domains: map[string]bool{}, groups: map[string][]string{}}
	for _, rule := range emails {
		if err := r.addEmail(rule); err != nil {
			return nil, fmt.Errorf("allow_emails: %w", err)
		}
	}
	for _, rule := range groups {
		if err := r.addGroup(rule, providers); err != nil {
			return nil, fmt.Errorf("allow_groups: %w", err)
		}
	}
	return r, nil
}

// ParseMixed reads the rules of one option that takes both kinds, like
// admins: a rule with an @ is an email rule, any other a group rule. An
// error names the option and the rule. No rule gives nil.
func ParseMixed(option string, rules, providers []string) (*Rules, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	r := &Rules{addresses: map[string]bool{}, domains: map[string]bool{}, groups: map[string][]string{}}
	for _, rule := range rules {
		add := r.addEmail
		if !strings.Contains(rule, "@") {
			add = func(rule string) error { return r.addGroup(rule, providers) }
		}
		if err := add(rule); err != nil {
			return nil, fmt.Errorf("%s: %w", option, err)
		}
	}
	return r, nil
}

func (r *Rules) addGroup(rule string, providers []string) error {
	provider, group, ok := strings.Cut(rule, ":")
	switch {
	case !ok || provider == "" || group == "":
		return fmt.Errorf("%q is not provider:group (corp:admins)", rule)
	case !slices.Contains(providers, provider):
		return fmt.Errorf("%q: no provider named %s is configured (%s)", rule, provider, confcheck.Hint(provider, providers))
	}
	r.groups[provider] = append(r.groups[provider], group)
	return nil
}

func (r *Rules) addEmail(rule string) error {
	e := strings.ToLower(strings.TrimSpace(rule))
	local, domain, ok := strings.Cut(e, "@")
	// The domain in the one form the store keeps it in (store.ASCIIDomain):
	// *@bücher.example matches ceo@xn--bcher-kva.example.
	domain, valid := store.ASCIIDomain(domain)
	e = local + "@" + domain
	switch {
	case !ok || local == "" || !valid || !validDomain(domain):
		return fmt.Errorf("%q is neither an address (ada@example.com) nor a domain (*@example.com)", rule)
	case local == "*":
		r.domains[domain] = true
	case strings.ContainsAny(local, "*@ \t") || len(e) > 254:
		return fmt.Errorf("%q: an address has no * (for a whole domain write *@example.com)", rule)
	default:
		r.addresses[e] = true
	}
	return nil
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

// Restricts reports whether r has any rule.
func (r *Rules) Restricts() bool {
	return r != nil && (len(r.addresses) > 0 || len(r.domains) > 0 || len(r.groups) > 0)
}

// MatchEmail reports whether an address matches an email rule; one that is
// not a plain address (store.ValidEmail: " ceo@example.org", stored before
// that rule held) matches none.
func (r *Rules) MatchEmail(address string) bool {
	if r == nil || !store.ValidEmail(address) {
		return false
	}
	a := strings.ToLower(address)
	i := strings.LastIndexByte(a, '@')
	if i <= 0 {
		return false
	}
	return r.addresses[a] || r.domains[a[i+1:]]
}

// Admits reports whether the user u, whose linked accounts are accounts,
// matches a rule: one of u's verified addresses an email rule, or one of an
// account's groups a group rule naming its provider. An account's own
// email_verified does not count: its address may be another user's. With
// no rule it admits everyone.
func (r *Rules) Admits(u *store.User, accounts []*store.ExternalAccount) bool {
	if !r.Restricts() {
		return true
	}
	if slices.ContainsFunc(u.Emails, func(e store.EmailAddress) bool { return e.Verified && r.MatchEmail(e.Email) }) {
		return true
	}
	return slices.ContainsFunc(accounts, func(a *store.ExternalAccount) bool {
		want := r.groups[a.Provider]
		return len(want) > 0 && slices.ContainsFunc(a.Groups, func(g string) bool { return slices.Contains(want, g) })
	})
}
