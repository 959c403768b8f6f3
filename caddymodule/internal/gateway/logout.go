package gateway

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// SignedOutPath, under the prefix, is where a provider sends the browser
// back after signing the person out there: the post_logout_redirect_uri to
// register at providers with sign_out_at_provider.
const SignedOutPath = "/signed-out"

// signOutAtProvider returns where to send a browser whose session has just
// ended so that it signs out at the provider it signed in with too
// (RP-Initiated Logout), or "" to stay. A provider that is down costs the
// person only that provider's sign-out: the gateway's has happened.
func (g *Gateway) signOutAtProvider(r *http.Request, sess *store.Session, returnTo string) string {
	if sess == nil || sess.AccountID == "" {
		return ""
	}
	acc, err := g.store.ExternalAccount(r.Context(), sess.AccountID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) { // else unlinked since: nothing to sign out of
			g.logger.Error("reading the account of a signed-out session", zap.Error(err))
		}
		return ""
	}
	p := g.byName[acc.Provider]
	if p == nil || !p.SignOutAtProvider() {
		return ""
	}
	to, err := g.flow.EndSession(r.Context(), p, acc.Tokens.IDToken, origin(r)+g.prefix+SignedOutPath, returnTo)
	if err != nil {
		g.logger.Warn("not signing out at the provider", zap.String("provider", p.Name()), zap.Error(err))
		return ""
	}
	return to
}

// signedOut is where the provider sends the browser back after signing
// out there: on to the return-to the sign-out asked for, or the sign-in
// page saying so.
func (g *Gateway) signedOut(w http.ResponseWriter, r *http.Request) {
	to, err := g.flow.SignedOut(r.Context(), r.URL.Query().Get("state"))
	if err != nil {
		g.internal(w, r, "reading the sign-out state", err)
		return
	}
	if to == "" {
		to = g.signedOutURL()
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// backChannelLogout receives a provider's logout token (OpenID Connect
// Back-Channel Logout 1.0): POST, form-encoded logout_token. It answers 200
// once the sessions it names have ended on every gateway, or 400 with a JSON
// error ({"error", "error_description"}) when the token is refused.
func (g *Gateway) backChannelLogout(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	w.Header().Set("Cache-Control", "no-store")
	p, ok := g.byName[name]
	if !ok || !p.BackChannelLogout() {
		logoutError(w, http.StatusNotFound, "invalid_request", "There is no OpenID provider of that name.")
		return
	}
	if err := r.ParseForm(); err != nil || len(r.PostForm["logout_token"]) != 1 {
		logoutError(w, http.StatusBadRequest, "invalid_request", "Send one logout_token, form-encoded.")
		return
	}
	ended, err := g.flow.BackChannelLogout(r.Context(), p, r.PostForm.Get("logout_token"))
	for _, s := range ended {
		metrics.Sessions.WithLabelValues("revoked").Inc()
		g.logger.Info("back-channel logout", zap.String("provider", name), zap.String("user_id", s.UserID), zap.String("session_id", s.ID))
	}
	switch {
	case errors.Is(err, provider.ErrRejected):
		if c := g.logger.Check(zap.WarnLevel, "logout token refused"); c != nil {
			c.Write(zap.String("provider", name), zap.Error(err))
		}
		logoutError(w, http.StatusBadRequest, "invalid_request", "The logout token is not valid.")
	case err != nil:
		g.logger.Error("back-channel logout failed", zap.String("provider", name), zap.Error(err))
		logoutError(w, http.StatusBadRequest, "temporarily_unavailable", "The logout could not be completed; send it again.")
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// logoutError answers a back-channel logout request with an OAuth-shaped
// JSON error.
func logoutError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}
