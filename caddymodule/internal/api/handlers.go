package api

import (
	"net/http"

	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

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

// sessionStatuses are the statuses Clerk's session list filters by. The
// store keeps live sessions only: every one is active, and a list of
// another status is empty.
var sessionStatuses = map[string]bool{"active": true, "abandoned": true, "ended": true, "expired": true,
	"removed": true, "replaced": true, "revoked": true, "pending": true}

// GET /sessions?user_id=&status=: the user's live sessions.
// socialgate lists sessions by user only: client_id is refused.
func (a *API) listSessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	userID, status := q.Get("user_id"), q.Get("status")
	switch {
	case q.Has("client_id"):
		a.fail(w, r, &ops.ParamError{Param: "client_id", Kind: ops.ParamUnsupported,
			Message: "socialgate lists sessions by user_id, not by client_id"})
		return
	case userID == "":
		writeError(w, http.StatusBadRequest, "form_param_missing", "user_id is required.")
		return
	case status != "" && !sessionStatuses[status]:
		a.fail(w, r, &ops.ParamError{Param: "status", Kind: ops.ParamValue, Message: "status " + status + " is not a session status"})
		return
	}
	p, paginated, err := page(r, 100)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var sessions []*store.Session
	total := 0
	if status == "" || status == "active" {
		if sessions, total, err = a.ops.Sessions(r.Context(), userID, p); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	items := make([]map[string]any, 0, len(sessions))
	for _, s := range sessions {
		items = append(items, Session(s, "active"))
	}
	writeList(w, paginated, items, total)
}

// GET /sessions/{id}: a live session.
func (a *API) getSession(w http.ResponseWriter, r *http.Request) {
	s, err := a.ops.Session(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Session(s, "active"))
}

// GET /jwks: the keys that verify the gateway's identity tokens (ES256),
// {keys: [...]}, as Clerk's SDKs read its instance's keys.
func (a *API) getJWKS(w http.ResponseWriter, r *http.Request) {
	if a.jwks == nil {
		notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(a.jwks())
}

// POST /sessions/{id}/revoke
func (a *API) revokeSession(w http.ResponseWriter, r *http.Request) {
	if !readJSON(w, r, &struct{}{}) {
		return
	}
	s, err := a.ops.RevokeSession(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Session(s, "revoked"))
}
