package provider

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Errors of the native sign-in paths, before any token is looked at.
var (
	// ErrNativeNotConfigured means the provider takes no native sign-ins
	// on that path: apple without bundle_ids, or a provider without
	// native_client_ids. The wrapping error says which.
	ErrNativeNotConfigured = errors.New("native sign-in is not configured")
	// ErrAppleNeedsCode refuses a bare Sign in with Apple identity token:
	// Apple's native rules (bundle ids, the hashed nonce, the authorization
	// code redeemed for the same person) apply only at POST /native/apple.
	ErrAppleNeedsCode = errors.New("apple signs in natively only with the authorization code (/native/apple)")
)

var bundleIDPattern = regexp.MustCompile(`^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`)

// NativeApple is what an iOS, watchOS, macOS or tvOS app gets from Sign in
// with Apple (ASAuthorizationAppleIDCredential) and sends to the gateway.
type NativeApple struct {
	// IDToken is the identityToken.
	IDToken string
	// Code is the authorizationCode; redeeming it yields the tokens.
	Code string
	// RawNonce is the nonce the gateway issued to the app; the identity
	// token carries its SHA-256 in hex.
	RawNonce string
	// GivenName and FamilyName come from fullName: Apple sends them only at
	// the first authorization.
	GivenName, FamilyName string
}

// ExchangeNative verifies a native Sign in with Apple: the identity token
// must be Apple's (signature against Apple's keys, issuer, expiry), for one
// of the configured bundle ids, with nonce = SHA-256 of the raw nonce; the
// authorization code is then redeemed at Apple's token endpoint with a
// client secret signed for that bundle id, and must name the same person.
func (p *Provider) ExchangeNative(ctx context.Context, in NativeApple) (*Result, error) {
	if err := p.NativeApple(); err != nil {
		return nil, err
	}
	if in.IDToken == "" || in.Code == "" || in.RawNonce == "" {
		return nil, fmt.Errorf("%w: id_token, code and nonce are required", ErrRejected)
	}
	if err := checkSize("id_token", in.IDToken, MaxToken); err != nil {
		return nil, err
	}
	e, err := p.endpoints(ctx)
	if err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, p.client)
	// The audience is one of several bundle ids: go-oidc checks everything
	// else, the audience is checked below.
	idt, err := e.d.verify(ctx, &oidc.Config{SkipClientIDCheck: true}, in.IDToken, "identity token")
	if err != nil {
		return nil, err
	}
	if len(idt.Audience) != 1 || p.native[idt.Audience[0]] == nil {
		return nil, fmt.Errorf("%w: identity token is not for a configured bundle id", ErrRejected)
	}
	bundle := idt.Audience[0]
	var c idClaims
	var all map[string]any
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: identity token claims: %v", ErrRejected, err)
	}
	_ = idt.Claims(&all)
	hashed := sha256.Sum256([]byte(in.RawNonce))
	if err := checkIDClaims(&c, bundle, hex.EncodeToString(hashed[:]), false); err != nil {
		return nil, fmt.Errorf("%w: identity token: %v", ErrRejected, err)
	}

	secret, err := p.nativeSecret(bundle)
	if err != nil {
		return nil, err
	}
	tok, _, err := p.postToken(ctx, e.token, url.Values{"grant_type": {"authorization_code"}, "code": {in.Code}},
		oauth2.AuthStyleInParams, bundle, secret)
	if err != nil {
		return nil, p.classifyTokenError(err)
	}
	if err := sameSubject(ctx, e, tok, bundle, c.Subject); err != nil {
		return nil, err
	}
	res := &Result{Issuer: p.cfg.Issuer, Token: tok, IDToken: in.IDToken, ClientID: bundle, Profile: c.profile(),
		Scopes: slices.Clone(p.RequiredScopes())}
	res.Profile.EmailVerified = p.emailVerified(res.Profile, all)
	res.Profile.Groups = p.groups(all)
	if name := strings.TrimSpace(in.GivenName + " " + in.FamilyName); name != "" {
		res.Profile.Name = name
	}
	return finish(res)
}

// nativeSecret is the client secret of a native app's client (an apple
// bundle id), signed now. The grants of a client that is not configured
// (any more) cannot be used: ErrInvalidGrant.
func (p *Provider) nativeSecret(clientID string) (string, error) {
	s := p.native[clientID]
	if s == nil {
		return "", fmt.Errorf("%w: %w: the grant belongs to client %q, which is not among bundle_ids", ErrInvalidGrant, ErrRejected, clientID)
	}
	secret, err := s.get(time.Now())
	if err != nil {
		return "", fmt.Errorf("%w: client secret: %v", ErrUnavailable, err)
	}
	return secret, nil
}

