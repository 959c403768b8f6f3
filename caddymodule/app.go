// Package caddymodule is the Caddy glue of socialgate: the app "socialgate"
// (global options) owns the store, providers, keys and the dev provider; the
// handler "http.handlers.socialgate" (the site directive socialgate) applies
// sign-in policy to the routes it matches. Everything else lives, Caddy-free,
// under internal/.
package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/console"
	"github.com/socialgate/socialgate/caddymodule/internal/gateway"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

func init() {
	caddy.RegisterModule(App{})
}

// DefaultSessionLifetime is how long a session lasts when session_lifetime is not set.
const DefaultSessionLifetime = 7 * 24 * time.Hour

// DefaultIDTokenSessionLifetime is how long a session started from a native
// app's bare ID token lasts when id_token_session_lifetime is not set.
const DefaultIDTokenSessionLifetime = 24 * time.Hour

// DefaultSessionIdleTimeout ends sessions unused for this long when
// session_idle_timeout is not set.
const DefaultSessionIdleTimeout = 24 * time.Hour

// App is the socialgate app: the state behind every socialgate handler of a
// config. Several sites share it.
type App struct {
	// Storage is the directory of the embedded Badger store, which also holds
	// the generated keys (keys.json, mode 0600). Default: socialgate in
	// Caddy's data directory.
	Storage string `json:"storage,omitempty"`

	// Postgres, when set, keeps users, accounts, sessions and flows in
	// PostgreSQL instead of the embedded store, so that several gateways
	// behind a load balancer share one user base. Not with Storage.
	Postgres *PostgresStorage `json:"postgres,omitempty"`

	// Prefix is the path under which the gateway serves its own endpoints
	// (sign-in, callbacks, sign-out, me). Default: /_auth.
	Prefix string `json:"prefix,omitempty"`

	// DevProvider, when set, runs the built-in development OpenID provider and
	// adds it as the provider "dev", with the other providers it plays.
	// Never use it in production: anyone can sign in as anyone.
	DevProvider *DevProvider `json:"dev_provider,omitempty"`

	// Providers are the sign-in and connect providers, shown in this order.
	Providers []ProviderConfig `json:"providers,omitempty"`

	// CookieKeys sign and encrypt the session cookie, newest first: the first
	// encodes, all decode, so adding a key in front rotates without signing
	// anyone out. Each is at least 32 characters; {env.*} and {file.*} are
	// expanded at load. Default: a secret generated once in Storage.
	CookieKeys []string `json:"cookie_keys,omitempty"`

	// SessionLifetime is how long a session lasts after sign-in. Default: 7 days.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// IDTokenSessionLifetime is how long a session lasts that a native app
	// started with a bare ID token (POST /_auth/native/id_token): such a
	// sign-in leaves the gateway no grant (no refresh token) through which
	// the provider could ever say the person is gone, so it ends sooner and
	// the app signs in again through the provider's SDK, usually silently.
	// Never longer than SessionLifetime. Default: 24h.
	IDTokenSessionLifetime caddy.Duration `json:"id_token_session_lifetime,omitempty"`

	// SessionCache is how long a session, a user or a user's linked
	// accounts read from the store is kept in memory, so most requests need
	// no store read. What this gateway changes leaves the cache at once, and
	// so does what another gateway on the same PostgreSQL database changes:
	// each gateway listens for the others' changes (LISTEN/NOTIFY). Only
	// while that listener is disconnected is a session ended elsewhere
	// noticed within this time. While the database is down, sessions seen
	// within it keep working. Default: 5s; 0 reads the store on every
	// request.
	SessionCache *caddy.Duration `json:"session_cache,omitempty"`

	// SessionIdleTimeout ends a session unused for this long, on every
	// gateway sharing the store, before its lifetime if need be. Activity is
	// recorded at most once a minute per session (and per twentieth of the
	// timeout), off the request path, so a session may end up to a tenth
	// early, never late. Default: 24h; 0 turns it off.
	SessionIdleTimeout *caddy.Duration `json:"session_idle_timeout,omitempty"`

	// ReauthenticateAfter is how recent a session's sign-in must be for
	// connecting or disconnecting an account and signing out other
	// sessions: past it, the person goes through their provider again first
	// (OpenID providers are asked for a fresh sign-in). Default: 10m.
	ReauthenticateAfter caddy.Duration `json:"reauthenticate_after,omitempty"`

	// FlowTimeout is how long a started sign-in may take to come back from
	// the provider. Default: 10m.
	FlowTimeout caddy.Duration `json:"flow_timeout,omitempty"`

	// TokenRefreshSkew is how long before it expires a provider access token
	// is refreshed on read, at most half of the token's lifetime (its
	// expires_in), so that short-lived tokens are not refreshed on every
	// request. Default: 2m.
	TokenRefreshSkew caddy.Duration `json:"token_refresh_skew,omitempty"`

	// APIKeys are the keys the backend API (/_auth/api/v1/…) accepts as
	// Authorization: Bearer <key>; several allow rotation. Each is at least
	// 32 characters; {env.*} and {file.*} are expanded at load. Default:
	// none, and the API refuses every request.
	APIKeys []string `json:"api_keys,omitempty"`

	// IdentityIssuer is the iss claim of the identity token upstreams receive
	// in X-Auth-Jwt. Default: socialgate.
	IdentityIssuer string `json:"identity_issuer,omitempty"`

	// IdentityAudience is the aud claim of the identity token. Default: none.
	IdentityAudience []string `json:"identity_audience,omitempty"`

	// IdentityKeyDelay is how long a new identity-token key (after
	// identity-key-rotate, or a new PostgreSQL secret) is published in the
	// JWKS before it signs, so that verifiers caching the JWKS have it
	// before they meet it; the previous key signs meanwhile. The JWKS's
	// Cache-Control max-age is 5m, or half this when that is shorter.
	// Default: 10m.
	IdentityKeyDelay *caddy.Duration `json:"identity_key_delay,omitempty"`

	// RedirectURLs are the URLs native apps may be sent back to after sign-in
	// (myapp://oauth-callback, https://app.example.com/after-sign-in), each
	// once. They are recorded in the store at load, beside those added
	// through the backend API. Matching is exact on scheme, host and path;
	// loopback URLs may vary only the port (RFC 8252). Default: none.
	RedirectURLs []string `json:"redirect_urls,omitempty"`

	// ReturnURLs are absolute URLs that a browser may be sent back to after
	// sign-in, besides paths on the same site (matched exactly on scheme, host
	// and path). Default: none.
	ReturnURLs []string `json:"return_urls,omitempty"`

	// ReturnHosts are hosts any URL of which a browser may be sent back to
	// after sign-in or sign-out: app.example.com, or *.example.com for
	// every subdomain; https unless written http://host:port. Default: none.
	ReturnHosts []string `json:"return_hosts,omitempty"`

	// CookieDomain shares the session cookie with every host under this
	// domain (example.com), for single sign-on across subdomains: every
	// host under it is then trusted with sessions (docs/forward-auth.md).
	// Default: none, a __Host- cookie for the gateway's host alone.
	CookieDomain string `json:"cookie_domain,omitempty"`

	// ForwardAuth turns on <prefix>/verify for external proxies. Default:
	// off (404).
	ForwardAuth *ForwardAuth `json:"forward_auth,omitempty"`

	// AllowEmails admits only users with a verified email address among
	// these: ada@example.com, or a whole domain, *@example.com (any case).
	// A first sign-in by anyone else creates no user; a signed-in user the
	// rules no longer admit (after a reload) gets 403 on every route. Only
	// addresses the provider verified count. Default: everyone.
	AllowEmails []string `json:"allow_emails,omitempty"`

	// AllowGroups admits only users with a linked account in one of these
	// groups, each provider:group (corp:admins): the group as that provider
	// asserted it at the account's last sign-in (its fields groups mapping,
	// or github's groups_from). With AllowEmails, matching either admits;
	// refusals work alike.
	// Default: everyone.
	AllowGroups []string `json:"allow_groups,omitempty"`

	// Admins are the operators who may use the console at
	// <prefix>/admin: each rule an address or a whole domain
	// (ada@example.com, *@example.com), matched against the user's verified
	// addresses, or a provider:group (corp:admins), matched as AllowGroups
	// matches. Anyone else signed in gets 403 there. Default: none, and no
	// console.
	Admins []string `json:"admins,omitempty"`

	// RateLimits are per-client limits on the gateway's endpoints, by class:
	// start (beginning a sign-in), callback, native (native app endpoints)
	// and api (backend API). A client over the limit gets 429 with
	// Retry-After. Defaults: start and callback 30 per minute, native 20 per
	// minute, api 600 per minute; events 0 turns a class off. The client is
	// Caddy's client IP (see the trusted_proxies server option), an IPv6
	// client its network (see RateLimitIPv6Prefix). The limiter holds at
	// most 200,000 clients and makes room by forgetting the least recently
	// seen.
	RateLimits map[string]RateLimit `json:"rate_limits,omitempty"`

	// RateLimitIPv6Prefix is how many leading bits of an IPv6 client
	// address the rate limits count as one client: a host is usually handed
	// a whole /64 and can pick any address in it. IPv4 addresses (also
	// IPv4-mapped ones) count one by one. Between 32 and 128. Default: 64.
	RateLimitIPv6Prefix int `json:"rate_limit_ipv6_prefix,omitempty"`

	// UI brands the gateway's pages.
	UI *UIConfig `json:"ui,omitempty"`

	// Webhooks are endpoints that receive the gateway's events (users,
	// sessions, external accounts), signed, in order, at least once.
	// Each endpoint is delivered to on its own, so a slow one holds back no
	// other. Gateways that share a PostgreSQL database take turns at each
	// endpoint; give them the same webhooks. Default: none.
	Webhooks []WebhookConfig `json:"webhooks,omitempty"`

	gateway     *gateway.Gateway
	storeRef    *storeRef
	hooks       *dispatcherRef
	endpoints   []webhook.Endpoint
	unconfigure func() // withdraws endpoints from hooks
	dev         *devRef
	logger      *zap.Logger
	ctx         caddy.Context // finds the HTTP servers for the ready line

	stopActivity func() // stops recording session activity
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "socialgate",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision opens (or reuses) the store and builds the gateway. It makes no
// network call: OIDC discovery happens on first use.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	if err := metrics.Register(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	repl := caddy.NewReplacer()
	if a.Prefix == "" {
		a.Prefix = gateway.DefaultPrefix
	}
	if err := gateway.CheckPrefix(a.Prefix); err != nil {
		return err
	}
	if a.SessionLifetime == 0 {
		a.SessionLifetime = caddy.Duration(DefaultSessionLifetime)
	}
	switch {
	case a.IDTokenSessionLifetime < 0:
		return fmt.Errorf("id_token_session_lifetime: %v is not a positive duration", time.Duration(a.IDTokenSessionLifetime))
	case a.IDTokenSessionLifetime == 0:
		a.IDTokenSessionLifetime = caddy.Duration(DefaultIDTokenSessionLifetime)
	}
	if err := a.check(repl); err != nil {
		return err
	}
	ref, err := a.acquireStore(repl)
	if err != nil {
		return err
	}
	a.storeRef = ref
	if a.endpoints, err = a.webhookEndpoints(repl); err != nil {
		return err
	}
	if a.hooks, err = acquireDispatcher(ref, a.logger.Named("webhooks")); err != nil {
		return err
	}

	secrets, err := cookieSecrets(repl, a.CookieKeys, ref.Keys.CookieSecrets())
	if err != nil {
		return err
	}
	providers, err := a.buildProviders(repl, ref.Keys.CookieSecret)
	if err != nil {
		return err
	}
	returnTo, err := redirect.NewReturnTo(a.ReturnURLs)
	if err != nil {
		return fmt.Errorf("return_urls: %w", err)
	}
	if err := returnTo.AllowHosts(a.ReturnHosts); err != nil {
		return fmt.Errorf("return_hosts: %w", err)
	}
	names := make([]string, 0, len(providers))
	for _, p := range providers {
		names = append(names, p.Name())
	}
	admit, err := access.Parse(a.AllowEmails, a.AllowGroups, names)
	if err != nil {
		return err
	}
	admins, err := access.ParseMixed("admins", a.Admins, names)
	if err != nil {
		return err
	}
	renderer, err := a.UI.renderer(a.logger)
	if err != nil {
		return err
	}
	// This config reads sessions, users and linked accounts through the
	// store's cache, for session_cache: what this gateway changes, or hears
	// that another changed, leaves it at once.
	cacheTTL := 5 * time.Second
	if a.SessionCache != nil {
		cacheTTL = time.Duration(*a.SessionCache)
	}
	st := ref.cache.Store(cacheTTL)
	if err := seedRedirectURLs(st, a.RedirectURLs); err != nil {
		return err
	}
	limits, err := a.limiter()
	if err != nil {
		return err
	}
	identity, err := a.identitySigner(ref)
	if err != nil {
		return err
	}
	apiKeys, err := a.apiKeys(repl)
	if err != nil {
		return err
	}
	byName := map[string]*provider.Provider{}
	for _, p := range providers {
		byName[p.Name()] = p
	}
	engine := tokens.New(tokens.Options{
		Store: st,
		Providers: func(name string) (tokens.Refresher, bool) {
			p, ok := byName[name]
			return p, ok
		},
		Skew:   time.Duration(a.TokenRefreshSkew),
		Logger: a.logger,
	})
	operations := ops.New(ops.Options{Store: st, Tokens: engine, Providers: opsProviders(providers), Webhooks: a.hooks.Dispatcher,
		Audit: audit.New(a.logger.Named("audit")), Logger: a.logger.Named("api")})
	idle := DefaultSessionIdleTimeout
	if a.SessionIdleTimeout != nil {
		idle = time.Duration(*a.SessionIdleTimeout)
	}
	a.gateway, err = gateway.New(gateway.Config{
		Prefix:        a.Prefix,
		Store:         st,
		Providers:     providers,
		CookieSecrets: secrets,
		Identity:      identity,
		Tokens:        engine,
		API:           api.New(api.Options{Ops: operations, Keys: apiKeys, ClientIP: clientIP, JWKS: identity.JWKS, Logger: a.logger.Named("api")}),
		Console: console.New(console.Config{Prefix: a.Prefix, Ops: operations, UI: renderer,
			Admins: admins, Logger: a.logger.Named("console")}),
		UI:                     renderer,
		Limits:                 limits,
		ClientIP:               clientIP,
		Admit:                  admit,
		ReturnTo:               returnTo,
		SessionLifetime:        time.Duration(a.SessionLifetime),
		IDTokenSessionLifetime: time.Duration(a.IDTokenSessionLifetime),
		SessionIdleTimeout:     idle,
		FlowTimeout:            time.Duration(a.FlowTimeout),
		ReauthenticateAfter:    time.Duration(a.ReauthenticateAfter),
		CookieDomain:           a.CookieDomain,
		ForwardAuth:            a.ForwardAuth.gatewayConfig(),
		Logger:                 a.logger,
	})
	return err
}

