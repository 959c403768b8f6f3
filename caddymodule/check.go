package caddymodule

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/gateway"
	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
)

// errNoProvider is the config without any provider: nobody could sign in.
var errNoProvider = errors.New("no provider is configured: add dev_provider or a provider block to the socialgate global option")

// check validates everything in the config that needs no store, before
// Provision opens one: a mistake is reported as itself, also by `caddy
// validate` beside a running gateway that holds the store's lock, and a
// config that fails writes nothing. Provision builds the same pieces again
// once the store is open.
func (a *App) check(repl *caddy.Replacer) error {
	a.warnWrittenSecrets()
	if err := a.checkDurations(); err != nil {
		return err
	}
	if a.Postgres != nil {
		if a.Storage != "" {
			return errors.New("storage: both a directory and postgres are configured: keep one")
		}
		if err := a.Postgres.check(); err != nil {
			return err
		}
	}
	providers, err := a.buildProviders(repl, nil)
	if err != nil {
		return err
	}
	if len(providers) == 0 {
		return errNoProvider
	}
	if _, err := access.Parse(a.AllowEmails, a.AllowGroups, a.providerNames()); err != nil {
		return err
	}
	if _, err := access.ParseMixed("admins", a.Admins, a.providerNames()); err != nil {
		return err
	}
	if _, err := a.webhookEndpoints(repl); err != nil {
		return err
	}
	if err := checkRedirectURLs(a.RedirectURLs); err != nil {
		return err
	}
	if _, err := redirect.NewReturnTo(a.ReturnURLs); err != nil {
		return fmt.Errorf("return_urls: %w", err)
	}
	if _, err := a.limiter(); err != nil {
		return err
	}
	if _, err := cookieSecrets(repl, a.CookieKeys, nil); err != nil {
		return err
	}
	_, err = a.apiKeys(repl)
	return err
}

// warnWrittenSecrets warns of each secret written out in the config rather
// than named with {env.*} or {file.*}: Caddy's admin API (GET /config/)
// and every copy of the config show it. The warning names the option,
// never the value.
func (a *App) warnWrittenSecrets() {
	var written []string
	add := func(option, value string) {
		if value != "" && !hasPlaceholder(value) {
			written = append(written, option)
		}
	}
	for _, pc := range a.Providers {
		add("provider "+pc.Name+": client_secret", pc.ClientSecret)
		add("provider "+pc.Name+": private_key", pc.PrivateKey)
	}
	for i, k := range a.CookieKeys {
		add(fmt.Sprintf("cookie_keys: key %d", i+1), k)
	}
	for i, k := range a.APIKeys {
		add(fmt.Sprintf("api_key: key %d", i+1), k)
	}
	if a.Postgres != nil {
		for i, s := range append([]string{a.Postgres.Secret}, a.Postgres.PreviousSecrets...) {
			add(fmt.Sprintf("storage postgres: secret %d", i+1), s)
		}
	}
	for _, wc := range a.Webhooks {
		for i, s := range wc.Secrets {
			add(fmt.Sprintf("webhook %s: secret %d", wc.Name, i+1), s)
		}
	}
	for _, option := range written {
		a.logger.Warn("a secret is written out in the config, where the admin API and every copy of the config show it: "+
			"name it with {env.NAME} or {file.PATH}", zap.String("option", option))
	}
}

// checkDurations refuses a negative duration, which only a JSON config can
// hold (the Caddyfile takes positive ones).
func (a *App) checkDurations() error {
	type duration struct {
		option string
		value  caddy.Duration
	}
	durations := []duration{{"session_lifetime", a.SessionLifetime}, {"reauthenticate_after", a.ReauthenticateAfter},
		{"flow_timeout", a.FlowTimeout}, {"token_refresh_skew", a.TokenRefreshSkew}}
	optional := func(option string, value *caddy.Duration) {
		if value != nil {
			durations = append(durations, duration{option, *value})
		}
	}
	optional("session_cache", a.SessionCache)
	optional("session_idle_timeout", a.SessionIdleTimeout)
	optional("identity_key_delay", a.IdentityKeyDelay)
	if a.Postgres != nil {
		optional("storage postgres: connect_timeout", &a.Postgres.ConnectTimeout)
	}
	if a.DevProvider != nil {
		optional("dev_provider: access_token_lifetime", &a.DevProvider.AccessTokenLifetime)
	}
	for _, d := range durations {
		if d.value < 0 {
			return fmt.Errorf("%s: %v is negative", d.option, time.Duration(d.value))
		}
	}
	return nil
}

// check refuses a PostgreSQL store without what it needs; a secret written
// out (not {env.*} or {file.*}) must be long enough already.
func (pg *PostgresStorage) check() error {
	switch {
	case pg.DSN == "":
		return errors.New("storage postgres: dsn is required, like dsn {env.DATABASE_URL}")
	case pg.Secret == "":
		return errors.New("storage postgres: secret is required: the same random secret of 32 or more characters on every gateway of the database, like secret {env.SOCIALGATE_SECRET}")
	}
	return checkWrittenSecrets("storage postgres: secret", append([]string{pg.Secret}, pg.PreviousSecrets...))
}

// providerNames lists the names of the configured providers, the dev
// provider's first.
func (a *App) providerNames() []string {
	var names []string
	if a.DevProvider != nil {
		for _, id := range a.DevProvider.identities() {
			names = append(names, id.Name)
		}
	}
	for _, pc := range a.Providers {
		names = append(names, pc.Name)
	}
	return names
}

// duplicateName returns the index of the first name that repeats an
// earlier one, and the error that says so; -1 and nil when each is unique.
func duplicateName(names []string) (int, error) {
	for i, n := range names {
		if slices.Contains(names[:i], n) {
			return i, fmt.Errorf("provider %s: the name is used twice; give each provider its own name (provider <type> <name>)", n)
		}
	}
	return -1, nil
}

// check validates the handler against the names of the configured
// providers (gateway.CheckRoute).
func (h *Handler) check(providers []string) error {
	return gateway.CheckRoute(h.route(), providers)
}
