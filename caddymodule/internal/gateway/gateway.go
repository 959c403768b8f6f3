// Package gateway is socialgate without Caddy. Guard makes the decision
// on every request a route of the gateway protects: it lets the request
// through with who it is from (a Pass), or answers it (a sign-in redirect,
// 401, 403, 400). ServeHTTP serves the gateway's own endpoints under a
// prefix (/_auth by default): sign-in, callbacks, the account page,
// sign-out, native apps, the backend API. The Caddy handler calls both.
package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
	"github.com/socialgate/socialgate/caddymodule/internal/console"
	"github.com/socialgate/socialgate/caddymodule/internal/flow"
	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/ratelimit"
	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// DefaultPrefix is where the gateway's endpoints live.
const DefaultPrefix = "/_auth"

// maxBody caps request bodies on the gateway's own endpoints.
const maxBody = 64 << 10

// Config is what a Gateway is made of: what the Caddy app owns (its store,
// providers and keys, the pieces it shares with the backend API) and its
// settings. Store, CookieSecrets and Identity are required.
type Config struct {
	// Prefix of the gateway's endpoints. Default: DefaultPrefix.
	Prefix string
	// Store keeps users, accounts, sessions and flows: the app's store,
	// seen through its cache (store/cache).
	Store store.Store
	// Providers are the configured providers, in the order the sign-in
	// page shows them.
	Providers []*provider.Provider
	// CookieSecrets sign and encrypt the session cookie and the gateway's
	// other cookies, newest first: the first seals, all open.
	CookieSecrets [][]byte
	// Identity signs the identity token of signed-in requests.
	Identity *assertion.Signer
	// Tokens hands out fresh provider tokens (forward_token); the backend
	// API shares it, so one refresh serves both. Default: an engine of its
	// own on Store and Providers.
	Tokens *tokens.Engine
	// API serves the backend API under /api/v1/. Nil: every API request
	// gets 404.
	API *api.API
	// UI renders the gateway's pages. Default: the embedded templates.
	UI *ui.Renderer
	// Limits are the per-client abuse limits of the endpoints, by class:
	// start, callback, native, logout, api. Nil limits nothing.
	Limits *ratelimit.Limiter
	// ClientIP names the client for the limits. Default: the peer address.
	ClientIP func(r *http.Request) string
	// Admit is the app's allow_emails and allow_groups, which every route
	// applies. Nil admits everyone.
	Admit *access.Rules
	// ReturnTo decides where a browser may be sent back to after sign-in.
	// Default: paths on the same site only.
	ReturnTo *redirect.ReturnTo
	// SessionLifetime is how long a session lasts after sign-in. Default:
	// a week.
	SessionLifetime time.Duration
	// IDTokenSessionLifetime bounds the sessions that a bare ID token from a
	// native SDK starts (POST /native/id_token): it leaves the gateway no
	// grant to check the person with later. Zero: SessionLifetime.
	IDTokenSessionLifetime time.Duration
	// SessionIdleTimeout ends sessions unused for this long (see
	// session.Manager.WithIdleTimeout). Zero: none.
	SessionIdleTimeout time.Duration
	// FlowTimeout bounds a started sign-in. Default: flow.DefaultTTL.
	FlowTimeout time.Duration
	// ReauthenticateAfter is how recent a sign-in sensitive account actions
	// need. Default: flow.DefaultReauthenticateAfter.
	ReauthenticateAfter time.Duration
	// Console serves the operator console (/admin); nil serves none.
	Console *console.Console
	// CookieDomain shares the session cookie with every host under it (see
	// session.Manager.WithDomain). Default: none, a host-only cookie.
	CookieDomain string
	// ForwardAuth turns on the verify endpoint for external proxies. Nil:
	// it answers 404.
	ForwardAuth *ForwardAuth
	Logger      *zap.Logger
}

// Gateway guards requests and serves the gateway's endpoints. Safe for
// concurrent use.
type Gateway struct {
	prefix          string
	store           store.Store
	providers       []*provider.Provider
	byName          map[string]*provider.Provider
	sessions        *session.Manager
	flow            *flow.Flow
	identity        *assertion.Signer
	tokens          *tokens.Engine
	api             *api.API
	console         *console.Console
	ui              *ui.Renderer
	limits          *ratelimit.Limiter
	clientIP        func(r *http.Request) string
	admit           *access.Rules
	idTokenLifetime time.Duration
	logger          *zap.Logger
	// redirects is the native redirect allowlist, compiled once per change.
	redirects redirectAllowlist
	mux       *http.ServeMux
	verifier  *verifier // nil without Config.ForwardAuth
}

