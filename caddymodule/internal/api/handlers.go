package api

import (
	"net/http"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// GET /users?limit=&offset=&email_address=
func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	p, paginated, err := page(r, 10)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	users, total, err := a.ops.Users(r.Context(), store.UserQuery{Email: r.URL.Query().Get("email_address"), Limit: p.Limit, Offset: p.Offset})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]map[string]any, 0, len(users))
	for _, u := range users {
		items = append(items, User(u.User, u.Accounts))
	}
	writeList(w, paginated, items, total)
}

// GET /users/{id}
func (a *API) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.ops.User(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, User(u.User, u.Accounts))
}

// DELETE /users/{id}: the user, its accounts (tokens revoked at the provider
// where it can) and its sessions.
func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.ops.DeleteUser(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "user", "id": id, "deleted": true})
}

// DELETE /users/{id}/external_accounts/{account_id}: the sessions signed
// in through the account end with it (ops.Service.DisconnectAccount).
func (a *API) deleteExternalAccount(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("account_id")
	if _, _, err := a.ops.DisconnectAccount(r.Context(), r.PathValue("id"), id); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "external_account", "id": id, "deleted": true})
}

// GET /users/{id}/oauth_access_tokens/{provider}: like Clerk's
// getUserOauthAccessToken, one item per linked account of the provider, each
// token fresh. The provider is named as Clerk's SDKs name it (ProviderName);
// one that is not configured is not found. Each token handed out is
// audited, with key the fingerprint of the API key that asked.
func (a *API) oauthAccessTokens(w http.ResponseWriter, r *http.Request) {
	p, paginated, err := page(r, 100)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id := r.PathValue("provider")
	name, ok := ProviderName(id, a.ops.HasProvider)
	if !ok {
		writeError(w, http.StatusNotFound, "resource_not_found", "No provider "+id+" is configured.")
		return
	}
	accounts, total, err := a.ops.ProviderTokens(r.Context(), r.PathValue("id"), name, p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]map[string]any, 0, len(accounts))
	for _, acct := range accounts {
		items = append(items, OAuthAccessToken(acct))
	}
	writeList(w, paginated, items, total)
}

// GET /sessions?user_id=
func (a *API) listSessions(w http.ResponseWriter, r *http.Request) {
	userID := r.URL.Query().Get("user_id")
	if userID == "" {
		writeError(w, http.StatusBadRequest, "form_param_missing", "user_id is required.")
		return
	}
	p, paginated, err := page(r, 100)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sessions, total, err := a.ops.Sessions(r.Context(), userID, p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]map[string]any, 0, len(sessions))
	for _, s := range sessions {
		items = append(items, Session(s, "active"))
	}
	writeList(w, paginated, items, total)
}

// POST /sessions/{id}/revoke
func (a *API) revokeSession(w http.ResponseWriter, r *http.Request) {
	s, err := a.ops.RevokeSession(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Session(s, "revoked"))
}
