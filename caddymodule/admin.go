package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI adds socialgate's operator routes to Caddy's admin endpoint,
// under /socialgate/. Caddy instantiates it once per admin server, not per
// config, so it reads the live stores from the store pool, never from an
// App. The routes are what the operator commands (`socialgate users`, …)
// call when a running gateway holds the store:
//
//	GET    /socialgate/users?email=&limit=&offset=
//	GET    /socialgate/users/{id}
//	DELETE /socialgate/users/{id}
//	DELETE /socialgate/users/{id}/external_accounts/{eac}
//	POST   /socialgate/sessions/{id}/revoke
//	POST   /socialgate/webhooks/{name}/replay?since=<Unix ms>|event_id=<evt_…>
//	POST   /socialgate/identity-keys/rotate  (Badger stores)
//	GET    /socialgate/check    (Badger stores)
//	GET    /socialgate/backup   (Badger stores; Badger's backup format)
//
// When several stores are open, ?storage= names one: the Badger directory.
// Errors are Caddy's admin errors, {"error": "…"}; a missing record is 404.
// Changes made here reach the caches of every config serving on the store at
// once: a revoked session or a deleted user is refused on the next request.
type AdminAPI struct{}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.socialgate",
		New: func() caddy.Module { return new(AdminAPI) },
	}
}

// Routes returns the admin routes.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/socialgate/", Handler: caddy.AdminHandlerFunc(a.serve)}}
}