// New returns a Gateway; the error names a setting that is wrong.
func New(cfg Config) (*Gateway, error) {
	g := &Gateway{prefix: cmp.Or(cfg.Prefix, DefaultPrefix), store: cfg.Store, providers: cfg.Providers,
		byName: map[string]*provider.Provider{}, identity: cfg.Identity, tokens: cfg.Tokens, api: cfg.API, console: cfg.Console,
		ui: cfg.UI, limits: cfg.Limits, clientIP: cfg.ClientIP, admit: cfg.Admit,
		idTokenLifetime: cfg.IDTokenSessionLifetime, logger: cfg.Logger}
	if g.store == nil || g.identity == nil {
		return nil, errors.New("a gateway needs a store and an identity-token signer")
	}
	if err := CheckPrefix(g.prefix); err != nil {
		return nil, err
	}
	if g.logger == nil {
		g.logger = zap.NewNop()
	}
	if g.clientIP == nil {
		g.clientIP = func(r *http.Request) string {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			return host
		}
	}
	if g.ui == nil {
		var err error
		if g.ui, err = ui.New(ui.Options{Logger: g.logger}); err != nil {
			return nil, err
		}
	}
	if g.tokens == nil {
		g.tokens = tokens.New(tokens.Options{Store: g.store, Logger: g.logger, Providers: func(name string) (tokens.Refresher, bool) {
			p, ok := g.byName[name]
			return p, ok
		}})
	}
	returnTo := cfg.ReturnTo
	if returnTo == nil {
		returnTo, _ = redirect.NewReturnTo(nil)
	}
	sessions, err := session.NewManager(g.store, cfg.CookieSecrets, cmp.Or(cfg.SessionLifetime, defaultSessionLifetime))
	if err != nil {
		return nil, fmt.Errorf("cookie secrets: %w", err)
	}
	if cfg.CookieDomain != "" {
		if err := session.CheckDomain(cfg.CookieDomain); err != nil {
			return nil, fmt.Errorf("cookie_domain %q: %w", cfg.CookieDomain, err)
		}
	}
	g.sessions = sessions.RememberVerified().WithIdleTimeout(cfg.SessionIdleTimeout).WithDomain(cfg.CookieDomain)
	trusted := map[string]bool{}
	for _, p := range g.providers {
		g.byName[p.Name()] = p
		trusted[p.Name()] = p.LinksByEmail()
	}
	g.flow = flow.New(flow.Config{Store: g.store, Sessions: g.sessions, Sanitize: returnTo.Sanitize,
		TTL: cfg.FlowTimeout, ReauthenticateAfter: cfg.ReauthenticateAfter, Admit: g.admit, Logger: g.logger,
		// A provider no longer configured vouches for no one.
		LinkByEmail:   func(name string) bool { return trusted[name] },
		NativeAllowed: g.nativeAllowed})
	g.mux = g.routes()
	if cfg.ForwardAuth != nil {
		if g.verifier, err = g.newVerifier(cfg.ForwardAuth); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// defaultSessionLifetime is SessionLifetime's default.
const defaultSessionLifetime = 7 * 24 * time.Hour

// Run records session activity in the background (see
// Config.SessionIdleTimeout) until stop is called; stop writes what is
// left.
func (g *Gateway) Run() (stop func()) { return g.sessions.RunActivity(g.logger) }

// Owns reports whether path, as the client sent it, is one of the gateway's
// own endpoints.
func (g *Gateway) Owns(path string) bool {
	return path == g.prefix || strings.HasPrefix(path, g.prefix+"/")
}

// ServeHTTP serves an endpoint under the prefix; r's URL is the request's
// as the client sent it (before any handle_path stripping). A path that
// is not in its clean form gets 404, not a redirect to the clean one.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, g.prefix)
	// Proxies ask on every request they pass: verify comes first, and
	// reads no body. Any other spelling of its address is no address.
	if policy, ok := g.verifyRest(r); ok {
		g.verify(w, r, policy, nil)
		return
	}
	if _, ok := underVerify(rest); ok {
		g.notFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if class := limitClass(rest); class != "" && g.limits != nil {
		if ok, wait := g.limits.Allow(class, g.clientIP(r)); !ok {
			metrics.RateLimited.WithLabelValues(class).Inc()
			w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)))
			g.fail(w, r, http.StatusTooManyRequests, "too_many_requests", i18n.M("error.too_many_requests"))
			return
		}
	}
	// The operator console and the backend API route their own requests.
	if g.console.Owns(rest) {
		g.console.ServeHTTP(w, r, rest, consoleGuard{g})
		return
	}
	if p, ok := strings.CutPrefix(rest, "/api/v1/"); ok {
		if g.api == nil {
			g.notFound(w, r)
			return
		}
		g.api.ServeHTTP(w, r, "/"+p)
		return
	}
	if clean := path.Clean(r.URL.Path); clean != r.URL.Path && clean+"/" != r.URL.Path {
		g.notFound(w, r)
		return
	}
	g.mux.ServeHTTP(w, r)
}

