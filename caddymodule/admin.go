package caddymodule

import (
	"net/http"
	"sort"

	"github.com/caddyserver/caddy/v2"

	"github.com/socialgate/socialgate/caddymodule/internal/admin"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI adds socialgate's operator routes to Caddy's admin endpoint,
// under /socialgate/ (see package internal/admin for the routes): what the
// operator commands (`socialgate users`, …) call when a running gateway
// holds the store, or when they are given --admin. Caddy instantiates it
// once per admin server, not per config, so it reads the live stores from
// the store pool, never from an App. Changes made here reach the caches of
// every config serving on the store at once: a revoked session or a deleted
// user is refused on the next request.
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
	h := admin.NewHandler(pooledStores)
	return []caddy.AdminRoute{{Pattern: "/socialgate/", Handler: caddy.AdminHandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	})}}
}

// pooledStores lists the open stores, with the operations on each: their
// changes reach every config's caches, and the webhook dispatcher of the
// store's serving configuration replays.
func pooledStores() []admin.Store {
	hooks := map[any]*webhook.Dispatcher{}
	dispatchers.Range(func(key, value any) bool {
		hooks[key] = value.(pooledDispatcher).Dispatcher
		return true
	})
	var out []admin.Store
	stores.Range(func(key, value any) bool {
		o := value.(*openStore)
		out = append(out, admin.Store{Dir: o.Dir, Name: o.Name, Ops: ops.New(ops.Options{Store: o.Store, Keys: o.identity,
			Webhooks: hooks[key],
			Logger:   caddy.Log().Named("socialgate.admin")})})
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

var _ caddy.AdminRouter = (*AdminAPI)(nil)
