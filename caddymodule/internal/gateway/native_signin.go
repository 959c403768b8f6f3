package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/flow"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
)

// Native sign-ins with a provider's native SDK. Possessing an ID token is
// not proving a sign-in: the token must carry a nonce the gateway issued
// (POST /native/nonce) to the app that redeems it, proven by the verifier
// of the challenge the nonce is bound to. The nonce is taken before the
// token is looked at, so a token signs in at most once and a captured
// one, with or without its nonce, signs in nobody.

// nativeApple signs in a native app's Sign in with Apple result: JSON or a
// form {id_token, code, nonce, code_verifier, given_name, family_name,
// provider}. nonce is the one /native/nonce issued (the identity token
// carries its SHA-256 in hex); provider names the apple provider when
// there are several, default "apple". The session lasts the full session
// lifetime: the redeemed code leaves the gateway Apple's grant.
func (g *Gateway) nativeApple(w http.ResponseWriter, r *http.Request) {
	var in struct {
		IDToken    string `json:"id_token"`
		Code       string `json:"code"`
		Nonce      string `json:"nonce"`
		Verifier   string `json:"code_verifier"`
		GivenName  string `json:"given_name"`
		FamilyName string `json:"family_name"`
		Provider   string `json:"provider"`
	}
	if !readNativeBody(w, r, &in, "{id_token, code, nonce, code_verifier, given_name, family_name}") {
		return
	}
	name := orDefault(in.Provider, "apple")
	p, ok := g.byName[name]
	if !ok || !p.SignIn() {
		writeJSON(w, http.StatusNotFound, errorBody("unknown_provider", "There is no apple provider named "+name+" that signs in.", nil))
		return
	}
	refused := func(err error) bool {
		return g.nativeRefused(w, r, p, err, "invalid_apple_credential", "The identity token or authorization code was not accepted: "+
			"check the bundle id, that the token carries the SHA-256 of the nonce from "+g.prefix+"/native/nonce, and that the code is fresh.")
	}
	if refused(p.NativeApple()) || g.nativeFlowError(w, r, "taking a sign-in nonce", g.flow.TakeSignInNonce(r.Context(), in.Nonce, in.Verifier)) {
		return
	}
	res, err := p.ExchangeNative(r.Context(), provider.NativeApple{IDToken: in.IDToken, Code: in.Code, RawNonce: in.Nonce,
		GivenName: in.GivenName, FamilyName: in.FamilyName})
	if refused(err) {
		return
	}
	g.nativeSignIn(w, r, p, res, 0)
}

// nativeIDToken signs in with an ID token a native SDK got from an OpenID
// provider (Google Sign-In and the like): JSON or a form {provider,
// id_token, nonce, code_verifier}, where nonce is the one /native/nonce
// issued and the token's nonce claim. There is no grant to check the person
// with later, so the session lasts IDTokenSessionLifetime. Apple is
// refused here: its tokens sign in only at /native/apple, under its rules.
func (g *Gateway) nativeIDToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Provider string `json:"provider"`
		IDToken  string `json:"id_token"`
		Nonce    string `json:"nonce"`
		Verifier string `json:"code_verifier"`
	}
	if !readNativeBody(w, r, &in, "{provider, id_token, nonce, code_verifier}") {
		return
	}
	p, ok := g.byName[in.Provider]
	if !ok || !p.SignIn() {
		writeJSON(w, http.StatusNotFound, errorBody("unknown_provider", "There is no provider named "+in.Provider+" that signs in.", nil))
		return
	}
	refused := func(err error) bool {
		return g.nativeRefused(w, r, p, err, "invalid_id_token", "The ID token was not accepted: "+
			"check the client id, that the token carries the nonce from "+g.prefix+"/native/nonce, and that it is fresh.")
	}
	if refused(p.NativeIDTokens()) || g.nativeFlowError(w, r, "taking a sign-in nonce", g.flow.TakeSignInNonce(r.Context(), in.Nonce, in.Verifier)) {
		return
	}
	res, err := p.VerifyNativeIDToken(r.Context(), in.IDToken, in.Nonce)
	if refused(err) {
		return
	}
	g.nativeSignIn(w, r, p, res, g.idTokenLifetime)
}

// nativeRefused answers a provider's refusal of a native sign-in, when err
// is one, and reports whether it did: an identity past its bound (the ID
// token, or a subject, email or issuer in it) is answered 413
// identity_too_large naming it, a rejected credential 401 with code and
// message.
func (g *Gateway) nativeRefused(w http.ResponseWriter, r *http.Request, p *provider.Provider, err error, code, message string) bool {
	var tooLarge *provider.TooLargeError
	switch {
	case err == nil:
		return false
	case errors.As(err, &tooLarge):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody("identity_too_large",
			fmt.Sprintf("The %s is %d bytes long; at most %d are taken.", tooLarge.Field, tooLarge.Length, tooLarge.Max), nil))
	case errors.Is(err, provider.ErrNativeNotConfigured):
		writeJSON(w, http.StatusNotFound, errorBody("native_sign_in_not_configured", err.Error(), nil))
	case errors.Is(err, provider.ErrAppleNeedsCode):
		writeJSON(w, http.StatusBadRequest, errorBody("use_native_apple",
			"Sign in with Apple results go to "+g.prefix+"/native/apple, with the authorization code; this endpoint does not take Apple identity tokens.", nil))
	case errors.Is(err, provider.ErrRejected):
		g.logger.Warn("native sign-in refused", zap.String("provider", p.Name()), zap.Error(err))
		writeJSON(w, http.StatusUnauthorized, errorBody(code, message, nil))
	default:
		g.logger.Warn("native sign-in failed", zap.String("provider", p.Name()), zap.Error(err))
		w.Header().Set("Retry-After", "30")
		writeJSON(w, http.StatusBadGateway, errorBody("provider_unavailable", p.DisplayName()+" could not be reached. Try again in a moment.", nil))
	}
	return true
}

// nativeSignIn records a verified native sign-in and answers a session
// token for its user, for lifetime (zero: the session lifetime).
func (g *Gateway) nativeSignIn(w http.ResponseWriter, r *http.Request, p *provider.Provider, res *provider.Result, lifetime time.Duration) {
	out, err := g.flow.SignInResult(r.Context(), p, res)
	var fe *flow.Error
	switch {
	case errors.As(err, &fe):
		metrics.SignIns.WithLabelValues(p.Name(), fe.Reason).Inc()
		metrics.FlowErrors.WithLabelValues(fe.Reason).Inc()
		writeJSON(w, fe.Status, errorBody(fe.Reason, fe.Message.String(), nil))
		return
	case err != nil:
		g.internal(w, r, "recording native sign-in", err)
		return
	}
	g.issueNative(w, r, out.User.ID, out.Account.ID, lifetime, out.Linked)
}