// routes declares the endpoints under the prefix: each answers its
// methods (GET answers HEAD too) and 405 with Allow to any other; any other
// path under the prefix is 404.
func (g *Gateway) routes() *http.ServeMux {
	const get, post = http.MethodGet, http.MethodPost
	mux := http.NewServeMux()
	handle := func(path string, h http.HandlerFunc, methods ...string) {
		for _, m := range methods {
			mux.HandleFunc(m+" "+g.prefix+path, h)
		}
		mux.HandleFunc(g.prefix+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", strings.Join(methods, ", "))
			g.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", i18n.M("error.method_not_allowed", "method", r.Method))
		})
	}
	handle("/sign-in", g.signInPage, get)
	handle("/sign-out", g.signOut, get, post)
	handle(SignedOutPath, g.signedOut, get)
	handle("/health", g.health, get)
	handle("/.well-known/jwks.json", g.jwks, get)
	handle("/me", g.me, get)
	handle("/account", g.accountPage, get)
	handle("/account/connect", g.accountConnect, post)
	handle("/account/reauthorize", g.accountReauthorize, post)
	handle("/account/disconnect", g.accountDisconnect, post)
	handle("/account/sessions/revoke-others", g.revokeOtherSessions, post)
	handle("/native/apple", g.nativeApple, post)
	handle("/native/id_token", g.nativeIDToken, post)
	handle("/native/nonce", g.nativeNonce, post)
	handle("/native/token", g.nativeToken, post)
	handle("/reauthorize", g.reauthorizePage, get)
	handle("/oauth/{provider}/start", g.start, get, post)
	handle("/oauth/{provider}/callback", g.callback, get, post)
	handle("/oauth/{provider}/backchannel-logout", g.backChannelLogout, post)
	mux.HandleFunc(g.prefix, g.notFound)
	mux.HandleFunc(g.prefix+"/", g.notFound)
	return mux
}

// limitClass is the abuse-limit class of an endpoint, or "" for none.
func limitClass(rest string) string {
	switch {
	case strings.HasPrefix(rest, "/oauth/") && strings.HasSuffix(rest, "/start"):
		return "start"
	case strings.HasPrefix(rest, "/oauth/") && strings.HasSuffix(rest, "/callback"):
		return "callback"
	case strings.HasPrefix(rest, "/oauth/") && strings.HasSuffix(rest, "/backchannel-logout"):
		return "logout"
	case strings.HasPrefix(rest, "/native/"):
		return "native"
	case strings.HasPrefix(rest, "/api/"):
		return "api"
	}
	return ""
}

func (g *Gateway) notFound(w http.ResponseWriter, r *http.Request) {
	g.fail(w, r, http.StatusNotFound, "not_found", i18n.M("error.not_found"))
}

// authenticate returns the request's live session, or session.ErrNoSession.
func (g *Gateway) authenticate(r *http.Request) (*store.Session, error) {
	s, _, err := g.sessions.Lookup(r)
	return s, err
}

// wantsHTML reports whether the request is a browser navigation.
func wantsHTML(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.Contains(r.Header.Get("Accept"), "text/html")
}

// origin is the scheme and host the browser used. X-Forwarded-* headers are
// not trusted: they could steer redirects and callback URLs.
func origin(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// crossSite reports whether a browser sent r from another site (whose
// requests carry no SameSite=Lax cookie unless they navigate with a GET):
// by Sec-Fetch-Site, or where a browser does not send it, by an Origin of
// another host.
func crossSite(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "cross-site"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	return err != nil || u.Host != r.Host
}

// isNoSession reports whether err only means "not signed in".
func isNoSession(err error) bool { return errors.Is(err, session.ErrNoSession) }
