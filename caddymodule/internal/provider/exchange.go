package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Profile is what a provider says about the signed-in person.
type Profile struct {
	// Subject is the person's stable id at the provider (for microsoft the
	// oid when present, which is stable across the tenant's apps).
	Subject string
	Email   string
	// EmailVerified means the provider asserts, under its own rules, that
	// the person controls Email: safe to link accounts by it. It is false for
	// providers that do not verify (facebook, spotify, notion, x), for
	// Apple relay addresses and for Microsoft emails a tenant admin may set.
	EmailVerified bool
	Name          string
	Username      string
	ImageURL      string
	// Groups are the person's groups, when the provider's mapping names
	// where they are (Mapping.Groups).
	Groups []string
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
	// User is Apple's user form field, raw: a JSON object with the person's
	// name, sent only at the first authorization. Only the name is read.
	User string
}

// Result is a verified sign-in at the provider.
type Result struct {
	// Issuer is the namespace of Profile.Subject: an identity is (Issuer,
	// Subject). It is p.Issuer(), except for a multi-tenant provider, where
	// it is the tenant's issuer.
	Issuer  string
	Profile Profile
	// Token is the token response; Extra gives its other fields.
	Token   *oauth2.Token
	IDToken string
	// ClientID is the client Token was issued to when it is not the
	// provider's client_id (a native app's apple bundle id).
	ClientID string
	// SID is the ID token's sid claim: the person's session at the
	// provider, which a back-channel logout names.
	SID string
	// Scopes are the approved scopes: the token response's, else the requested ones.
	Scopes []string
	// AuthTime is when the person last authenticated at the provider: the
	// ID token's auth_time, zero when the provider did not say (plain OAuth
	// 2.0 providers never do).
	AuthTime time.Time
}

// Exchange redeems the authorization code and returns the verified identity.
// Every check that the flow depends on happens here: the callback's issuer,
// the ID token (signature, issuer, audience, expiry, nonce, iat, sub, azp),
// the userinfo subject, and the provider's rule for trusting the email.
func (p *Provider) Exchange(ctx context.Context, cb Callback) (*Result, error) {
	e, err := p.endpoints(ctx)
	if err != nil {
		return nil, err
	}
	// Mix-up defence (RFC 9207): a response minted by another provider names
	// its own issuer. Checked before the code goes anywhere.
	if cb.HasIss && !p.issuerMatches(e.d, cb.Iss) {
		return nil, fmt.Errorf("%w: callback iss %q is not %q", ErrRejected, cb.Iss, p.cfg.Issuer)
	}
	if e.d != nil && e.d.issParameter && !cb.HasIss {
		return nil, fmt.Errorf("%w: callback lacks the iss parameter the provider advertises", ErrRejected)
	}
	params := url.Values{"grant_type": {"authorization_code"}, "code": {cb.Code}}
	if cb.RedirectURL != "" {
		params.Set("redirect_uri", cb.RedirectURL)
	}
	if cb.Verifier != "" && p.UsesPKCE() {
		params.Set("code_verifier", cb.Verifier)
	}
	tok, raw, err := p.token(ctx, e, params)
	if err != nil {
		return nil, err
	}
	res := &Result{Issuer: p.cfg.Issuer, Token: tok, Scopes: p.grantedScopes(raw)}
	if res.Scopes == nil {
		res.Scopes = mergeScopes(p.requestScopes(e), cb.Scopes)
	}
	var claims map[string]any
	if e.d != nil {
		claims, err = p.verifyOIDC(ctx, e, tok, cb.Nonce, res)
	} else {
		claims, err = p.oauth2Profile(ctx, e, tok, raw, res)
	}
	if err != nil {
		return nil, err
	}
	if cb.HasIss && cb.Iss != res.Issuer {
		return nil, fmt.Errorf("%w: callback iss %q is not the token's issuer", ErrRejected, cb.Iss)
	}
	res.Profile.EmailVerified = p.emailVerified(res.Profile, claims)
	if p.pre.userField && res.Profile.Name == "" {
		res.Profile.Name = nameFromUserField(cb.User)
	}
	return finish(res)
}

// issuerMatches reports whether iss can be this provider's issuer; for a
// tenant-templated one, any tenant's (the token then pins it).
func (p *Provider) issuerMatches(d *discovered, iss string) bool {
	if d == nil || !p.pre.tenantIssuer {
		return iss == p.cfg.Issuer
	}
	prefix, suffix, templated := strings.Cut(d.issuer, "{tenantid}")
	if !templated {
		return iss == d.issuer
	}
	tid, ok := strings.CutPrefix(iss, prefix)
	if !ok {
		return false
	}
	tid, ok = strings.CutSuffix(tid, suffix)
	return ok && guidPattern.MatchString(tid)
}

