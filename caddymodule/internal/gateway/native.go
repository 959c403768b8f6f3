package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/flow"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
)

// NativeAllowed reports whether a native app's redirect URL matches the
// allowlist: the configured URLs and those added through the API. Matching
// is exact on scheme, host and path; loopback URLs may vary the port.
func (g *Gateway) NativeAllowed(ctx context.Context, raw string) bool {
	records, err := g.Store.RedirectURLs(ctx)
	if err != nil {
		g.Logger.Error("reading redirect URLs", zap.Error(err))
		return false
	}
	urls := make([]string, 0, len(records))
	for _, ru := range records {
		urls = append(urls, ru.URL)
	}
	list, err := redirect.NewAllowlist(urls)
	if err != nil {
		g.Logger.Error("a stored redirect URL is invalid", zap.Error(err))
		return false
	}
	return list.Match(raw)
}

// nativeToken redeems a rotating token nonce (with the verifier of the
// flow's code_challenge) for a session token and the user's JSON. The body
// is a form or JSON: {rotating_token_nonce, code_verifier}.
func (g *Gateway) nativeToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Nonce    string `json:"rotating_token_nonce"`
		Verifier string `json:"code_verifier"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", "The body is not valid JSON.", nil))
			return
		}
	} else {
		in.Nonce, in.Verifier = r.PostFormValue("rotating_token_nonce"), r.PostFormValue("code_verifier")
	}
	user, err := g.Flow.RedeemNonce(r.Context(), in.Nonce, in.Verifier)
	var fe *flow.Error
	if errors.As(err, &fe) {
		writeJSON(w, fe.Status, errorBody(fe.Reason, fe.Message, nil))
		return
	}
	if err != nil {
		g.Logger.Error("redeeming nonce", zap.Error(err))
		writeJSON(w, http.StatusInternalServerError, errorBody("internal_error", "Something went wrong on our side.", nil))
		return
	}
	g.issueNative(w, r, user.ID)
}

// nativeApple signs in a native app's Sign in with Apple result: JSON
// {id_token, code, nonce, given_name, family_name, provider}. provider names
// the apple provider when there are several; default "apple".
func (g *Gateway) nativeApple(w http.ResponseWriter, r *http.Request) {
	var in struct {
		IDToken    string `json:"id_token"`
		Code       string `json:"code"`
		Nonce      string `json:"nonce"`
		GivenName  string `json:"given_name"`
		FamilyName string `json:"family_name"`
		Provider   string `json:"provider"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", "The body must be JSON: {id_token, code, nonce, given_name, family_name}.", nil))
		return
	}
	name := orDefault(in.Provider, "apple")
	p, ok := g.byName[name]
	if !ok || !p.SignIn() {
		writeJSON(w, http.StatusNotFound, errorBody("unknown_provider", "There is no apple provider named "+name+" that signs in.", nil))
		return
	}
	res, err := p.ExchangeNative(r.Context(), provider.NativeApple{IDToken: in.IDToken, Code: in.Code, RawNonce: in.Nonce,
		GivenName: in.GivenName, FamilyName: in.FamilyName})
	switch {
	case errors.Is(err, provider.ErrNativeNotConfigured):
		writeJSON(w, http.StatusNotFound, errorBody("native_sign_in_not_configured", err.Error(), nil))
		return
	case errors.Is(err, provider.ErrRejected):
		g.Logger.Warn("native apple sign-in refused", zap.Error(err))
		writeJSON(w, http.StatusUnauthorized, errorBody("invalid_apple_credential",
			"The identity token or authorization code was not accepted: check the bundle id, the nonce, and that the code is fresh.", nil))
		return
	case err != nil:
		g.Logger.Warn("native apple sign-in failed", zap.Error(err))
		w.Header().Set("Retry-After", "30")
		writeJSON(w, http.StatusBadGateway, errorBody("provider_unavailable", "Apple could not be reached. Try again in a moment.", nil))
		return
	}
	out, err := g.Flow.SignInResult(r.Context(), p, res, g.LinkByEmail[name])
	if err != nil {
		g.nativeSignInFailed(w, r, p.Name(), err)
		return
	}
	g.issueNative(w, r, out.User.ID)
}

// nativeIDToken signs in with an ID token a native SDK got from an OpenID
// provider (Google Sign-In and the like): JSON {provider, id_token, nonce}.
func (g *Gateway) nativeIDToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Provider string `json:"provider"`
		IDToken  string `json:"id_token"`
		Nonce    string `json:"nonce"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", "The body must be JSON: {provider, id_token, nonce}.", nil))
		return
	}
	p, ok := g.byName[in.Provider]
	if !ok || !p.SignIn() {
		writeJSON(w, http.StatusNotFound, errorBody("unknown_provider", "There is no provider named "+in.Provider+" that signs in.", nil))
		return
	}
	res, err := p.VerifyNativeIDToken(r.Context(), in.IDToken, in.Nonce)
	switch {
	case errors.Is(err, provider.ErrNativeNotConfigured):
		writeJSON(w, http.StatusNotFound, errorBody("native_sign_in_not_configured", err.Error(), nil))
		return
	case errors.Is(err, provider.ErrRejected):
		g.Logger.Warn("native id_token refused", zap.String("provider", p.Name()), zap.Error(err))
		writeJSON(w, http.StatusUnauthorized, errorBody("invalid_id_token",
			"The ID token was not accepted: check the client id, the nonce, and that the token is fresh.", nil))
		return
	case err != nil:
		w.Header().Set("Retry-After", "30")
		writeJSON(w, http.StatusBadGateway, errorBody("provider_unavailable", p.DisplayName()+" could not be reached. Try again in a moment.", nil))
		return
	}
	out, err := g.Flow.SignInResult(r.Context(), p, res, g.LinkByEmail[p.Name()])
	if err != nil {
		g.nativeSignInFailed(w, r, p.Name(), err)
		return
	}
	g.issueNative(w, r, out.User.ID)
}

// nativeSignInFailed answers a native sign-in that the store did not
// record: a refusal (allow_emails) as its own JSON error, anything else as
// an internal error.
func (g *Gateway) nativeSignInFailed(w http.ResponseWriter, r *http.Request, provider string, err error) {
	var fe *flow.Error
	if !errors.As(err, &fe) {
		g.internal(w, r, "recording native sign-in", err)
		return
	}
	metrics.SignIns.WithLabelValues(provider, fe.Reason).Inc()
	metrics.FlowErrors.WithLabelValues(fe.Reason).Inc()
	writeJSON(w, fe.Status, errorBody(fe.Reason, fe.Message, nil))
}

// issueNative starts a session for a native app and answers its token and
// the user.
func (g *Gateway) issueNative(w http.ResponseWriter, r *http.Request, userID string) {
	user, err := g.Store.User(r.Context(), userID)
	if err != nil {
		g.internal(w, r, "reading user", err)
		return
	}
	sess, token, err := g.Sessions.Issue(r.Context(), r, user)
	if err != nil {
		g.internal(w, r, "creating session", err)
		return
	}
	accounts, err := g.Store.ExternalAccounts(r.Context(), user.ID)
	if err != nil {
		g.internal(w, r, "reading accounts", err)
		return
	}
	g.Logger.Info("native session", zap.String("user_id", user.ID), zap.String("session_id", sess.ID))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"object":        "client",
		"session_token": token,
		"session":       api.Session(sess, "active"),
		"user":          api.User(user, accounts),
	})
}