// Start publishes the identity keys, puts this config's webhooks in force,
// starts recording session activity, runs the dev provider when it is
// configured, and logs where to sign in (see announceReady).
func (a *App) Start() error {
	if err := a.publishKeys(); err != nil {
		return err
	}
	a.unconfigure = a.hooks.Configure(a.endpoints)
	a.stopActivity = a.gateway.Run()
	if a.DevProvider != nil {
		dev, err := startDevHost(a.DevProvider, a.storeRef.Keys.CookieSecret, a.logger)
		if err != nil {
			return err
		}
		a.dev = dev
	}
	a.announceReady()
	return nil
}

// Stop withdraws this config's webhooks (a newer config's stay in force) and
// releases the dev provider (it keeps running while a newer config uses it).
func (a *App) Stop() error {
	if a.unconfigure != nil {
		a.unconfigure()
		a.unconfigure = nil
	}
	if a.stopActivity != nil {
		a.stopActivity() // writes what is left
		a.stopActivity = nil
	}
	if a.dev != nil {
		a.dev.release()
		a.dev = nil
	}
	return nil
}

// Cleanup releases the webhook dispatcher, then the store it reads, exactly
// once per successful acquisition.
func (a *App) Cleanup() error {
	if a.hooks != nil {
		a.hooks.release()
		a.hooks = nil
	}
	if a.storeRef != nil {
		a.storeRef.release()
		a.storeRef = nil
	}
	return nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
