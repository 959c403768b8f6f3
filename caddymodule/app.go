// Package caddymodule is the Caddy glue of socialgate: the app "socialgate"
// (global options) owns the store, providers, keys and the dev provider; the
// handler "http.handlers.socialgate" (the site directive socialgate) applies
// sign-in policy to the routes it matches. Their options, documented, are in
// internal/config; everything else lives, Caddy-free, under internal/.
package caddymodule

import (
	"context"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/config"
	"github.com/socialgate/socialgate/caddymodule/internal/gateway"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the socialgate app: the state behind every socialgate handler of a
// config. Several sites share it. Its options, and what each means, are
// config.Options.
type App struct {
	config.Options

	gateway     *gateway.Gateway
	storeRef    *storeRef
	hooks       *dispatcherRef
	endpoints   []webhook.Endpoint
	unconfigure func() // withdraws endpoints from hooks
	dev         *devRef
	logger      *zap.Logger
	ctx         caddy.Context // finds the HTTP servers for the ready line

	stopActivity func()        // stops recording session activity
	verify       *verifyServer // forward_auth's own listener, when configured
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
	expand := func(raw string) string { return repl.ReplaceKnown(raw, "") }
	if err := a.Prepare(expand, a.logger); err != nil {
		return err
	}
	ref, err := a.acquireStore(expand)
	if err != nil {
		return err
	}
	a.storeRef = ref
	if a.endpoints, err = a.WebhookEndpoints(expand); err != nil {
		return err
	}
	if a.hooks, err = acquireDispatcher(ref, a.logger.Named("webhooks")); err != nil {
		return err
	}
	cfg, err := a.Gateway(config.Runtime{Expand: expand, Store: ref.cache.Store, Keys: ref.Keys, Identity: ref.identity,
		Webhooks: a.hooks.Dispatcher, ClientIP: clientIP, Trusted: fromTrustedProxy, Logger: a.logger})
	if err != nil {
		return err
	}
	a.gateway, err = gateway.New(cfg)
	return err
}

// Start publishes the identity keys, puts this config's webhooks in force,
// starts recording session activity, runs the dev provider when it is
// configured, and logs where to sign in (see announceReady).
func (a *App) Start() error {
	// This config's key delay applies to the store's keys, and the keys it
	// serves count as published from now (and, on PostgreSQL, its first
	// secret as in use).
	a.storeRef.identity.Set().SetDelay(a.KeyDelay())
	if err := a.storeRef.identity.Publish(context.Background()); err != nil {
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
	if err := a.startVerifyListener(); err != nil {
		a.Stop()
		return err
	}
	a.announceReady()
	return nil
}

// Stop withdraws this config's webhooks (a newer config's stay in force),
// releases the dev provider (it keeps running while a newer config uses it)
// and shuts the verify listener down (a newer config's, on the same port,
// keeps serving).
func (a *App) Stop() error {
	if a.verify != nil {
		a.verify.stop()
		a.verify = nil
	}
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
