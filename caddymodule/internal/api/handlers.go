package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
)

// GET /users?limit=&offset=&email_address=
func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	p, err := readPage(r, 10)
	if err != nil {
		writeError(w, http.StatusBadRequest, "form_param_invalid", err.Error())
		return
	}
	users, total, err := a.Store.Users(r.Context(), store.UserQuery{Email: r.URL.Query().Get("email_address"), Limit: p.limit, Offset: p.offset})
	if err != nil {
		a.internal(w, "listing users", err)
		return
	}
	items := make([]map[string]any, 0, len(users))
	for _, u := range users {
		accounts, err := a.Store.ExternalAccounts(r.Context(), u.ID)
		if err != nil {
			a.internal(w, "listing accounts", err)
			return
		}
		items = append(items, User(u, accounts))
	}
	writeList(w, p, items, total)
}

// GET /users/{id}
func (a *API) getUser(w http.ResponseWriter, r *http.Request, id string) {
	u, err := a.Store.User(r.Context(), id)
	if a.notFound(w, err, "user") {
		return
	}
	accounts, err := a.Store.ExternalAccounts(r.Context(), id)
	if err != nil {
		a.internal(w, "listing accounts", err)
		return
	}
	writeJSON(w, http.StatusOK, User(u, accounts))
}

// DELETE /users/{id}: the user, its accounts (tokens revoked at the provider
// where it can) and its sessions.
func (a *API) deleteUser(w http.ResponseWriter, r *http.Request, id string) {
	accounts, err := a.Store.ExternalAccounts(r.Context(), id)
	if err != nil {
		a.internal(w, "listing accounts", err)
		return
	}
	sessions, err := a.Store.Sessions(r.Context(), id)
	if err != nil {
		a.internal(w, "listing sessions", err)
		return
	}
	if a.notFound(w, a.Store.DeleteUser(r.Context(), id), "user") {
		return
	}
	for _, s := range sessions {
		a.OnSessionEnd(s.ID)
	}
	a.OnAccountsChange(id)
	for _, acct := range accounts {
		a.revoke(r, acct)
	}
	a.Logger.Info("api: user deleted", zap.String("user_id", id))
	writeJSON(w, http.StatusOK, map[string]any{"object": "user", "id": id, "deleted": true})
}

// DELETE /users/{id}/external_accounts/{eac}: the sessions signed in
// through the account end with it (store.Store.DeleteExternalAccount).
func (a *API) deleteExternalAccount(w http.ResponseWriter, r *http.Request, userID, id string) {
	gone, revoked, err := a.Store.DeleteExternalAccount(r.Context(), userID, id, func([]*store.ExternalAccount) error { return nil })
	if a.notFound(w, err, "external account") {
		return
	}
	for _, s := range revoked {
		a.OnSessionEnd(s)
		metrics.Sessions.WithLabelValues("revoked").Inc()
	}
	a.revoke(r, gone)
	a.OnAccountsChange(userID)
	metrics.Unlinks.WithLabelValues(gone.Provider).Inc()
	a.Logger.Info("api: external account deleted", zap.String("user_id", userID), zap.String("external_account_id", id),
		zap.Int("revoked_sessions", len(revoked)))
	writeJSON(w, http.StatusOK, map[string]any{"object": "external_account", "id": id, "deleted": true})
}

// configured reports whether a provider of that name is configured.
func (a *API) configured(name string) bool {
	return slices.ContainsFunc(a.Providers, func(p ProviderStatus) bool { return p.Name() == name })
}

