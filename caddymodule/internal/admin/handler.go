// Package admin is socialgate's operator API: the routes that Caddy's admin
// endpoint serves under /socialgate/ for the operator commands, and the
// client the commands call them with. Offline the commands serve the same
// routes in their own process over the store they opened (Local), so that
// a command runs one path whether the gateway runs or not. Every route is
// an operation of package ops.
//
//	GET    /socialgate/users?email=&limit=&offset=
//	GET    /socialgate/users/{id}
//	DELETE /socialgate/users/{id}
//	DELETE /socialgate/users/{id}/external_accounts/{account_id}
//	POST   /socialgate/sessions/{id}/revoke
//	POST   /socialgate/webhooks/{name}/replay?since=<Unix ms>|event_id=<evt_…>
//	POST   /socialgate/identity-keys/rotate  (Badger stores)
//	GET    /socialgate/check
//	GET    /socialgate/backup   (Badger stores; Badger's backup format)
//
// When several stores are open, ?storage= names one: the Badger directory.
// Answers are JSON shaped like the backend API's objects (external accounts
// also carry provider_name, issuer and email_verified); errors are Caddy's admin errors, {"error": "…"},
// with a missing record 404. Every answer names the store it read in the
// Socialgate-Store header (and errors in "store").
package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// StoreHeader names, in every answer, the store the route read.
const StoreHeader = "Socialgate-Store"

// Store is an open store the routes may act on.
type Store struct {
	// Dir is the Badger store's absolute directory; "" for PostgreSQL.
	Dir string
	// Name says which store it is (ops.Opened.Name).
	Name string
	Ops  *ops.Service
}

// Handler serves the routes. Safe for concurrent use.
type Handler struct {
	stores func() []Store
	mux    *http.ServeMux
}

// NewHandler returns the routes over the stores that stores lists, asked
// at each request (stores open and close with the configs).
func NewHandler(stores func() []Store) *Handler {
	h := &Handler{stores: stores, mux: http.NewServeMux()}
	for pattern, fn := range map[string]func(w http.ResponseWriter, r *http.Request, s *ops.Service) error{
		"GET /socialgate/users":                                        listUsers,
		"GET /socialgate/users/{id}":                                   getUser,
		"DELETE /socialgate/users/{id}":                                deleteUser,
		"DELETE /socialgate/users/{id}/external_accounts/{account_id}": disconnect,
		"POST /socialgate/sessions/{id}/revoke":                        revokeSession,
		"POST /socialgate/webhooks/{name}/replay":                      replayWebhook,
		"POST /socialgate/identity-keys/rotate":                        rotateIdentityKey,
		"GET /socialgate/check":                                        check,
		"GET /socialgate/backup":                                       backup,
	} {
		h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			st, err := h.store(r)
			if err == nil {
				w.Header().Set(StoreHeader, st.Name)
				err = fn(w, r, st.Ops)
			}
			if err != nil {
				writeError(w, err, st.Name)
			}
		})
	}
	h.mux.HandleFunc("/", noRoute)
	return h
}

func noRoute(w http.ResponseWriter, r *http.Request) {
	writeError(w, &statusError{http.StatusNotFound, "there is no such socialgate admin route: " + r.Method + " " + r.URL.Path}, "")
}

// ServeHTTP serves a route. HEAD is none: ServeMux would answer it with a
// GET route.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		noRoute(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// store returns the open store the request names with ?storage=, or the
// only one.
func (h *Handler) store(r *http.Request) (Store, error) {
	open := h.stores()
	if want := r.URL.Query().Get("storage"); want != "" {
		if abs, err := filepath.Abs(want); err == nil {
			for _, st := range open {
				if st.Dir != "" && st.Dir == filepath.Clean(abs) {
					return st, nil
				}
			}
		}
		return Store{}, &statusError{http.StatusNotFound, "this gateway has no store open at " + want}
	}
	switch len(open) {
	case 0:
		return Store{}, &statusError{http.StatusServiceUnavailable, "no socialgate store is open: is the socialgate app configured?"}
	case 1:
		return open[0], nil
	}
	var names []string
	for _, st := range open {
		names = append(names, st.Name)
	}
	sort.Strings(names)
	return Store{}, &statusError{http.StatusConflict, fmt.Sprintf("%d socialgate stores are open (%s): name one with "+
		"?storage=<directory> (the commands' --storage)", len(open), strings.Join(names, ", "))}
}

func listUsers(w http.ResponseWriter, r *http.Request, s *ops.Service) error {
	q := r.URL.Query()
	p, err := ops.ParsePage(q.Get("limit"), q.Get("offset"), 100)
	if err != nil {
		return err
	}
	users, total, err := s.Users(r.Context(), store.UserQuery{Email: q.Get("email"), Limit: p.Limit, Offset: p.Offset})
	if err != nil {
		return err
	}
	items := make([]map[string]any, 0, len(users))
	for _, u := range users {
		items = append(items, userObject(u))
	}
	return writeJSON(w, map[string]any{"data": items, "total_count": total})
}

