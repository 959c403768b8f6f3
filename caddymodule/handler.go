package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
	"github.com/socialgate/socialgate/caddymodule/internal/gateway"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
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

	gw           *gateway.Gateway
	allow        *access.Rules
	reqs         []gateway.Requirement
	forward      []string          // provider names of ForwardTokens
	tokenHeaders map[string]string // provider name → header
	owned        gateway.Owned     // the headers this route sets or reads
	audience     *assertion.Audience
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

// Provision attaches the handler to the socialgate app of this config.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := ctx.App("socialgate")
	if err != nil {
		// Caddy's error names the app already: "loading socialgate app
		// module: provision socialgate: …".
		return err
	}
	h.gw = app.(*App).Gateway()
	if err := h.check(h.gw.ProviderNames()); err != nil {
		return err
	}
	for _, r := range h.Require {
		h.reqs = append(h.reqs, gateway.Requirement{Provider: r.Provider, Scopes: r.Scopes})
	}
	h.tokenHeaders = map[string]string{}
	for _, ft := range h.ForwardTokens {
		h.forward = append(h.forward, ft.Provider)
		h.tokenHeaders[ft.Provider] = tokenHeader(ft)
	}
	h.owned = gateway.NewOwned(slices.Collect(maps.Values(h.tokenHeaders))...)
	h.audience = assertion.NewAudience(h.IdentityAudience)
	h.allow, err = h.gw.Rules(h.AllowEmails, h.AllowGroups)
	return err
}

// ServeHTTP strips spoofed identity headers, serves the gateway's endpoints,
// and lets signed-in requests (on a public route, every request) through
// with their identity.
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
	// Nothing may remove or add the gateway's headers after it has set or
	// checked them: not a proxy obeying Connection, nor a late trailer.
	if h.owned.Smuggled(r) {
		h.gw.RefuseSmuggled(w, r)
		return nil
	}
	h.owned.GuardTrailers(r)
	if h.Public {
		return h.servePublic(w, r, next)
	}

	// An outer socialgate (site-wide, with this one on a route) has already
	// authenticated the request and removed its credentials: reuse its session.
	sess, _ := r.Context().Value(sessionCtxKey).(*store.Session)
	var err error
	if sess == nil {
		sess, err = h.gw.Authenticate(r)
		if errors.Is(err, session.ErrNoSession) {
			h.gw.Challenge(w, r, orig.URL.RequestURI())
			return nil
		}
		if err != nil {
			return caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("reading session: %w", err))
		}
		r = r.WithContext(context.WithValue(r.Context(), sessionCtxKey, sess))
	}

	admitted, err := h.gw.Admitted(r.Context(), sess, h.allow)
	if err != nil {
		return caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("reading linked accounts: %w", err))
	}
	if !admitted {
		h.gw.DenyNotAdmitted(w, r, sess)
		return nil
	}

	var tokens map[string]string
	if len(h.reqs) > 0 || len(h.forward) > 0 {
		var unmet *gateway.Requirement
		tokens, unmet, err = h.gw.Resolve(r.Context(), sess, h.reqs, h.forward)
		switch {
		case errors.Is(err, gateway.ErrTokenUnavailable):
			h.gw.TokenUnavailable(w, r)
			return nil
		case err != nil:
			return caddyhttp.Error(http.StatusServiceUnavailable, fmt.Errorf("reading linked accounts: %w", err))
		case unmet != nil:
			h.gw.DenyUnmet(w, r, orig.URL.RequestURI(), *unmet)
			return nil
		}
	}
	return h.pass(w, r, next, sess, tokens)
}

// servePublic lets a request through with or without a session: with one
// (that the app's allow rules admit), it carries the identity as on a
// protected route; without, it goes on anonymous. Either way it loses the
// gateway's credentials. A path that a server behind Caddy could read as
// another one is refused, so that no backend maps it onto a protected path.
func (h *Handler) servePublic(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if gateway.AmbiguousPath(r.URL.Path) {
		h.gw.RefuseAmbiguousPath(w, r)
		return nil
	}
	sess, _ := r.Context().Value(sessionCtxKey).(*store.Session)
	if sess == nil {
		// No session, or none readable now: the request goes on anonymous.
		if sess, _ = h.gw.Authenticate(r); sess != nil {
			r = r.WithContext(context.WithValue(r.Context(), sessionCtxKey, sess))
		}
	}
	if sess != nil {
		if admitted, err := h.gw.Admitted(r.Context(), sess, nil); admitted && err == nil {
			return h.pass(w, r, next, sess, nil)
		}
	}
	gateway.StripGatewayCookies(r.Header)
	h.gw.StripSessionTokens(r.Header)
	return next.ServeHTTP(w, r)
}

// pass sends a signed-in request on with its identity and the route's
// provider tokens (provider name → token), without the gateway's
// credentials.
func (h *Handler) pass(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, sess *store.Session, tokens map[string]string) error {
	identity, err := h.gw.Identity.Token(sess, h.audience)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}

	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	repl.Set("http.auth.user.id", sess.UserID)
	repl.Set("http.auth.user.email", sess.VerifiedEmail())
	repl.Set("http.auth.user.name", sess.Name)
	repl.Set("http.auth.session.id", sess.ID)
	gateway.SetIdentityHeaders(r.Header, sess, identity)
	gateway.StripGatewayCookies(r.Header)
	h.gw.StripSessionTokens(r.Header)
	for name, token := range tokens {
		header, value := h.tokenHeaders[name], token
		if header == "Authorization" {
			value = "Bearer " + token
		}
		r.Header[header] = []string{value}
		repl.Set("http.auth.token."+name, token)
	}
	return next.ServeHTTP(w, r)
}

// sessionCtxKey carries the authenticated session to nested socialgate handlers.
var sessionCtxKey = ctxKey{}

type ctxKey struct{}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