// adminErr is an admin API error with its status.
func adminErr(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

// pooledStore returns the open store the request names with ?storage=, or
// the only one.
func pooledStore(r *http.Request) (*openStore, error) {
	open := map[string]*openStore{}
	stores.Range(func(key, value any) bool {
		open[key.(string)] = value.(*openStore)
		return true
	})
	if want := r.URL.Query().Get("storage"); want != "" {
		if abs, err := filepath.Abs(want); err == nil {
			if st, ok := open["badger:"+filepath.Clean(abs)]; ok {
				return st, nil
			}
		}
		return nil, adminErr(http.StatusNotFound, "this gateway has no store open at %s", want)
	}
	switch len(open) {
	case 0:
		return nil, adminErr(http.StatusServiceUnavailable, "no socialgate store is open: is the socialgate app configured?")
	case 1:
		for _, st := range open {
			return st, nil
		}
	}
	var dirs []string
	for key := range open {
		if dir, ok := strings.CutPrefix(key, "badger:"); ok {
			dirs = append(dirs, dir)
		} else {
			dirs = append(dirs, "(postgres)")
		}
	}
	sort.Strings(dirs)
	return nil, adminErr(http.StatusConflict, "%d socialgate stores are open (%s): name one with ?storage=<directory> (the commands' --storage)", len(open), strings.Join(dirs, ", "))
}

func (a *AdminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	seg := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/socialgate/"), "/"), "/")
	route := func(n int, first, method string) bool {
		return len(seg) == n && seg[0] == first && r.Method == method
	}
	open, err := pooledStore(r)
	if err != nil {
		return err
	}
	st, ctx := open.store, r.Context()
	switch {
	case route(1, "users", http.MethodGet):
		q := r.URL.Query()
		limit, offset := 100, 0
		for name, dst := range map[string]*int{"limit": &limit, "offset": &offset} {
			if v := q.Get(name); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return adminErr(http.StatusBadRequest, "%s must be a number at least 0", name)
				}
				*dst = n
			}
		}
		if limit < 1 || limit > 500 {
			return adminErr(http.StatusBadRequest, "limit must be 1-500")
		}
		users, total, err := st.Users(ctx, store.UserQuery{Email: q.Get("email"), Limit: limit, Offset: offset})
		if err != nil {
			return adminErr(http.StatusInternalServerError, "listing users: %v", err)
		}
		items := make([]map[string]any, 0, len(users))
		for _, u := range users {
			accounts, err := st.ExternalAccounts(ctx, u.ID)
			if err != nil {
				return adminErr(http.StatusInternalServerError, "listing accounts: %v", err)
			}
			items = append(items, api.User(u, accounts))
		}
		return adminJSON(w, map[string]any{"data": items, "total_count": total})

	case route(2, "users", http.MethodGet):
		id := seg[1]
		u, err := st.User(ctx, id)
		if err != nil {
			return storeErr(err, "user "+id)
		}
		accounts, err := st.ExternalAccounts(ctx, id)
		if err != nil {
			return storeErr(err, "user "+id)
		}
		sessions, err := st.Sessions(ctx, id)
		if err != nil {
			return storeErr(err, "user "+id)
		}
		items := make([]map[string]any, 0, len(sessions))
		for _, s := range sessions {
			items = append(items, api.Session(s, "active"))
		}
		return adminJSON(w, map[string]any{"user": api.User(u, accounts), "sessions": items})

	case route(2, "users", http.MethodDelete):
		id := seg[1]
		sessions, err := st.Sessions(ctx, id)
		if err != nil {
			return storeErr(err, "user "+id)
		}
		if err := st.DeleteUser(ctx, id); err != nil {
			return storeErr(err, "user "+id)
		}
		for _, s := range sessions {
			open.sessionEnded(s.ID)
		}
		open.accountsChanged(id)
		return adminJSON(w, map[string]any{"object": "user", "id": id, "deleted": true})

	case route(4, "users", http.MethodDelete) && seg[2] == "external_accounts":
		userID, id := seg[1], seg[3]
		_, revoked, err := st.DeleteExternalAccount(ctx, userID, id, func([]*store.ExternalAccount) error { return nil })
		if err != nil {
			return storeErr(err, "external account "+id+" of user "+userID)
		}
		for _, s := range revoked {
			open.sessionEnded(s)
		}
		open.accountsChanged(userID)
		return adminJSON(w, map[string]any{"object": "external_account", "id": id, "deleted": true})

	case route(3, "sessions", http.MethodPost) && seg[2] == "revoke":
		s, err := st.Session(ctx, seg[1])
		if err != nil {
			// Session ids are bearer secrets: the message does not repeat it.
			return storeErr(err, "live session with this id")
		}
		if err := st.RevokeSession(ctx, s.ID); err != nil {
			return adminErr(http.StatusInternalServerError, "revoking session: %v", err)
		}
		open.sessionEnded(s.ID)
		return adminJSON(w, api.Session(s, "revoked"))

	case route(3, "webhooks", http.MethodPost) && seg[2] == "replay":
		return replayWebhook(w, r, open, seg[1])

	case route(2, "identity-keys", http.MethodPost) && seg[1] == "rotate":
		return rotateIdentityKey(w, r, open)

	case route(1, "check", http.MethodGet):
		b, ok := st.(*store.Badger)
		if !ok {
			return adminErr(http.StatusNotImplemented, "the invariant check reads Badger stores only")
		}
		problems, err := b.Check(ctx)
		if err != nil {
			return adminErr(http.StatusInternalServerError, "%v", err)
		}
		_, total, err := st.Users(ctx, store.UserQuery{Limit: 1})
		if err != nil {
			return adminErr(http.StatusInternalServerError, "counting users: %v", err)
		}
		if problems == nil {
			problems = []string{}
		}
		return adminJSON(w, map[string]any{"violations": problems, "users": total})

	case route(1, "backup", http.MethodGet):
		b, ok := st.(*store.Badger)
		if !ok {
			return adminErr(http.StatusNotImplemented, "backup covers Badger stores only: back up PostgreSQL with pg_dump")
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		// Past the header, an error can only cut the stream short: the
		// client sees a truncated body, which DB.Load rejects.
		if err := b.Backup(w); err != nil {
			panic(http.ErrAbortHandler)
		}
		return nil
	}
	return adminErr(http.StatusNotFound, "there is no such socialgate admin route: %s %s", r.Method, r.URL.Path)
}

// storeErr maps a store error: a missing record is 404 "there is no <what>".
func storeErr(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return adminErr(http.StatusNotFound, "there is no %s", what)
	}
	return adminErr(http.StatusInternalServerError, "%v", err)
}

func adminJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(v)
}

var _ caddy.AdminRouter = (*AdminAPI)(nil)