func getUser(w http.ResponseWriter, r *http.Request, s *ops.Service) error {
	u, err := s.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	sessions, _, err := s.Sessions(r.Context(), u.User.ID, ops.Page{Limit: ops.MaxLimit})
	if err != nil {
		return err
	}
	items := make([]map[string]any, 0, len(sessions))
	for _, sess := range sessions {
		items = append(items, api.Session(sess, "active"))
	}
	return writeJSON(w, map[string]any{"user": userObject(u), "sessions": items})
}

func deleteUser(w http.ResponseWriter, r *http.Request, s *ops.Service) error {
	id := r.PathValue("id")
	if err := s.DeleteUser(r.Context(), id); err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"object": "user", "id": id, "deleted": true})
}

func disconnect(w http.ResponseWriter, r *http.Request, s *ops.Service) error {
	id := r.PathValue("account_id")
	if _, _, err := s.DisconnectAccount(r.Context(), r.PathValue("id"), id); err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"object": "external_account", "id": id, "deleted": true})
}

func revokeSession(w http.ResponseWriter, r *http.Request, s *ops.Service) error {
	sess, err := s.RevokeSession(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, api.Session(sess, "revoked"))
}

// replayWebhook replays from ?since=<Unix ms> or ?event_id=<evt_…>, through
// the dispatcher of the store's serving configuration.
func replayWebhook(w http.ResponseWriter, r *http.Request, s *ops.Service) error {
	q := r.URL.Query()
	start := ops.ReplayStart{EventID: q.Get("event_id")}
	if since := q.Get("since"); since != "" {
		ms, err := strconv.ParseInt(since, 10, 64)
		if err != nil {
			return &ops.ParamError{Param: "since", Kind: ops.ParamFormat, Message: fmt.Sprintf("since %q is not Unix milliseconds", since)}
		}
		t := time.UnixMilli(ms)
		start.Since = &t
	}
	name := r.PathValue("name")
	from, err := s.ReplayWebhook(r.Context(), name, start)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"object": "webhook_replay", "endpoint": name, "since": from.UnixMilli()})
}

func rotateIdentityKey(w http.ResponseWriter, r *http.Request, s *ops.Service) error {
	rot, err := s.RotateIdentityKey(r.Context())
	if err != nil {
		return err
	}
	out := map[string]any{"object": "identity_keys", "new_key": rot.NewKey, "published": rot.Published}
	if rot.Published {
		out["signing"], out["signs_from"], out["keys"] = rot.Signing, rot.SignsFrom.UnixMilli(), rot.Keys
	}
	return writeJSON(w, out)
}

func check(w http.ResponseWriter, r *http.Request, s *ops.Service) error {
	report, err := s.Check(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"violations": append([]string{}, report.Violations...), "users": report.Users})
}

func backup(w http.ResponseWriter, r *http.Request, s *ops.Service) error {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-store")
	// Past the first byte, an error can only cut the stream short: the
	// client sees a truncated body, which a restore rejects.
	out := &started{w: w}
	if err := s.Backup(r.Context(), out); err != nil && !out.n {
		return err
	} else if err != nil {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// started is a writer that remembers whether anything was written.
type started struct {
	w http.ResponseWriter
	n bool
}

func (s *started) Write(p []byte) (int, error) {
	s.n = true
	return s.w.Write(p)
}

// userObject is the backend API's user object, its external accounts with
// the provider's name in the configuration, their issuer (an account's
// identity is its issuer and subject) and whether the provider verified
// their email address.
func userObject(u ops.UserAccounts) map[string]any {
	m := api.User(u.User, u.Accounts)
	for i, a := range m["external_accounts"].([]map[string]any) {
		acct := u.Accounts[i]
		a["provider_name"], a["issuer"], a["email_verified"] = acct.Provider, acct.Issuer, acct.EmailVerified
	}
	return m
}

// statusError is an error answered with its status.
type statusError struct {
	status  int
	message string
}

func (e *statusError) Error() string { return e.message }

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(v)
}

// writeError answers err as Caddy's admin API does, {"error": "…"}, with
// the store that was read.
func writeError(w http.ResponseWriter, err error, storeName string) {
	status := http.StatusInternalServerError
	var se *statusError
	var nr *ops.NotRetainedError
	switch {
	case errors.As(err, &se):
		status = se.status
	case errors.Is(err, ops.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ops.ErrInvalid):
		status = http.StatusBadRequest
	case errors.As(err, &nr):
		status = http.StatusUnprocessableEntity
	case errors.Is(err, ops.ErrUnsupported):
		status = http.StatusNotImplemented
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	body := map[string]string{"error": err.Error()}
	if storeName != "" {
		body["store"] = storeName
	}
	json.NewEncoder(w).Encode(body)
}
