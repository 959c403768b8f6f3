package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/gateway"
	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// ErrNoProvider is the config without any provider: nobody could sign in.
var ErrNoProvider = errors.New("no provider is configured: add dev_provider or a provider block to the socialgate global option")

// Prepare sets the defaults that later steps read (Prefix,
// SessionLifetime, IDTokenSessionLifetime) and validates everything in the
// config that needs no store, before the store is opened: a mistake is
// reported as itself, also by `caddy validate` beside a running gateway
// that holds the store's lock, and a config that fails writes nothing.
// Gateway builds the same pieces again once the store is open. Each secret
// written out in the config is warned of on logger.
func (o *Options) Prepare(expand Expand, logger *zap.Logger) error {
	if o.Prefix == "" {
		o.Prefix = gateway.DefaultPrefix
	}
	if err := gateway.CheckPrefix(o.Prefix); err != nil {
		return err
	}
	if o.SessionLifetime == 0 {
		o.SessionLifetime = caddy.Duration(DefaultSessionLifetime)
	}
	switch {
	case o.IDTokenSessionLifetime < 0:
		return fmt.Errorf("id_token_session_lifetime: %v is not a positive duration", time.Duration(o.IDTokenSessionLifetime))
	case o.IDTokenSessionLifetime == 0:
		o.IDTokenSessionLifetime = caddy.Duration(DefaultIDTokenSessionLifetime)
	}
	o.warnWrittenSecrets(logger)
	if err := o.checkDurations(); err != nil {
		return err
	}
	if o.Postgres != nil {
		if o.Storage != "" {
			return errors.New("storage: both a directory and postgres are configured: keep one")
		}
		if err := o.Postgres.check(); err != nil {
			return err
		}
	}
	providers, err := o.buildProviders(expand, nil)
	if err != nil {
		return err
	}
	if len(providers) == 0 {
		return ErrNoProvider
	}
	if _, err := access.Parse(o.AllowEmails, o.AllowGroups, o.ProviderNames()); err != nil {
		return err
	}
	if _, err := access.ParseMixed("admins", o.Admins, o.ProviderNames()); err != nil {
		return err
	}
	if _, err := o.WebhookEndpoints(expand); err != nil {
		return err
	}
	if err := checkRedirectURLs(o.RedirectURLs); err != nil {
		return err
	}
	if _, err := redirect.NewReturnTo(o.ReturnURLs); err != nil {
		return fmt.Errorf("return_urls: %w", err)
	}
	if _, err := o.limiter(); err != nil {
		return err
	}
	if fa := o.ForwardAuth; fa != nil && fa.Listen != nil {
		if _, _, err := fa.Listen.Parse(); err != nil {
			return err
		}
	}
	if _, err := cookieSecrets(expand, o.CookieKeys, nil); err != nil {
		return err
	}
	_, err = o.apiKeys(expand)
	return err
}

