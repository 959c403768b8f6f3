package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/socialgate/socialgate/caddymodule/internal/config"
	"github.com/socialgate/socialgate/caddymodule/internal/gateway"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler protects the routes it matches: a request passes only with a live
// session, and then carries the user's identity upstream in X-Auth-User-Id,
// X-Auth-User-Email, X-Auth-User-Name, X-Auth-Session-Id and the signed
// identity token X-Auth-Jwt, and to later handlers in
// {http.auth.user.id}, {http.auth.user.email}, {http.auth.user.name} and
// {http.auth.session.id}; with Public, requests pass without a session too.
// It also serves the gateway's own endpoints under the app's prefix (/_auth
// by default). Its options, documented, are config.Route.
type Handler struct {
	config.Route

	gw     *gateway.Gateway
	policy *gateway.Policy
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.socialgate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision attaches the handler to the socialgate app of this config and
// compiles its policy.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := ctx.App("socialgate")
	if err != nil {
		// Caddy's error names the app already: "loading socialgate app
		// module: provision socialgate: …".
		return err
	}
	h.gw = app.(*App).gateway
	h.policy, err = h.gw.Policy(h.Gateway())
	return err
}

// ServeHTTP strips spoofed identity headers, serves the gateway's own
// endpoints, and sends on what the gateway's Guard lets through, with its
// identity in headers and placeholders.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Paths and return-to URLs are the request's as the client sent it:
	// handle_path may have stripped a prefix by now.
	orig := r.URL
	if o, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		orig = o.URL
	}
	if h.gw.Owns(orig.Path) {
		own := r.WithContext(r.Context())
		own.URL = orig
		// The gateway's endpoints send nothing upstream, and verify must
		// see the client's identity headers to refuse them: an external
		// proxy copies them into its question.
		h.gw.ServeHTTP(w, own)
		return nil
	}
	// Before anything goes on: a client must never get its own identity
	// headers through, authenticated or not.
	gateway.StripIdentityHeaders(r.Header)
	pass, ok, err := h.gw.Guard(w, r, orig.RequestURI(), h.policy)
	if err != nil {
		return caddyhttp.Error(gateway.Status(err), err)
	}
	if !ok {
		return nil // answered: a sign-in redirect, 401, 403 or 400
	}
	setPlaceholders(pass)
	pass.SetHeaders(pass.Request.Header)
	return next.ServeHTTP(w, pass.Request)
}

// setPlaceholders tells later handlers who the request is from: Caddy's
// {http.auth.user.*} (access logs' user_id among them), the session's id,
// and the forwarded tokens. An anonymous request sets none.
func setPlaceholders(pass gateway.Pass) {
	s := pass.Session
	if s == nil {
		return
	}
	repl := pass.Request.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", s.UserID)
	repl.Set("http.auth.user.email", s.VerifiedEmail())
	repl.Set("http.auth.user.name", s.Name)
	repl.Set("http.auth.session.id", s.ID)
	for _, t := range pass.Tokens {
		repl.Set("http.auth.token."+t.Provider, t.Value)
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