// ownClient reports whether a grant's client is the provider's client_id
// ("" stands for it).
func (p *Provider) ownClient(clientID string) bool {
	return clientID == "" || clientID == p.cfg.ClientID
}

// sameSubject checks that the ID token from redeeming the code names the
// person of the identity token: a code of another sign-in must not mix in.
func sameSubject(ctx context.Context, e *endpoints, tok *oauth2.Token, bundle, subject string) error {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return fmt.Errorf("%w: the token endpoint sent no id_token to match the identity token", ErrRejected)
	}
	idt, err := e.d.verify(ctx, &oidc.Config{ClientID: bundle}, raw, "token endpoint id_token")
	if err != nil {
		return err
	}
	if idt.Subject != subject {
		return fmt.Errorf("%w: the authorization code belongs to another person", ErrRejected)
	}
	return nil
}

// NativeApple reports whether the provider takes native Sign in with Apple
// results (ExchangeNative): apple with bundle_ids.
func (p *Provider) NativeApple() error {
	if !p.pre.clientSecretJWT {
		return fmt.Errorf("%w: %s is not an apple provider", ErrNativeNotConfigured, p.Name())
	}
	if len(p.native) == 0 {
		return fmt.Errorf("%w: add bundle_ids to the %s provider", ErrNativeNotConfigured, p.Name())
	}
	return nil
}

// NativeIDTokens reports whether the provider takes bare ID tokens from
// native SDKs (VerifyNativeIDToken): an OpenID provider with
// native_client_ids, and never apple (ErrAppleNeedsCode).
func (p *Provider) NativeIDTokens() error {
	switch {
	case p.pre.clientSecretJWT:
		return ErrAppleNeedsCode
	case !p.pre.oidc:
		return fmt.Errorf("%w: %s is not an OpenID provider", ErrNativeNotConfigured, p.Name())
	case len(p.cfg.NativeClientIDs) == 0:
		return fmt.Errorf("%w: add native_client_ids to the %s provider", ErrNativeNotConfigured, p.Name())
	}
	return nil
}

// VerifyNativeIDToken signs in with an ID token that a native SDK obtained
// from this OpenID provider (Google Sign-In and the like) for a request that
// carried nonce, which the gateway issued. The token must be the
// provider's (signature, issuer, expiry), for exactly one of the configured
// native client ids — the web client_id only when listed there too — with
// an azp, if any, that is one of them as well (Google's SDKs name the app
// there beside the server client id as audience), and with nonce as its
// nonce claim. There is no code to redeem: the result carries no provider
// tokens, and an account that holds some keeps them.
func (p *Provider) VerifyNativeIDToken(ctx context.Context, idToken, nonce string) (*Result, error) {
	if err := p.NativeIDTokens(); err != nil {
		return nil, err
	}
	if idToken == "" || nonce == "" {
		return nil, fmt.Errorf("%w: id_token and nonce are required", ErrRejected)
	}
	if err := checkSize("id_token", idToken, MaxToken); err != nil {
		return nil, err
	}
	e, err := p.endpoints(ctx)
	if err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, p.client)
	idt, err := e.d.verify(ctx, &oidc.Config{SkipClientIDCheck: true, SkipIssuerCheck: p.pre.tenantIssuer}, idToken, "id_token")
	if err != nil {
		return nil, err
	}
	if len(idt.Audience) != 1 || !slices.Contains(p.cfg.NativeClientIDs, idt.Audience[0]) {
		return nil, fmt.Errorf("%w: id_token is not for one configured native client id", ErrRejected)
	}
	var c idClaims
	var all map[string]any
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: id_token claims: %v", ErrRejected, err)
	}
	_ = idt.Claims(&all)
	presenter := cmp.Or(c.AuthorizedParty, idt.Audience[0])
	if !slices.Contains(p.cfg.NativeClientIDs, presenter) {
		return nil, fmt.Errorf("%w: id_token azp is not a configured native client id", ErrRejected)
	}
	if err := checkIDClaims(&c, presenter, nonce, false); err != nil {
		return nil, fmt.Errorf("%w: id_token: %v", ErrRejected, err)
	}
	res := &Result{Issuer: p.cfg.Issuer, Token: &oauth2.Token{}, Profile: c.profile()}
	res.Profile.Groups = p.groups(all)
	if p.pre.tenantIssuer {
		if res.Issuer, err = tenantIssuer(e.d.issuer, idt.Issuer, lookupString(all, "tid")); err != nil {
			return nil, fmt.Errorf("%w: id_token: %v", ErrRejected, err)
		}
	}
	if s := lookupString(all, p.pre.subjectClaim); s != "" {
		res.Profile.Subject = s
	}
	res.Profile.EmailVerified = p.emailVerified(res.Profile, all)
	return finish(res)
}
