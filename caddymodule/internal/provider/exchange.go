package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Profile is what a provider says about the signed-in person.
type Profile struct {
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Username      string
	ImageURL      string
}

// Callback is what the provider's redirect carried, plus the secrets of the
// flow that started it.
type Callback struct {
	Code string
	// Iss is the callback's iss parameter (RFC 9207); HasIss tells an empty
	// one from a missing one.
	Iss         string
	HasIss      bool
	RedirectURL string
	Verifier    string // PKCE code verifier; empty when PKCE is disabled
	Nonce       string // the nonce sent in the authorization request (OIDC)
	// Scopes are the scopes requested, recorded when the token response omits scope.
	Scopes []string
}

// Result is a verified sign-in at the provider.
type Result struct {
	Profile Profile
	Token   *oauth2.Token
	IDToken string
	// Scopes are the approved scopes: the token response's, else the requested ones.
	Scopes []string
}

// Exchange redeems the authorization code and returns the verified identity.
// Every check that the flow depends on happens here: the callback's issuer,
// the ID token (signature, issuer, audience, expiry, nonce, iat, sub, azp) and
// the userinfo subject.
func (p *Provider) Exchange(ctx context.Context, cb Callback) (*Result, error) {
	conf, d, err := p.oauth2Config(ctx, cb.RedirectURL)
	if err != nil {
		return nil, err
	}
	// Mix-up defence (RFC 9207): a response minted by another provider names
	// its own issuer.
	if cb.HasIss && cb.Iss != p.cfg.Issuer {
		return nil, fmt.Errorf("%w: callback iss %q is not %q", ErrRejected, cb.Iss, p.cfg.Issuer)
	}
	if d != nil && d.issParameter && !cb.HasIss {
		return nil, fmt.Errorf("%w: callback lacks the iss parameter the provider advertises", ErrRejected)
	}
	ctx = oidc.ClientContext(ctx, p.client)
	var opts []oauth2.AuthCodeOption
	if cb.Verifier != "" {
		opts = append(opts, oauth2.VerifierOption(cb.Verifier))
	}
	tok, err := conf.Exchange(ctx, cb.Code, opts...)
	if err != nil {
		return nil, classifyTokenError(err)
	}
	if tok.AccessToken == "" {
		return nil, fmt.Errorf("%w: token response has no access_token", ErrUnavailable)
	}
	res := &Result{Token: tok, Scopes: mergeScopes(conf.Scopes, cb.Scopes)}
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		res.Scopes = splitScopes(s)
	}
	if d != nil {
		err = p.verifyOIDC(ctx, d, tok, cb.Nonce, res)
	} else {
		err = p.fetchOAuth2Profile(ctx, tok, res)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// classifyTokenError tells a refusal by the provider (the code is bad) from a
// provider that could not be used. Neither message carries the code.
func classifyTokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		return fmt.Errorf("%w: token endpoint answered %s", ErrRejected, re.ErrorCode)
	}
	if errors.As(err, &re) {
		return fmt.Errorf("%w: token endpoint answered HTTP %d", ErrUnavailable, re.Response.StatusCode)
	}
	return fmt.Errorf("%w: token endpoint: %v", ErrUnavailable, err)
}

// idClaims are the ID token and userinfo claims the gateway reads.
type idClaims struct {
	Subject           string     `json:"sub"`
	Email             string     `json:"email"`
	EmailVerified     flexBool   `json:"email_verified"`
	Name              string     `json:"name"`
	GivenName         string     `json:"given_name"`
	FamilyName        string     `json:"family_name"`
	PreferredUsername string     `json:"preferred_username"`
	Picture           string     `json:"picture"`
	Nonce             string     `json:"nonce"`
	AuthorizedParty   string     `json:"azp"`
	IssuedAt          *flexInt64 `json:"iat"`
	Audience          audience   `json:"aud"`
}

