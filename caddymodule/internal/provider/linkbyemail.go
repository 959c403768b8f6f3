package provider

import (
	"errors"
	"strings"
)

// LinksByEmail reports whether the provider may vouch for linking by email
// (Config.LinkByEmail): a first sign-in through it may join the user who
// holds the address it calls verified, and its vouching for a user's address
// counts when another provider's newcomer asks to join that user. The
// default is true only for the presets whose email rules are reliable
// (apple, bitbucket, discord, github, gitlab, google, linkedin, microsoft,
// slack, twitch) at their own endpoints: a preset pointed elsewhere
// (issuer, URLs, base_url, or a remapped email field) is someone else's
// server, and a generic oidc or oauth2 provider asserts whatever its
// operator or its users make it assert.
func (p *Provider) LinksByEmail() bool { return p.linkByEmail }

// reportsVerifiedEmail reports whether the provider can ever call an
// address verified: OIDC providers and email lists say so, an oauth2
// provider only through a mapped email_verified field.
func (p *Provider) reportsVerifiedEmail() bool {
	return p.pre.email != emailNever && (p.pre.oidc || p.pre.email == emailFromList || p.cfg.Mapping.EmailVerified != "")
}

// ownEndpoints reports whether cfg leaves a preset at the provider's own
// servers and email rule: no endpoint, base URL or email field of its own.
func ownEndpoints(cfg Config, pre preset) bool {
	for _, v := range []string{cfg.Issuer, cfg.AuthURL, cfg.TokenURL, cfg.UserinfoURL, cfg.EmailsURL, cfg.JWKSURL,
		cfg.Mapping.Email, cfg.Mapping.EmailVerified} {
		if v != "" {
			return false
		}
	}
	return cfg.BaseURL == "" || strings.TrimRight(cfg.BaseURL, "/") == pre.base
}

// setLinkByEmail sets the effective Config.LinkByEmail of a provider whose
// config left the preset at its own servers (own) or not: the default, or
// the configured value, which must not be true for a provider that never
// reports a verified address.
func (p *Provider) setLinkByEmail(own bool) error {
	p.linkByEmail = p.pre.linkByEmail && own
	if p.cfg.LinkByEmail != nil {
		p.linkByEmail = *p.cfg.LinkByEmail
	}
	if !p.linkByEmail || p.reportsVerifiedEmail() {
		return nil
	}
	if !p.pre.oidc && p.pre.email == emailClaim {
		return errors.New("link_by_email is on, but the provider never reports a verified email address: " +
			"map one with fields { email_verified <path> }")
	}
	return errors.New("link_by_email is on, but the provider never reports a verified email address")
}
