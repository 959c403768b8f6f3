// Package gateway is socialgate without Caddy: it serves the gateway's own
// endpoints under a prefix (/_auth by default), decides whether a request is
// signed in, and answers requests that are not. The Caddy handler calls it.
package gateway

import (
	"errors"
	"net"
	"net/http"
	"net/url"
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
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// DefaultPrefix is where the gateway's endpoints live.
const DefaultPrefix = "/_auth"

// maxBody caps request bodies on the gateway's own endpoints.
const maxBody = 64 << 10

// Config wires a Gateway.
type Config struct {
	// Prefix of the gateway's endpoints; default DefaultPrefix.
	Prefix    string
	Providers []*provider.Provider
	Store     store.Store
	Sessions  *session.Manager
	Flow      *flow.Flow
	UI        *ui.Renderer
	Tokens    *tokens.Engine
	// API serves /api/v1/… (backend API).
	API *api.API
	// Identity signs the identity token of signed-in requests.
	Identity *assertion.Signer
	// Limits are the per-client abuse limits of the gateway's endpoints, by
	// class: start, callback, native, logout, api.
	Limits *ratelimit.Limiter
	// ClientIP names the client for the limits; default: the peer address.
	ClientIP func(r *http.Request) string
	// IDTokenSessionLifetime bounds the sessions that a bare ID token from a
	// native SDK starts (POST /native/id_token): it leaves the gateway no
	// grant to check the person with later. Zero: the session lifetime.
	IDTokenSessionLifetime time.Duration
	// Admit is the app's allow_emails and allow_groups: signed-in users need
	// an account that matches on every route (see Admitted). Nil admits
	// everyone.
	Admit *access.Rules
	// Console serves the operator console (/admin); nil serves none.
	Console *console.Console
	Logger  *zap.Logger
}

// Gateway serves the endpoints and makes the sign-in decisions. Safe for
// concurrent use.
type Gateway struct {
	Config
	byName map[string]*provider.Provider
	// redirects is the native redirect allowlist, compiled once per change.
	redirects redirectAllowlist
}

// New returns a Gateway.
func New(cfg Config) *Gateway {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = func(r *http.Request) string {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			return host
		}
	}
	g := &Gateway{Config: cfg, byName: map[string]*provider.Provider{}}
	for _, p := range cfg.Providers {
		g.byName[p.Name()] = p
	}
	return g
}

// Owns reports whether path is one of the gateway's own endpoints.
func (g *Gateway) Owns(path string) bool {
	return path == g.Prefix || strings.HasPrefix(path, g.Prefix+"/")
}

// ServeHTTP serves an endpoint under the prefix. path is the request's
// original path (before any handle_path stripping).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request, path string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	rest := strings.TrimPrefix(path, g.Prefix)
	if class := limitClass(rest); class != "" && g.Limits != nil {
		if ok, wait := g.Limits.Allow(class, g.ClientIP(r)); !ok {
			metrics.RateLimited.WithLabelValues(class).Inc()
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.5)))
			g.fail(w, r, http.StatusTooManyRequests, "too_many_requests", i18n.M("error.too_many_requests"))
			return
		}
	}
	switch {
	case rest == "/sign-in":
		g.allow(w, r, g.signInPage, http.MethodGet)
	case rest == "/sign-out":
		g.allow(w, r, g.signOut, http.MethodGet, http.MethodPost)
	case rest == SignedOutPath:
		g.allow(w, r, g.signedOut, http.MethodGet)
	case rest == "/health":
		g.allow(w, r, g.health, http.MethodGet)
	case rest == "/.well-known/jwks.json":
		g.allow(w, r, g.jwks, http.MethodGet)
	case g.Console.Owns(rest):
		g.Console.ServeHTTP(w, r, rest, consoleGuard{g})
	case strings.HasPrefix(rest, "/api/v1/"):
		g.API.ServeHTTP(w, r, strings.TrimPrefix(rest, "/api/v1"))
	case rest == "/me":
		g.allow(w, r, g.me, http.MethodGet)
	case rest == "/account":
		g.allow(w, r, g.accountPage, http.MethodGet)
	case rest == "/account/connect":
		g.allow(w, r, g.accountConnect, http.MethodPost)
	case rest == "/account/reauthorize":
		g.allow(w, r, g.accountReauthorize, http.MethodPost)
	case rest == "/account/disconnect":
		g.allow(w, r, g.accountDisconnect, http.MethodPost)
	case rest == "/account/sessions/revoke-others":
		g.allow(w, r, g.revokeOtherSessions, http.MethodPost)
	case rest == "/native/apple":
		g.allow(w, r, g.nativeApple, http.MethodPost)
	case rest == "/native/id_token":
		g.allow(w, r, g.nativeIDToken, http.MethodPost)
	case rest == "/native/nonce":
		g.allow(w, r, g.nativeNonce, http.MethodPost)
	case rest == "/native/token":
		g.allow(w, r, g.nativeToken, http.MethodPost)
	case rest == "/reauthorize":
		g.allow(w, r, g.reauthorizePage, http.MethodGet)
	case strings.HasPrefix(rest, "/oauth/"):
		name, action, _ := strings.Cut(strings.TrimPrefix(rest, "/oauth/"), "/")
		switch action {
		case "start":
			g.allow(w, r, func(w http.ResponseWriter, r *http.Request) { g.start(w, r, name) }, http.MethodGet, http.MethodPost)
		case "callback":
			g.allow(w, r, func(w http.ResponseWriter, r *http.Request) { g.callback(w, r, name) }, http.MethodGet, http.MethodPost)
		case "backchannel-logout":
			g.allow(w, r, func(w http.ResponseWriter, r *http.Request) { g.backChannelLogout(w, r, name) }, http.MethodPost)
		default:
			g.notFound(w, r)
		}
	default:
		g.notFound(w, r)
	}
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

// allow calls h when the method is one of methods, else answers 405.
func (g *Gateway) allow(w http.ResponseWriter, r *http.Request, h http.HandlerFunc, methods ...string) {
	for _, m := range methods {
		if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
			h(w, r)
			return
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	g.fail(w, r, http.StatusMethodNotAllowed, "method_not_allowed", i18n.M("error.method_not_allowed", "method", r.Method))
}

func (g *Gateway) notFound(w http.ResponseWriter, r *http.Request) {
	g.fail(w, r, http.StatusNotFound, "not_found", i18n.M("error.not_found"))
}

// Authenticate returns the request's live session, or session.ErrNoSession.
func (g *Gateway) Authenticate(r *http.Request) (*store.Session, error) {
	s, _, err := g.Sessions.Lookup(r)
	return s, err
}

// Challenge answers a request that needs a session and has none: a browser
// navigating (GET or HEAD asking for HTML) is sent to the sign-in page and
// brought back afterwards; anything else gets 401 JSON with sign_in_url.
func (g *Gateway) Challenge(w http.ResponseWriter, r *http.Request, originalURI string) {
	signIn := g.Prefix + "/sign-in?return_to=" + url.QueryEscape(originalURI)
	if wantsHTML(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, signIn, http.StatusFound)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="socialgate"`)
	writeJSON(w, http.StatusUnauthorized, errorBody("unauthenticated", "Sign in to access this resource.", map[string]any{"sign_in_url": signIn}))
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
