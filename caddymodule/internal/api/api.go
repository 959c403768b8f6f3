// Package api is the gateway's backend API: JSON over HTTP for the apps
// behind it, authenticated with an API key (Authorization: Bearer <key>),
// shaped like Clerk's Backend API. Errors are Clerk's: {"errors":[{code,
// message, long_message, meta}], "clerk_trace_id"}.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

// Revoker revokes a provider's tokens when an account is deleted.
type Revoker interface {
	CanRevoke() bool
	Revoke(ctx context.Context, clientID, accessToken, refreshToken string) error
}

// ProviderStatus is what the API reports of a provider.
type ProviderStatus interface {
	Name() string
	DisplayName() string
	SignIn() bool
	Reachable(ctx context.Context) error
}

// Options configure an API.
type Options struct {
	Store  store.Store
	Tokens *tokens.Engine
	// Revokers finds the provider of an account by name, to revoke tokens.
	Revokers func(name string) (Revoker, bool)
	// Providers are the configured providers, for GET /providers.
	Providers []ProviderStatus
	// Keys are the accepted API keys; several allow rotation.
	Keys []string
	// OnSessionEnd is told about every session the API revokes or deletes.
	OnSessionEnd func(sessionID string)
	// OnAccountsChange is told about every user whose linked accounts (and
	// so, maybe, sessions) the API changed (unlink, user deletion).
	OnAccountsChange func(userID string)
	// Webhooks reports webhook delivery (GET /webhooks); nil lists none.
	Webhooks *webhook.Dispatcher
	// Audit records each provider token the API hands out; nil records
	// nothing.
	Audit *audit.Log
	// ClientIP names the caller in audit entries; default: the peer address.
	ClientIP func(r *http.Request) string
	Logger   *zap.Logger
}

// API serves the backend API. Safe for concurrent use.
type API struct {
	Options
	keyHashes [][32]byte
}

// New returns an API. With no keys, every request is refused.
func New(o Options) *API {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.OnSessionEnd == nil {
		o.OnSessionEnd = func(string) {}
	}
	if o.OnAccountsChange == nil {
		o.OnAccountsChange = func(string) {}
	}
	if o.ClientIP == nil {
		o.ClientIP = func(r *http.Request) string {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			return host
		}
	}
	a := &API{Options: o}
	for _, k := range o.Keys {
		a.keyHashes = append(a.keyHashes, sha256.Sum256([]byte(k)))
	}
	return a
}

// ServeHTTP serves path, the part of the URL after the API's prefix
// (/users/…, /sessions/…).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request, path string) {
	key, ok := a.authorized(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="socialgate api"`)
		writeError(w, http.StatusUnauthorized, "authentication_invalid", "A valid API key is required: Authorization: Bearer <api key>.")
		return
	}
	seg := strings.Split(strings.Trim(path, "/"), "/")
	route := func(n int, first string) bool { return len(seg) == n && seg[0] == first }
	switch {
	case route(1, "users") && r.Method == http.MethodGet:
		a.listUsers(w, r)
	case route(2, "users") && r.Method == http.MethodGet:
		a.getUser(w, r, seg[1])
	case route(2, "users") && r.Method == http.MethodDelete:
		a.deleteUser(w, r, seg[1])
	case route(4, "users") && seg[2] == "oauth_access_tokens" && r.Method == http.MethodGet:
		a.oauthAccessTokens(w, r, key, seg[1], seg[3])
	case route(4, "users") && seg[2] == "external_accounts" && r.Method == http.MethodDelete:
		a.deleteExternalAccount(w, r, seg[1], seg[3])
	case route(1, "redirect_urls") && r.Method == http.MethodGet:
		a.listRedirectURLs(w, r)
	case route(1, "redirect_urls") && r.Method == http.MethodPost:
		a.createRedirectURL(w, r)
	case route(2, "redirect_urls") && r.Method == http.MethodGet:
		a.getRedirectURL(w, r, seg[1])
	case route(2, "redirect_urls") && r.Method == http.MethodDelete:
		a.deleteRedirectURL(w, r, seg[1])
	case route(1, "providers") && r.Method == http.MethodGet:
		a.listProviders(w, r)
	case route(1, "sessions") && r.Method == http.MethodGet:
		a.listSessions(w, r)
	case route(3, "sessions") && seg[2] == "revoke" && r.Method == http.MethodPost:
		a.revokeSession(w, r, seg[1])
	case route(1, "webhooks") && r.Method == http.MethodGet:
		a.listWebhooks(w, r)
	case route(3, "webhooks") && seg[2] == "replay" && r.Method == http.MethodPost:
		a.replayWebhook(w, r, seg[1])
	default:
		writeError(w, http.StatusNotFound, "resource_not_found", "There is no such endpoint.")
	}
}

// authorized compares the presented key with every accepted key in constant
// time, and names the key that matched by its fingerprint. A browser's
// session cookie is never enough.
func (a *API) authorized(r *http.Request) (fingerprint string, ok bool) {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || key == "" || len(a.keyHashes) == 0 {
		return "", false
	}
	got := sha256.Sum256([]byte(key))
	match, which := 0, 0
	for i, want := range a.keyHashes {
		eq := subtle.ConstantTimeCompare(got[:], want[:])
		match |= eq
		which = subtle.ConstantTimeSelect(eq, i, which)
	}
	if match != 1 {
		return "", false
	}
	return audit.KeyFingerprint(a.keyHashes[which]), true
}

// page reads limit and offset; paginated=true asks for {data, total_count}.
type page struct {
	limit, offset int
	paginated     bool
}

func readPage(r *http.Request, defLimit int) (page, error) {
	q := r.URL.Query()
	p := page{limit: defLimit, paginated: q.Get("paginated") == "true"}
	for name, dst := range map[string]*int{"limit": &p.limit, "offset": &p.offset} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || (name == "limit" && (n < 1 || n > 500)) {
				return p, errors.New(name + " must be a number (limit 1–500, offset ≥ 0)")
			}
			*dst = n
		}
	}
	return p, nil
}

// writeList writes items as a plain array, or {data, total_count} when paginated.
func writeList(w http.ResponseWriter, p page, items []map[string]any, total int) {
	if items == nil {
		items = []map[string]any{}
	}
	if p.paginated {
		writeJSON(w, http.StatusOK, map[string]any{"data": items, "total_count": total})
		return
	}
	writeJSON(w, http.StatusOK, items)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeErrorMeta(w, status, code, message, nil)
}

// writeErrorMeta writes Clerk's error shape: {errors: [{code, message,
// long_message, meta}], clerk_trace_id}, with the trace id also in the
// Clerk-Trace-Id header, as Clerk's SDKs read it.
func writeErrorMeta(w http.ResponseWriter, status int, code, message string, meta map[string]any) {
	if meta == nil {
		meta = map[string]any{}
	}
	trace := store.NewID("trace")
	w.Header().Set("Clerk-Trace-Id", trace)
	writeJSON(w, status, map[string]any{
		"errors":         []any{map[string]any{"code": code, "message": message, "long_message": message, "meta": meta}},
		"clerk_trace_id": trace,
	})
}

func (a *API) internal(w http.ResponseWriter, what string, err error) {
	a.Logger.Error(what, zap.Error(err))
	writeError(w, http.StatusInternalServerError, "internal_error", "Something went wrong on our side.")
}
