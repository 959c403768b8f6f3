package api

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/provider"
)

// clerkNames are the presets that Clerk names otherwise than socialgate.
var clerkNames = map[string]string{"linkedin": "linkedin_oidc"}

// ProviderID is the id Clerk gives a provider: oauth_ and the preset's
// name as Clerk spells it (oauth_github, oauth_linkedin_oidc), or
// oauth_custom_ and the name of a provider the operator defined (an oidc
// or oauth2 provider, the dev provider). A provider named after a preset
// is taken for that preset.
func ProviderID(name string) string {
	switch {
	case clerkNames[name] != "":
		return "oauth_" + clerkNames[name]
	case provider.IsPreset(name):
		return "oauth_" + name
	}
	return "oauth_custom_" + name
}

// ProviderName reads a provider id the way Clerk's SDKs send it (with or
// without oauth_, custom_ for an operator's provider, Clerk's spelling of
// a preset) back into the name of a provider; ok is false when none of
// configured (the configured names) matches.
func ProviderName(id string, configured func(name string) bool) (name string, ok bool) {
	id = strings.TrimPrefix(id, "oauth_")
	for candidate, clerk := range clerkNames {
		if id == clerk {
			id = candidate
		}
	}
	for _, name := range []string{id, strings.TrimPrefix(id, "custom_")} {
		if configured(name) {
			return name, true
		}
	}
	return "", false
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// derivedID is prefix_ and 26 characters derived from parts: a stable id
// for what socialgate keeps without one of its own (an email address of a
// user: idn_…).
func derivedID(prefix string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return prefix + "_" + idEncoding.EncodeToString(sum[:16])
}

// EmailAddressID is the idn_ id of a user's address: the same for that
// user and address (any case) every time.
func EmailAddressID(userID, email string) string {
	return derivedID("idn", userID, strings.ToLower(email))
}
