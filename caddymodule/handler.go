package caddymodule

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/socialgate/socialgate/caddymodule/internal/gateway"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler protects the routes it matches: a request passes only with a live
// session, and then carries the user's identity upstream in X-Auth-User-Id,
// X-Auth-User-Email, X-Auth-User-Name and X-Auth-Session-Id, and to later
// handlers in {http.auth.user.id}, {http.auth.user.email},
// {http.auth.user.name} and {http.auth.session.id}. It also serves the
// gateway's own endpoints under the app's prefix (/_auth by default).
type Handler struct {
	gw *gateway.Gateway
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.socialgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision attaches the handler to the socialgate app of this config.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := ctx.App("socialgate")
	if err != nil {
		return fmt.Errorf("loading the socialgate app: %w", err)
	}
	h.gw = app.(*App).Gateway()
	return nil
}

// ServeHTTP strips spoofed identity headers, serves the gateway's endpoints,
// and lets signed-in requests through with their identity.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Before anything else: a client must never get its own identity headers
	// through, authenticated or not.
	gateway.StripIdentityHeaders(r.Header)

	// Paths and return-to URLs come from the request as the client sent it:
	// handle_path may have stripped a prefix by now.
	orig := r
	if o, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		orig = &o
	}
	if h.gw.Owns(orig.URL.Path) {
		h.gw.ServeHTTP(w, r, orig.URL.Path)
		return nil
	}

	sess, err := h.gw.Authenticate(r)
	if errors.Is(err, session.ErrNoSession) {
		h.gw.Challenge(w, r, orig.URL.RequestURI())
		return nil
	}
	if err != nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("reading session: %w", err))
	}

	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", sess.UserID)
	repl.Set("http.auth.user.email", sess.Email)
	repl.Set("http.auth.user.name", sess.Name)
	repl.Set("http.auth.session.id", sess.ID)
	gateway.SetIdentityHeaders(r.Header, sess)
	gateway.StripGatewayCookies(r.Header)
	return next.ServeHTTP(w, r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