// CheckOption checks the option of that name, as written in a Caddyfile
// (prefix, cookie_keys, webhook, …), once it is parsed into o: what can be
// checked before the server expands placeholders and before the whole
// block is read. The options it does not know pass.
func (o *Options) CheckOption(option string) error {
	var err error
	switch option {
	case "prefix":
		err = gateway.CheckPrefix(o.Prefix)
	case "cookie_keys":
		err = checkWrittenSecrets("cookie_keys: key", o.CookieKeys)
	case "api_key":
		err = checkWrittenSecrets("api_key: key", o.APIKeys)
	case "return_urls":
		if _, err = redirect.NewReturnTo(o.ReturnURLs); err != nil {
			err = fmt.Errorf("return_urls: %w", err)
		}
	case "redirect_urls":
		err = checkRedirectURLs(o.RedirectURLs)
	case "return_hosts":
		var v *redirect.ReturnTo
		if v, err = redirect.NewReturnTo(nil); err == nil {
			if err = v.AllowHosts(o.ReturnHosts); err != nil {
				err = fmt.Errorf("return_hosts: %w", err)
			}
		}
	case "cookie_domain":
		if err = session.CheckDomain(o.CookieDomain); err != nil {
			err = fmt.Errorf("cookie_domain %q: %w", o.CookieDomain, err)
		}
	case "allow_emails":
		_, err = access.Parse(o.AllowEmails, nil, nil)
	case "admins":
		// The group rules wait for the providers (checked at load).
		_, err = access.ParseMixed("admins", slices.DeleteFunc(slices.Clone(o.Admins),
			func(rule string) bool { return !strings.Contains(rule, "@") }), nil)
	case "rate_limit", "rate_limit_ipv6_prefix":
		_, err = o.limiter()
	case "app_name", "logo_url", "accent":
		_, err = ui.New(ui.Options{AppName: o.UI.AppName, LogoURL: o.UI.LogoURL, Accent: o.UI.Accent})
	case "locale":
		_, err = i18n.ParseTag(o.UI.Locale)
	case "storage":
		if o.Postgres != nil {
			err = o.Postgres.check()
		}
	case "dev_provider":
		err = o.DevProvider.Check()
	case "webhook":
		n := len(o.Webhooks) - 1
		_, err = o.Webhooks[n].endpoint(nil, o.Webhooks[:n])
	}
	return err
}

// warnWrittenSecrets warns of each secret written out in the config rather
// than named with {env.*} or {file.*}: Caddy's admin API (GET /config/)
// and every copy of the config show it. The warning names the option,
// never the value.
func (o *Options) warnWrittenSecrets(logger *zap.Logger) {
	var written []string
	add := func(option, value string) {
		if value != "" && !hasPlaceholder(value) {
			written = append(written, option)
		}
	}
	for _, pc := range o.Providers {
		add("provider "+pc.Name+": client_secret", pc.ClientSecret)
		add("provider "+pc.Name+": private_key", pc.PrivateKey)
	}
	for i, k := range o.CookieKeys {
		add(fmt.Sprintf("cookie_keys: key %d", i+1), k)
	}
	for i, k := range o.APIKeys {
		add(fmt.Sprintf("api_key: key %d", i+1), k)
	}
	if o.Postgres != nil {
		for i, s := range append([]string{o.Postgres.Secret}, o.Postgres.PreviousSecrets...) {
			add(fmt.Sprintf("storage postgres: secret %d", i+1), s)
		}
	}
	for _, wc := range o.Webhooks {
		for i, s := range wc.Secrets {
			add(fmt.Sprintf("webhook %s: secret %d", wc.Name, i+1), s)
		}
	}
	for _, option := range written {
		logger.Warn("a secret is written out in the config, where the admin API and every copy of the config show it: "+
			"name it with {env.NAME} or {file.PATH}", zap.String("option", option))
	}
}

// checkDurations refuses a negative duration, which only a JSON config can
// hold (the Caddyfile takes positive ones).
func (o *Options) checkDurations() error {
	type duration struct {
		option string
		value  caddy.Duration
	}
	durations := []duration{{"session_lifetime", o.SessionLifetime}, {"reauthenticate_after", o.ReauthenticateAfter},
		{"flow_timeout", o.FlowTimeout}, {"token_refresh_skew", o.TokenRefreshSkew}}
	optional := func(option string, value *caddy.Duration) {
		if value != nil {
			durations = append(durations, duration{option, *value})
		}
	}
	optional("session_cache", o.SessionCache)
	optional("session_idle_timeout", o.SessionIdleTimeout)
	optional("identity_key_delay", o.IdentityKeyDelay)
	if o.Postgres != nil {
		optional("storage postgres: connect_timeout", &o.Postgres.ConnectTimeout)
	}
	if o.DevProvider != nil {
		optional("dev_provider: access_token_lifetime", &o.DevProvider.AccessTokenLifetime)
	}
	for _, d := range durations {
		if d.value < 0 {
			return fmt.Errorf("%s: %v is negative", d.option, time.Duration(d.value))
		}
	}
	return nil
}