// guidPattern is the shape of a Microsoft tenant id.
var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// tenantIssuer checks a multi-tenant token's issuer: the discovery
// document's issuer with {tenantid} replaced by the token's own tid claim.
// go-oidc cannot (its issuer is fixed), so it skipped the check.
func tenantIssuer(template, iss, tid string) (string, error) {
	want := template
	if strings.Contains(template, "{tenantid}") {
		if !guidPattern.MatchString(tid) {
			return "", errors.New("tid is missing or not a tenant id")
		}
		want = strings.ReplaceAll(template, "{tenantid}", tid)
	}
	if iss != want {
		return "", fmt.Errorf("iss %q is not the issuer of tenant %q", iss, tid)
	}
	return want, nil
}

// grantedScopes reads the token response's scopes: a space- or
// comma-separated string (GitHub uses commas) or a list (Twitch), within
// scopesBound.
func (p *Provider) grantedScopes(raw map[string]any) []string {
	var list []any
	switch v := raw[or(p.pre.scopeKey, "scope")].(type) {
	case string:
		for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }) {
			list = append(list, s)
		}
	case []any:
		list = v
	}
	var out []string
	for _, s := range list {
		if s, ok := s.(string); ok {
			out = scopesBound.add(out, s)
		}
	}
	return out
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
	AuthTime          *flexInt64 `json:"auth_time"`
	Audience          audience   `json:"aud"`
}

// verifyOIDC verifies the ID token, maps its claims and completes them from
// userinfo. It returns the ID token's claims for the email rule.
func (p *Provider) verifyOIDC(ctx context.Context, e *endpoints, tok *oauth2.Token, nonce string, res *Result) (map[string]any, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("%w: token response has no id_token", ErrRejected)
	}
	d := e.d
	ctx = oidc.ClientContext(ctx, p.client)
	idt, err := d.verify(ctx, &oidc.Config{ClientID: p.cfg.ClientID, SkipIssuerCheck: p.pre.tenantIssuer}, raw, "id_token")
	if err != nil {
		return nil, err
	}
	var c idClaims
	var all map[string]any
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: id_token claims: %v", ErrRejected, err)
	}
	_ = idt.Claims(&all) // cannot fail where the struct decoding did not
	if err := checkIDClaims(&c, p.cfg.ClientID, nonce, p.pre.noNonce); err != nil {
		return nil, fmt.Errorf("%w: id_token: %v", ErrRejected, err)
	}
	if p.pre.tenantIssuer {
		if res.Issuer, err = tenantIssuer(d.issuer, idt.Issuer, lookupString(all, "tid")); err != nil {
			return nil, fmt.Errorf("%w: id_token: %v", ErrRejected, err)
		}
	}
	res.IDToken, res.SID = raw, lookupString(all, "sid")
	if c.AuthTime != nil {
		res.AuthTime = time.Unix(int64(*c.AuthTime), 0)
	}
	res.Profile = c.profile()
	if s := lookupString(all, p.pre.subjectClaim); s != "" {
		res.Profile.Subject = s
	}
	res.Profile.Groups = p.groups(all)
	if e.userinfo == "" {
		return all, nil
	}
	info, err := p.fetchObject(ctx, e.userinfo, tok.AccessToken, "userinfo")
	if err != nil {
		return nil, err
	}
	var u idClaims
	if err := decodeInto(info, &u); err != nil {
		return nil, fmt.Errorf("%w: userinfo: %v", ErrRejected, err)
	}
	// OIDC Core 5.3.2: the userinfo sub MUST equal the ID token's.
	if u.Subject != c.Subject {
		return nil, fmt.Errorf("%w: userinfo sub differs from the id_token's", ErrRejected)
	}
	res.Profile.fillFrom(u.profile(), u.EmailVerified.set)
	if len(res.Profile.Groups) == 0 {
		res.Profile.Groups = p.groups(info)
	}
	return all, nil
}

// checkIDClaims checks what go-oidc leaves to the caller (OIDC Core 3.1.3.7).
// noNonce is for providers that never echo the nonce: a nonce present must
// still match.
func checkIDClaims(c *idClaims, clientID, nonce string, noNonce bool) error {
	switch {
	case c.Subject == "":
		return errors.New("sub is missing")
	case c.IssuedAt == nil:
		return errors.New("iat is missing")
	case noNonce && c.Nonce == "":
	case nonce == "" || c.Nonce != nonce:
		return errors.New("nonce does not match the authorization request")
	}
	if err := checkAudience(c.Audience, c.AuthorizedParty, clientID); err != nil {
		return err
	}
	if time.Unix(int64(*c.IssuedAt), 0).After(time.Now().Add(5 * time.Minute)) {
		return errors.New("iat is in the future")
	}
	return nil
}

// checkAudience checks what go-oidc does not of a token's audience (it
// checked that aud holds the client): several audiences need an azp, and
// an azp must be the client (OIDC Core 3.1.3.7).
func checkAudience(aud audience, azp, clientID string) error {
	switch {
	case len(aud) > 1 && azp == "":
		return errors.New("several audiences and no azp")
	case azp != "" && azp != clientID:
		return errors.New("azp is not this client")
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
