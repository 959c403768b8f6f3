package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/flow"
)

// NativeAllowed reports whether a native app's redirect URL matches the
// allowlist: the configured URLs and those added through the API. Matching
// is exact on scheme, host and path; loopback URLs may vary the port. The
// allowlist stays compiled in memory until the store's list changes.
func (g *Gateway) nativeAllowed(ctx context.Context, raw string) bool {
	list, err := g.redirects.get(ctx, g.store)
	if err != nil {
		g.logger.Error("checking a native redirect URL", zap.Error(err))
		return false
	}
	return list.Match(raw)
}

// readNativeBody decodes a native endpoint's body, JSON or a form, into v,
// whose json tags name the fields. It answers and reports false when the
// body cannot be read: 413 request_body_too_large past maxBody (as the
// backend API does), else 400; shape describes the expected fields.
func readNativeBody(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		err = json.NewDecoder(r.Body).Decode(v)
	} else if err = r.ParseForm(); err == nil {
		fields := make(map[string]string, len(r.PostForm))
		for k := range r.PostForm {
			fields[k] = r.PostForm.Get(k)
		}
		b, _ := json.Marshal(fields)
		err = json.Unmarshal(b, v)
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody("request_body_too_large",
			fmt.Sprintf("The body is larger than %d KB.", maxBody>>10), nil))
		return false
	case err != nil:
		writeJSON(w, http.StatusBadRequest, errorBody("invalid_request", "The body must be JSON or a form: "+shape+".", nil))
		return false
	}
	return true
}

// nativeToken redeems a rotating token nonce (with the verifier of the
// flow's code_challenge) for a session token and the user's JSON. The body
// is a form or JSON: {rotating_token_nonce, code_verifier}.
func (g *Gateway) nativeToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Nonce    string `json:"rotating_token_nonce"`
		Verifier string `json:"code_verifier"`
	}
	if !readNativeBody(w, r, &in, "{rotating_token_nonce, code_verifier}") {
		return
	}
	user, accountID, linked, err := g.flow.RedeemNonce(r.Context(), in.Nonce, in.Verifier)
	if g.nativeFlowError(w, r, "redeeming nonce", err) {
		return
	}
	g.issueNative(w, r, user.ID, accountID, 0, linked)
}

// nativeNonce issues the nonce a native app puts in its request to a
// provider's native SDK (Sign in with Apple, Google Sign-In) before it
// signs in at /native/apple or /native/id_token. The body, JSON or a form,
// is {code_challenge}: BASE64URL(SHA-256(verifier)) of a verifier the app
// keeps and sends with the sign-in. The answer is {object: "native_nonce",
// nonce, expires_at} (Unix milliseconds, flow.SignInNonceTTL from now).
func (g *Gateway) nativeNonce(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Challenge string `json:"code_challenge"`
	}
	if !readNativeBody(w, r, &in, "{code_challenge}") {
		return
	}
	nonce, expires, err := g.flow.IssueSignInNonce(r.Context(), in.Challenge)
	if g.nativeFlowError(w, r, "issuing a sign-in nonce", err) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"object": "native_nonce", "nonce": nonce, "expires_at": expires.UnixMilli()})
}

// nativeFlowError answers err, when there is one, and reports whether it
// did: a flow refusal as its own JSON error, anything else as an internal
// error logged under what.
func (g *Gateway) nativeFlowError(w http.ResponseWriter, r *http.Request, what string, err error) bool {
	if err == nil {
		return false
	}
	var fe *flow.Error
	if errors.As(err, &fe) {
		writeJSON(w, fe.Status, errorBody(fe.Reason, fe.Message.String(), nil))
		return true
	}
	g.logger.Error(what, zap.Error(err))
	writeJSON(w, http.StatusInternalServerError, errorBody("internal_error", "Something went wrong on our side.", nil))
	return true
}

// issueNative starts a session for a native app, signed in through the
// account accountID, and answers its token and the user, with
// linked_by_email when the sign-in was a link by email (the app must tell
// the person, as the browser's page does). A positive lifetime shorter than
// the session lifetime ends the session sooner.
func (g *Gateway) issueNative(w http.ResponseWriter, r *http.Request, userID, accountID string, lifetime time.Duration, linked *flow.LinkNotice) {
	user, err := g.store.User(r.Context(), userID)
	if err != nil {
		g.internal(w, r, "reading user", err)
		return
	}
	sess, token, err := g.sessions.Issue(r.Context(), r, user, accountID, lifetime)
	if fe := flow.Refused(err); fe != nil {
		writeJSON(w, fe.Status, errorBody(fe.Reason, fe.Message.String(), nil))
		return
	}
	if err != nil {
		g.internal(w, r, "creating session", err)
		return
	}
	accounts, err := g.store.ExternalAccounts(r.Context(), user.ID)
	if err != nil {
		g.internal(w, r, "reading accounts", err)
		return
	}
	g.logger.Info("native session", zap.String("user_id", user.ID), zap.String("session_id", sess.ID))
	w.Header().Set("Cache-Control", "no-store")
	body := map[string]any{
		"object":        "client",
		"session_token": token,
		"session":       api.Session(sess, "active"),
		"user":          api.FrontendUser(user, accounts),
	}
	if linked != nil {
		body["linked_by_email"] = linked
	}
	writeJSON(w, http.StatusOK, body)
}
