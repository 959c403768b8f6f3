package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

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
// by default).
type Handler struct {
	// Require lists what a request needs beyond a session: a linked account
	// of a provider, in good standing, with at least these scopes. A browser
	// missing one is asked to connect or grant access and comes back; an API
	// client gets 403 JSON with a reauthorize_url. Default: nothing.
	Require []Requirement `json:"require,omitempty"`

	// ForwardTokens are providers whose access token goes upstream in
	// X-Auth-Token-<Provider> (X-Auth-Token-Github), always fresh: the
	// gateway refreshes it before it expires. Each is also a requirement.
	// Default: none.
	ForwardTokens []ForwardToken `json:"forward_tokens,omitempty"`

	// AllowEmails admits to this route only users with a verified email
	// address among these: ada@example.com, or a whole domain,
	// *@example.com (any case). Others get 403: a page with a sign-out
	// button, or JSON. It narrows the app's allow_emails, which every route
	// applies as well. Default: every signed-in user.
	AllowEmails []string `json:"allow_emails,omitempty"`

	// AllowGroups admits to this route only users with a linked account
	// in one of these groups, each provider:group (corp:admins): the group
	// as that provider asserted it at the account's last sign-in (the
	// provider's fields groups, or github's groups_from). With AllowEmails,
	// matching either admits.
	// Default: every signed-in user.
	AllowGroups []string `json:"allow_groups,omitempty"`

	// IdentityAudience is the aud claim of the identity token (X-Auth-Jwt)
	// on this route, in place of the app's identity_audience. Sites that
	// share one gateway are signed for by the same keys: give each upstream
	// an audience of its own (its origin, https://app.example.com) and have
	// it check aud, so that a token captured from one verifies at no other.
	// Default: the app's identity_audience.
	IdentityAudience []string `json:"identity_audience,omitempty"`

	// Public lets requests through without a session: an exception in a
	// site the gateway protects (socialgate public). They still lose
	// client-sent X-Auth-* headers and the gateway's cookies and session
	// tokens; with a session, they carry the user's identity as on a
	// protected route. A path that a server behind Caddy could read as
	// another one (a ";", a "\", a "%" once decoded, a control character,
	// a segment of dots and spaces, invalid UTF-8) gets 400, so that a
	// backend such as Tomcat or IIS cannot map a public path onto a
	// protected one. It excludes Require, ForwardTokens, AllowEmails and
	// AllowGroups. Default: off, every request needs a session.
	Public bool `json:"public,omitempty"`

	gw     *gateway.Gateway
	policy *gateway.Policy
}

// ForwardToken sends a provider's fresh access token upstream.
type ForwardToken struct {
	// Provider is the name of a configured provider.
	Provider string `json:"provider"`
	// Header carries the token. Default: X-Auth-Token-<Provider>. In
	// Authorization it goes as "Bearer <token>", which Caddy's logs redact.
	// The token is also the placeholder {http.auth.token.<provider>}.
	Header string `json:"header,omitempty"`
}

// Requirement is one route requirement.
type Requirement struct {
	// Provider is the name of a configured provider.
	Provider string `json:"provider"`
	// Scopes the linked account must have approved. Default: none.
	Scopes []string `json:"scopes,omitempty"`
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
	h.policy, err = h.gw.Policy(h.route())
	return err
}

// route is the handler's settings as the gateway reads them.
func (h *Handler) route() gateway.Route {
	rt := gateway.Route{Public: h.Public, AllowEmails: h.AllowEmails, AllowGroups: h.AllowGroups, Audience: h.IdentityAudience}
	for _, r := range h.Require {
		rt.Require = append(rt.Require, gateway.Requirement{Provider: r.Provider, Scopes: r.Scopes})
	}
	for _, ft := range h.ForwardTokens {
		rt.Forward = append(rt.Forward, gateway.Forward{Provider: ft.Provider, Header: ft.Header})
	}
	return rt
}

// ServeHTTP strips spoofed identity headers, serves the gateway's own
// endpoints, and sends on what the gateway's Guard lets through, with its
// identity in headers and placeholders.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Before anything else: a client must never get its own identity headers
	// through, authenticated or not.
	gateway.StripIdentityHeaders(r.Header)
	// Paths and return-to URLs are the request's as the client sent it:
	// handle_path may have stripped a prefix by now.
	orig := r.URL
	if o, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		orig = o.URL
	}
	if h.gw.Owns(orig.Path) {
		own := r.WithContext(r.Context())
		own.URL = orig
		h.gw.ServeHTTP(w, own)
		return nil
	}
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