// GET /users/{id}/oauth_access_tokens/{provider}: like Clerk's
// getUserOauthAccessToken, one item per linked account of the provider, each
// token fresh. Each token handed out is audited, with key the fingerprint of
// the API key that asked.
func (a *API) oauthAccessTokens(w http.ResponseWriter, r *http.Request, key, userID, providerID string) {
	p, err := readPage(r, 100)
	if err != nil {
		writeError(w, http.StatusBadRequest, "form_param_invalid", err.Error())
		return
	}
	name, ok := ProviderName(providerID, a.configured)
	if !ok {
		writeError(w, http.StatusNotFound, "resource_not_found", "No provider "+providerID+" is configured.")
		return
	}
	if _, err := a.Store.User(r.Context(), userID); a.notFound(w, err, "user") {
		return
	}
	accounts, err := a.Store.ExternalAccounts(r.Context(), userID)
	if err != nil {
		a.internal(w, "listing accounts", err)
		return
	}
	var mine []*store.ExternalAccount
	for _, acct := range accounts {
		if acct.Provider == name {
			mine = append(mine, acct)
		}
	}
	total := len(mine)
	mine = mine[min(p.offset, total):min(p.offset+p.limit, total)]
	items := make([]map[string]any, 0, len(mine))
	for _, acct := range mine {
		fresh, err := a.Tokens.Fresh(r.Context(), acct)
		switch {
		case errors.Is(err, tokens.ErrNeedsReauthorization):
			writeErrorMeta(w, http.StatusUnprocessableEntity, "oauth_token_needs_reauthorization",
				fmt.Sprintf("The %s account must be reconnected by the user: the provider no longer accepts its grant.", name),
				map[string]any{"external_account_id": acct.ID})
			return
		case errors.Is(err, tokens.ErrUnavailable):
			w.Header().Set("Retry-After", "30")
			writeErrorMeta(w, http.StatusServiceUnavailable, "oauth_provider_unavailable",
				fmt.Sprintf("The token expired and %s could not refresh it right now. Retry later.", name),
				map[string]any{"external_account_id": acct.ID})
			return
		case err != nil:
			a.internal(w, "refreshing token", err)
			return
		}
		items = append(items, OAuthAccessToken(fresh))
	}
	for _, acct := range mine {
		a.Audit.Record(audit.Entry{Time: time.Now(), Actor: "api_key:" + key, ClientIP: a.ClientIP(r),
			Action: audit.ActionReadToken, UserID: userID, Provider: acct.Provider, ExternalAccountID: acct.ID})
	}
	writeList(w, p, items, total)
}

// GET /sessions?user_id=
func (a *API) listSessions(w http.ResponseWriter, r *http.Request) {
	userID := r.URL.Query().Get("user_id")
	if userID == "" {
		writeError(w, http.StatusBadRequest, "form_param_missing", "user_id is required.")
		return
	}
	p, err := readPage(r, 100)
	if err != nil {
		writeError(w, http.StatusBadRequest, "form_param_invalid", err.Error())
		return
	}
	sessions, err := a.Store.Sessions(r.Context(), userID)
	if err != nil {
		a.internal(w, "listing sessions", err)
		return
	}
	total := len(sessions)
	items := []map[string]any{}
	for _, s := range sessions[min(p.offset, total):min(p.offset+p.limit, total)] {
		items = append(items, Session(s, "active"))
	}
	writeList(w, p, items, total)
}

// POST /sessions/{id}/revoke
func (a *API) revokeSession(w http.ResponseWriter, r *http.Request, id string) {
	s, err := a.Store.Session(r.Context(), id)
	if a.notFound(w, err, "session") {
		return
	}
	if err := a.Store.RevokeSession(r.Context(), id); err != nil {
		a.internal(w, "revoking session", err)
		return
	}
	a.OnSessionEnd(id)
	metrics.Sessions.WithLabelValues("revoked").Inc()
	a.Logger.Info("api: session revoked", zap.String("user_id", s.UserID), zap.String("session_id", id))
	writeJSON(w, http.StatusOK, Session(s, "revoked"))
}

// notFound answers ErrNotFound with 404 and any other error with 500; it
// reports whether it answered.
func (a *API) notFound(w http.ResponseWriter, err error, what string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "resource_not_found", "No "+what+" with that id.")
	default:
		a.internal(w, "reading "+what, err)
	}
	return true
}

// revoke revokes an unlinked account's tokens at its provider, best effort.
func (a *API) revoke(r *http.Request, acct *store.ExternalAccount) {
	p, ok := a.Revokers(acct.Provider)
	if !ok || !p.CanRevoke() {
		return
	}
	if err := p.Revoke(r.Context(), acct.Tokens.ClientID, acct.Tokens.AccessToken, acct.Tokens.RefreshToken); err != nil {
		a.Logger.Warn("revoking tokens at the provider failed", zap.String("provider", acct.Provider), zap.Error(err))
	}
}