func (p *Provider) verifyOIDC(ctx context.Context, d *discovered, tok *oauth2.Token, nonce string, res *Result) error {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return fmt.Errorf("%w: token response has no id_token", ErrRejected)
	}
	verifier := d.oidc.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, SupportedSigningAlgs: d.signingAlgs})
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return fmt.Errorf("%w: id_token: %v", ErrRejected, err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		return fmt.Errorf("%w: id_token claims: %v", ErrRejected, err)
	}
	if err := checkIDClaims(&c, p.cfg.ClientID, nonce); err != nil {
		return fmt.Errorf("%w: id_token: %v", ErrRejected, err)
	}
	res.IDToken = raw
	res.Profile = c.profile()
	if d.userinfoURL == "" {
		return nil
	}
	info, err := p.fetchJSON(ctx, d.userinfoURL, tok)
	if err != nil {
		return err
	}
	var u idClaims
	if err := decodeInto(info, &u); err != nil {
		return fmt.Errorf("%w: userinfo: %v", ErrRejected, err)
	}
	// OIDC Core 5.3.2: the userinfo sub MUST equal the ID token's.
	if u.Subject != c.Subject {
		return fmt.Errorf("%w: userinfo sub differs from the id_token's", ErrRejected)
	}
	res.Profile.fillFrom(u.profile(), u.EmailVerified.set)
	return nil
}

// checkIDClaims checks what go-oidc leaves to the caller (OIDC Core 3.1.3.7).
func checkIDClaims(c *idClaims, clientID, nonce string) error {
	switch {
	case c.Subject == "":
		return errors.New("sub is missing")
	case c.IssuedAt == nil:
		return errors.New("iat is missing")
	case nonce == "" || c.Nonce != nonce:
		return errors.New("nonce does not match the authorization request")
	case len(c.Audience) > 1 && c.AuthorizedParty == "":
		return errors.New("several audiences and no azp")
	case c.AuthorizedParty != "" && c.AuthorizedParty != clientID:
		return errors.New("azp is not this client")
	case time.Unix(int64(*c.IssuedAt), 0).After(time.Now().Add(5 * time.Minute)):
		return errors.New("iat is in the future")
	}
	return nil
}

func (c *idClaims) profile() Profile {
	name := c.Name
	if name == "" {
		name = strings.TrimSpace(c.GivenName + " " + c.FamilyName)
	}
	return Profile{
		Subject:       c.Subject,
		Email:         c.Email,
		EmailVerified: c.EmailVerified.value && c.Email != "",
		Name:          name,
		Username:      c.PreferredUsername,
		ImageURL:      c.Picture,
	}
}

// fillFrom completes p with what q has and p lacks. The email's verified flag
// comes with the email it belongs to.
func (p *Profile) fillFrom(q Profile, verifiedSet bool) {
	if p.Email == "" && q.Email != "" {
		p.Email, p.EmailVerified = q.Email, q.EmailVerified && verifiedSet
	}
	if p.Name == "" {
		p.Name = q.Name
	}
	if p.Username == "" {
		p.Username = q.Username
	}
	if p.ImageURL == "" {
		p.ImageURL = q.ImageURL
	}
}

func (p *Provider) fetchOAuth2Profile(ctx context.Context, tok *oauth2.Token, res *Result) error {
	info, err := p.fetchJSON(ctx, p.cfg.UserinfoURL, tok)
	if err != nil {
		return err
	}
	m := p.cfg.Mapping
	prof := Profile{
		Subject:  lookupString(info, m.ID),
		Email:    lookupString(info, m.Email),
		Name:     lookupString(info, m.Name),
		Username: lookupString(info, m.Username),
		ImageURL: lookupString(info, m.Picture),
	}
	if m.EmailVerified != "" {
		prof.EmailVerified = lookupBool(info, m.EmailVerified) && prof.Email != ""
	}
	if prof.Subject == "" {
		return fmt.Errorf("%w: userinfo has no %q field for the user id", ErrRejected, m.ID)
	}
	res.Profile = prof
	return nil
}
