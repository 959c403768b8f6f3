package config

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/console"
	"github.com/socialgate/socialgate/caddymodule/internal/gateway"
	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

// Runtime is what the server hands over to build a gateway from the
// options: what lives across config reloads (the store, its keys, the
// webhook dispatcher) and what only the server knows (placeholders, the
// client's address, its trusted proxies).
type Runtime struct {
	// Expand expands placeholders.
	Expand Expand
	// Store is the store seen through its cache, which keeps what it read
	// for ttl.
	Store func(ttl time.Duration) store.Store
	// Keys are the store's generated keys (or those derived from the
	// PostgreSQL secrets).
	Keys *keyring.Keyring
	// Identity holds the identity-token keys of every config on the store.
	Identity *ops.Keys
	// Webhooks delivers the store's events.
	Webhooks *webhook.Dispatcher
	// ClientIP is the client that the rate limits count and the audit log
	// names.
	ClientIP func(*http.Request) string
	// Trusted reports whether a request comes from one of the server's
	// trusted_proxies.
	Trusted func(*http.Request) bool
	// Logger is the app's logger.
	Logger *zap.Logger
}

// Gateway builds the gateway's configuration from the options, which
// Prepare set up and checked.
func (o *Options) Gateway(rt Runtime) (gateway.Config, error) {
	var none gateway.Config
	secrets, err := cookieSecrets(rt.Expand, o.CookieKeys, rt.Keys.CookieSecrets())
	if err != nil {
		return none, err
	}
	providers, err := o.buildProviders(rt.Expand, rt.Keys.CookieSecret)
	if err != nil {
		return none, err
	}
	returnTo, err := redirect.NewReturnTo(o.ReturnURLs)
	if err != nil {
		return none, fmt.Errorf("return_urls: %w", err)
	}
	if err := returnTo.AllowHosts(o.ReturnHosts); err != nil {
		return none, fmt.Errorf("return_hosts: %w", err)
	}
	names := make([]string, 0, len(providers))
	for _, p := range providers {
		names = append(names, p.Name())
	}
	admit, err := access.Parse(o.AllowEmails, o.AllowGroups, names)
	if err != nil {
		return none, err
	}
	admins, err := access.ParseMixed("admins", o.Admins, names)
	if err != nil {
		return none, err
	}
	renderer, err := o.UI.renderer(rt.Logger)
	if err != nil {
		return none, err
	}
	// This config reads sessions, users and linked accounts through the
	// store's cache, for session_cache: what this gateway changes, or hears
	// that another changed, leaves it at once.
	cacheTTL := 5 * time.Second
	if o.SessionCache != nil {
		cacheTTL = time.Duration(*o.SessionCache)
	}
	st := rt.Store(cacheTTL)
	if err := seedRedirectURLs(st, o.RedirectURLs); err != nil {
		return none, err
	}
	limits, err := o.limiter()
	if err != nil {
		return none, err
	}
	identity, err := o.identitySigner(rt.Identity)
	if err != nil {
		return none, err
	}
	apiKeys, err := o.apiKeys(rt.Expand)
	if err != nil {
		return none, err
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
		Skew:   time.Duration(o.TokenRefreshSkew),
		Logger: rt.Logger,
	})
	operations := ops.New(ops.Options{Store: st, Tokens: engine, Providers: opsProviders(providers), Webhooks: rt.Webhooks,
		Audit: audit.New(rt.Logger.Named("audit")), Logger: rt.Logger.Named("api")})
	idle := DefaultSessionIdleTimeout
	if o.SessionIdleTimeout != nil {
		idle = time.Duration(*o.SessionIdleTimeout)
	}
	return gateway.Config{
		Prefix:        o.Prefix,
		Store:         st,
		Providers:     providers,
		CookieSecrets: secrets,
		Identity:      identity,
		Tokens:        engine,
		API:           api.New(api.Options{Ops: operations, Keys: apiKeys, ClientIP: rt.ClientIP, JWKS: identity.JWKS, Logger: rt.Logger.Named("api")}),
		Console: console.New(console.Config{Prefix: o.Prefix, Ops: operations, UI: renderer,
			Admins: admins, Logger: rt.Logger.Named("console")}),
		UI:                     renderer,
		Limits:                 limits,
		ClientIP:               rt.ClientIP,
		Admit:                  admit,
		ReturnTo:               returnTo,
		SessionLifetime:        time.Duration(o.SessionLifetime),
		IDTokenSessionLifetime: time.Duration(o.IDTokenSessionLifetime),
		SessionIdleTimeout:     idle,
		FlowTimeout:            time.Duration(o.FlowTimeout),
		ReauthenticateAfter:    time.Duration(o.ReauthenticateAfter),
		CookieDomain:           o.CookieDomain,
		ForwardAuth:            o.ForwardAuth.gatewayConfig(rt.Trusted),
		Logger:                 rt.Logger,
	}, nil
}

// identitySigner signs this config's identity tokens with the store's keys,
// read again (identity-key-rotate may have changed keys.json).
func (o *Options) identitySigner(keys *ops.Keys) (*assertion.Signer, error) {
	if err := keys.Load(context.Background()); err != nil {
		return nil, err
	}
	issuer := o.IdentityIssuer
	if issuer == "" {
		issuer = "socialgate"
	}
	return assertion.New(assertion.Options{Keys: keys.Set(), Issuer: issuer, Audience: o.IdentityAudience})
}

// KeyDelay is identity_key_delay with its default.
func (o *Options) KeyDelay() time.Duration {
	if o.IdentityKeyDelay == nil {
		return assertion.DefaultKeyDelay
	}
	return time.Duration(*o.IdentityKeyDelay)
}
