package provider

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/socialgate/socialgate/caddymodule/internal/confcheck"
)

// Check validates cfg as New does, short of reading Apple's private key: a
// configuration file may name the key with a placeholder that only the
// server expands. It makes no network call.
func Check(cfg Config) error {
	_, err := newProvider(cfg, false)
	return err
}

// label names the provider in errors: "provider google", or with its kind
// when the name is not the kind, "provider corp (oidc)".
func label(cfg Config) string {
	if cfg.Name == cfg.Kind {
		return "provider " + cfg.Name
	}
	return fmt.Sprintf("provider %s (%s)", cfg.Name, cfg.Kind)
}

// envName is the provider name as the stem of an environment variable's
// name, for examples in errors: GOOGLE, CORP_SSO.
func envName(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return unicode.ToUpper(r)
		}
		return '_'
	}, name)
}

// checkClientSecret checks the client's credentials: the presets' servers
// know the gateway only as a confidential client, with a secret (Apple's is
// signed from its key instead); a generic server may know it as a public
// client, without one, which PKCE then protects.
func checkClientSecret(cfg Config, pre preset) error {
	switch {
	case pre.clientSecretJWT && cfg.ClientSecret != "":
		return errors.New("client_secret does not apply to apple: the gateway signs its own from team_id, key_id and private_key")
	case pre.publicClient && cfg.ClientSecret == "" && cfg.DisablePKCE:
		return errors.New("without a client_secret the client is public and needs PKCE: remove pkce off, or add the client_secret")
	case !pre.publicClient && !pre.clientSecretJWT && cfg.ClientSecret == "":
		return fmt.Errorf("client_secret is required: write the secret the provider issued with the client id, like client_secret {env.%s_CLIENT_SECRET}", envName(cfg.Name))
	}
	return nil
}

// CheckScopes refuses a scope that cannot be one: a comma or white space in
// it means that several were written as one.
func CheckScopes(scopes []string) error {
	for _, s := range scopes {
		if parts := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '"' || unicode.IsSpace(r) }); len(parts) != 1 || parts[0] != s {
			return fmt.Errorf("scopes: %q is not one scope: separate scopes with spaces, like scopes %s", s, strings.Join(parts, " "))
		}
	}
	return nil
}

// checkURLs checks the URLs the kind needs and every URL given.
func checkURLs(cfg *Config, pre preset) error {
	required := []string{"issuer"}
	if !pre.oidc {
		required = []string{"authorize_url", "token_url"}
		if !pre.profileFromToken {
			required = append(required, "userinfo_url")
		}
	}
	for _, u := range []struct{ field, value string }{
		{"issuer", cfg.Issuer}, {"authorize_url", cfg.AuthURL}, {"token_url", cfg.TokenURL},
		{"userinfo_url", cfg.UserinfoURL}, {"emails_url", cfg.EmailsURL}, {"jwks_url", cfg.JWKSURL},
		{"revoke_url", cfg.RevokeURL},
	} {
		if u.value != "" || slices.Contains(required, u.field) {
			if err := checkURL(u.field, u.value); err != nil {
				return err
			}
		}
	}
	for _, name := range cfg.GroupsFrom {
		if _, ok := pre.groupLists[name]; !ok {
			if len(pre.groupLists) == 0 {
				return fmt.Errorf("groups_from applies only to github; elsewhere map the groups with fields { groups <path> }")
			}
			return fmt.Errorf("groups_from: unknown list %q (want %s)", name, strings.Join(slices.Sorted(maps.Keys(pre.groupLists)), " or "))
		}
	}
	if pre.email == emailFromList && cfg.EmailsURL == "" {
		return errors.New("emails_url is required")
	}
	return nil
}

func checkURL(field, raw string) error {
	switch {
	case raw == "" && field == "issuer":
		return errors.New("issuer is required: the URL whose /.well-known/openid-configuration describes the provider, like issuer https://idp.example.com")
	case raw == "":
		return fmt.Errorf("%s is required", field)
	}
	if err := confcheck.ServerURL(raw); err != nil {
		return fmt.Errorf("%s %w", field, err)
	}
	return nil
}
