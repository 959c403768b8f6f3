package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/oauth2"
)

// oauth2Profile maps an OAuth 2.0 provider's profile: the userinfo document,
// or the token response itself for providers without userinfo (Notion). It
// returns the document for the email rule.
func (p *Provider) oauth2Profile(ctx context.Context, e *endpoints, tok *oauth2.Token, raw map[string]any, res *Result) (map[string]any, error) {
	doc := raw
	if !p.pre.profileFromToken {
		var err error
		if doc, err = p.fetchObject(ctx, e.userinfo, tok.AccessToken, "userinfo"); err != nil {
			return nil, err
		}
	}
	m := p.cfg.Mapping
	prof := Profile{
		Subject:  lookupString(doc, m.ID),
		Email:    lookupString(doc, m.Email),
		Name:     lookupString(doc, m.Name),
		Username: lookupString(doc, m.Username),
		ImageURL: lookupString(doc, m.Picture),
		Groups:   p.groups(doc),
	}
	if m.EmailVerified != "" {
		prof.EmailVerified = lookupBool(doc, m.EmailVerified) && prof.Email != ""
	}
	if prof.Subject == "" {
		return nil, fmt.Errorf("%w: profile has no %q field for the user id", ErrRejected, m.ID)
	}
	if p.pre.email == emailFromList {
		list, err := p.fetch(ctx, p.cfg.EmailsURL, tok.AccessToken, "emails")
		if err != nil {
			return nil, err
		}
		prof.Email, prof.EmailVerified = primaryEmail(list, p.pre.emails, prof.Email)
	}
	for _, name := range p.cfg.GroupsFrom {
		l := p.pre.groupLists[name]
		list, err := p.fetch(ctx, p.cfg.UserinfoURL+l.path+"?per_page=100", tok.AccessToken, name)
		if err != nil {
			return nil, err
		}
		entries, _ := list.([]any)
		for _, entry := range entries {
			if obj, ok := entry.(map[string]any); ok {
				prof.Groups = groupsBound.add(prof.Groups, lookupString(obj, l.name))
			}
		}
	}
	res.Profile = prof
	return doc, nil
}

// groups reads the person's groups where the mapping says (nil when it
// names no place): a list of strings, or one string; other values are
// skipped, and groupsBound bounds the rest.
func (p *Provider) groups(doc map[string]any) []string {
	if p.cfg.Mapping.Groups == "" {
		return nil
	}
	v, _ := lookup(doc, p.cfg.Mapping.Groups)
	var list []any
	switch v := v.(type) {
	case string:
		list = []any{v}
	case []any:
		list = v
	}
	out := []string{}
	for _, g := range list {
		if s, ok := g.(string); ok {
			out = groupsBound.add(out, s)
		}
	}
	return out
}

// primaryEmail picks the email to report from an emails endpoint's answer:
// the primary address, verified only when the provider marks it so. A
// secondary address does not count even when verified: the primary is the
// account's own, the one the provider recovers the account with. Without a
// primary entry, fallback (the profile's email) is kept, unverified.
func primaryEmail(doc any, l emailList, fallback string) (string, bool) {
	list := doc
	if l.list != "" {
		obj, _ := doc.(map[string]any)
		list, _ = lookup(obj, l.list)
	}
	entries, _ := list.([]any)
	for _, entry := range entries {
		obj, ok := entry.(map[string]any)
		if !ok || !lookupBool(obj, l.primary) {
			continue
		}
		if email := lookupString(obj, l.email); email != "" {
			return email, lookupBool(obj, l.verified)
		}
	}
	return fallback, false
}

// emailVerified applies the preset's rule to what the provider claimed
// (prof.EmailVerified); claims is the ID token or profile document.
func (p *Provider) emailVerified(prof Profile, claims map[string]any) bool {
	if prof.Email == "" {
		return false
	}
	switch p.pre.email {
	case emailNever:
		return false
	case emailMicrosoft:
		// Elsewhere the email is whatever a tenant admin typed ("nOAuth").
		return lookupBool(claims, "xms_edov") || lookupString(claims, "tid") == msPersonalTenant
	case emailApple:
		// A relay address forwards to whoever hides behind it: it proves
		// nothing about an account elsewhere.
		relay := strings.HasSuffix(strings.ToLower(prof.Email), "@privaterelay.appleid.com")
		return prof.EmailVerified && !relay && !lookupBool(claims, "is_private_email")
	}
	return prof.EmailVerified
}

// maxUserField bounds the Apple user field read: it holds a name and an email.
const maxUserField = 4 << 10

// nameFromUserField reads the name from Apple's user form field,
// {"name":{"firstName":"…","lastName":"…"},"email":"…"}. The email there is
// ignored: only the ID token's is trusted. The name is whatever the person
// typed, so control characters are dropped and its length is bounded.
func nameFromUserField(raw string) string {
	if raw == "" || len(raw) > maxUserField {
		return ""
	}
	var u struct {
		Name struct {
			FirstName string `json:"firstName"`
			LastName  string `json:"lastName"`
		} `json:"name"`
	}
	if json.Unmarshal([]byte(raw), &u) != nil {
		return ""
	}
	name := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(u.Name.FirstName+" "+u.Name.LastName))
	if r := []rune(name); len(r) > 200 {
		name = string(r[:200])
	}
	return strings.TrimSpace(name)
}
