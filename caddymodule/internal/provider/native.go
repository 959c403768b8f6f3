package provider

import (
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

// ErrNativeNotConfigured means the provider takes no native sign-ins: it is
// not apple, or has no bundle_ids.
var ErrNativeNotConfigured = errors.New("native Sign in with Apple is not configured: add bundle_ids to the apple provider")

var bundleIDPattern = regexp.MustCompile(`^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`)

// NativeApple is what an iOS, watchOS, macOS or tvOS app gets from Sign in
// with Apple (ASAuthorizationAppleIDCredential) and sends to the gateway.
type NativeApple struct {
	// IDToken is the identityToken.
	IDToken string
	// Code is the authorizationCode; redeeming it yields the tokens.
	Code string
	// RawNonce is the nonce whose SHA-256 (hex) the app put in the request.
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
	if len(p.native) == 0 {
		return nil, ErrNativeNotConfigured
	}
	if in.IDToken == "" || in.Code == "" || in.RawNonce == "" {
		return nil, fmt.Errorf("%w: id_token, code and nonce are required", ErrRejected)
	}
	e, err := p.endpoints(ctx)
	if err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, p.client)
	// The audience is one of several bundle ids: go-oidc checks everything
	// else, the audience is checked below.
	idt, err := e.d.verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(ctx, in.IDToken)
	if err != nil {
		return nil, fmt.Errorf("%w: identity token: %v", ErrRejected, err)
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

	secret, err := p.native[bundle].get(time.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: client secret: %v", ErrUnavailable, err)
	}
	tok, _, err := p.postToken(ctx, e.token, url.Values{"grant_type": {"authorization_code"}, "code": {in.Code}},
		oauth2.AuthStyleInParams, bundle, secret)
	if err != nil {
		return nil, p.classifyTokenError(err)
	}
	if err := sameSubject(ctx, e, tok, bundle, c.Subject); err != nil {
		return nil, err
	}
	res := &Result{Issuer: p.cfg.Issuer, Token: tok, IDToken: in.IDToken, Profile: c.profile(),
		Scopes: slices.Clone(p.RequiredScopes())}
	res.Profile.EmailVerified = p.emailVerified(res.Profile, all)
	res.Profile.Groups = p.groups(all)
	if name := strings.TrimSpace(in.GivenName + " " + in.FamilyName); name != "" {
		res.Profile.Name = name
	}
	return res, nil
}

// sameSubject checks that the ID token from redeeming the code names the
// person of the identity token: a code of another sign-in must not mix in.
func sameSubject(ctx context.Context, e *endpoints, tok *oauth2.Token, bundle, subject string) error {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return fmt.Errorf("%w: the token endpoint sent no id_token to match the identity token", ErrRejected)
	}
	idt, err := e.d.verifier(&oidc.Config{ClientID: bundle}).Verify(ctx, raw)
	if err != nil {
		return fmt.Errorf("%w: token endpoint id_token: %v", ErrRejected, err)
	}
	if idt.Subject != subject {
		return fmt.Errorf("%w: the authorization code belongs to another person", ErrRejected)
	}
	return nil
}

// VerifyNativeIDToken signs in with an ID token that a native SDK obtained
// from this OpenID provider (Google Sign-In, Sign in with Apple, …): the
// token must be the provider's (signature, issuer, expiry), for the web
// client id or one of the configured native client ids (NativeClientIDs,
// or apple's bundle_ids), with the nonce the app chose — as sent, or its
// SHA-256 in hex (Apple's way). There is no code to redeem, so the result
// carries no provider tokens.
func (p *Provider) VerifyNativeIDToken(ctx context.Context, idToken, rawNonce string) (*Result, error) {
	if !p.pre.oidc {
		return nil, fmt.Errorf("%w: %s is not an OpenID provider", ErrNativeNotConfigured, p.Name())
	}
	if idToken == "" || rawNonce == "" {
		return nil, fmt.Errorf("%w: id_token and nonce are required", ErrRejected)
	}
	e, err := p.endpoints(ctx)
	if err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, p.client)
	idt, err := e.d.verifier(&oidc.Config{SkipClientIDCheck: true, SkipIssuerCheck: p.pre.tenantIssuer}).Verify(ctx, idToken)
	if err != nil {
		return nil, fmt.Errorf("%w: id_token: %v", ErrRejected, err)
	}
	if len(idt.Audience) != 1 || !p.nativeAudience(idt.Audience[0]) {
		return nil, fmt.Errorf("%w: id_token is not for this client or a configured native client", ErrRejected)
	}
	var c idClaims
	var all map[string]any
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: id_token claims: %v", ErrRejected, err)
	}
	_ = idt.Claims(&all)
	nonce := rawNonce
	if sum := sha256.Sum256([]byte(rawNonce)); c.Nonce == hex.EncodeToString(sum[:]) {
		nonce = c.Nonce
	}
	if err := checkIDClaims(&c, idt.Audience[0], nonce, false); err != nil {
		return nil, fmt.Errorf("%w: id_token: %v", ErrRejected, err)
	}
	res := &Result{Issuer: p.cfg.Issuer, Token: &oauth2.Token{}, IDToken: idToken, Profile: c.profile()}
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
	return res, nil
}

func (p *Provider) nativeAudience(aud string) bool {
	return aud == p.cfg.ClientID || p.native[aud] != nil || slices.Contains(p.cfg.NativeClientIDs, aud)
}
