package caddymodule

import (
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/socialgate/socialgate/caddymodule/internal/confcheck"
	"github.com/socialgate/socialgate/caddymodule/internal/config"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("socialgate", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("socialgate", parseHandler)
	httpcaddyfile.RegisterDirectiveOrder("socialgate", httpcaddyfile.After, "forward_auth")
}

func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "socialgate", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens. Syntax:
//
//	socialgate {
//		storage          <dir> | postgres {
//			dsn             <dsn>
//			secret          <secret> [<previous secret>...]
//			max_conns       <n>
//			connect_timeout <duration>
//		}
//		prefix           <path>
//		dev_provider     [<listen>] {
//			listen                <host:port>
//			access_token_lifetime <duration>
//			link_by_email         on|off
//			allow_remote
//			provider <name> {
//				display_name  <text>
//				sign_in       on|off
//				link_by_email on|off
//				grants        <scope...>
//			}
//		}
//		provider <type> [<name>] {
//			client_id      <id>
//			client_secret  <secret>
//			display_name   <text>
//			issuer         <url>
//			authorize_url  <url>
//			token_url      <url>
//			userinfo_url   <url>
//			revoke_url     <url>
//			emails_url     <url>
//			jwks_url       <url>
//			tenant         <tenant>
//			base_url       <url>
//			team_id        <id>
//			key_id         <id>
//			private_key    <pem>
//			bundle_ids     <bundle id...>
//			native_client_ids <client id...>
//			scopes         <scope...>
//			fields {
//				id|email|email_verified|name|picture|username|groups <dotted.path>
//			}
//			groups_from    orgs|teams...
//			auth_param     <name> <value>
//			pkce           on|off
//			sign_in        on|off
//			sign_out_at_provider on|off
//			link_by_email  on|off
//		}
//		cookie_keys      <key...>
//		session_lifetime <duration>
//		id_token_session_lifetime <duration>
//		session_cache    <duration>
//		session_idle_timeout <duration>
//		reauthenticate_after <duration>
//		flow_timeout     <duration>
//		token_refresh_skew <duration>
//		api_key          <key...>
//		identity_issuer  <text>
//		identity_audience <aud...>
//		identity_key_delay <duration>
//		return_urls      <url...>
//		return_hosts     <[scheme://]host[:port]...>
//		cookie_domain    <domain>
//		forward_auth     <url> {
//			listen <host:port> [{ trusted <cidr...> }]
//			policy <name> {
//				<socialgate handler options>
//			}
//		}
//		allow_emails     <address|*@domain...>
//		allow_groups     <provider:group...>
//		admins           <address|*@domain|provider:group...>
//		redirect_urls    <url...>
//		rate_limit       <start|callback|native|logout|api> <events> <window>
//		rate_limit_ipv6_prefix <bits>
//		app_name         <text>
//		logo_url         <url>
//		accent           <#hex>
//		templates        <dir>
//		messages         <dir>
//		locale           <language tag>
//		webhook <name> <url> {
//			secret  <whsec_…> [<older whsec_…>]
//			events  <type…>
//			retries <duration…>
//			retain  <duration>
//			timeout <duration>
//		}
//	}
//
// webhook repeats, one per endpoint. <type> is oidc, oauth2 or a preset (google, github, microsoft, apple,
// facebook, x, discord, gitlab, linkedin, slack, notion, bitbucket, twitch,
// spotify); <name> defaults to the type.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option name
	if d.NextArg() {
		return d.ArgErr()
	}
	check := newAppCheck(d)
	for d.NextBlock(0) {
		if err := check.note(d); err != nil {
			return err
		}
		var err error
		switch d.Val() {
		case "storage":
			err = parseStorage(d, a)
		case "prefix":
			err = oneArg(d, &a.Prefix)
		case "dev_provider":
			a.DevProvider, err = parseDevProvider(d)
		case "provider":
			var pc config.ProviderConfig
			pc, err = parseProvider(d)
			a.Providers = append(a.Providers, pc)
		case "cookie_keys":
			a.CookieKeys, err = someArgs(d)
		case "session_lifetime":
			err = durationArg(d, &a.SessionLifetime)
		case "id_token_session_lifetime":
			err = durationArg(d, &a.IDTokenSessionLifetime)
		case "session_cache":
			err = zeroOrDurationArg(d, &a.SessionCache)
		case "session_idle_timeout":
			err = zeroOrDurationArg(d, &a.SessionIdleTimeout)
		case "reauthenticate_after":
			err = durationArg(d, &a.ReauthenticateAfter)
		case "flow_timeout":
			err = durationArg(d, &a.FlowTimeout)
		case "token_refresh_skew":
			err = durationArg(d, &a.TokenRefreshSkew)
		case "api_key":
			var keys []string
			keys, err = someArgs(d)
			a.APIKeys = append(a.APIKeys, keys...)
		case "identity_issuer":
			err = oneArg(d, &a.IdentityIssuer)
		case "identity_audience":
			a.IdentityAudience, err = someArgs(d)
		case "identity_key_delay":
			err = zeroOrDurationArg(d, &a.IdentityKeyDelay)
		case "return_urls":
			a.ReturnURLs, err = someArgs(d)
		case "return_hosts":
			var hosts []string
			hosts, err = someArgs(d)
			a.ReturnHosts = append(a.ReturnHosts, hosts...)
		case "cookie_domain":
			err = oneArg(d, &a.CookieDomain)
		case "forward_auth":
			a.ForwardAuth, err = parseForwardAuth(d)
		case "allow_emails":
			var rules []string
			rules, err = someArgs(d)
			a.AllowEmails = append(a.AllowEmails, rules...)
		case "allow_groups":
			var rules []string
			rules, err = someArgs(d)
			a.AllowGroups = append(a.AllowGroups, rules...)
		case "admins":
			var rules []string
			rules, err = someArgs(d)
			a.Admins = append(a.Admins, rules...)
		case "rate_limit":
			args := d.RemainingArgs()
			if len(args) != 3 {
				return d.Err("rate_limit: want <class> <events> <window>, like rate_limit start 30 1m")
			}
			events, perr := strconv.Atoi(args[1])
			window, derr := caddy.ParseDuration(args[2])
			if perr != nil || derr != nil {
				return d.Errf("rate_limit %s: %q events per %q is not a number per duration", args[0], args[1], args[2])
			}
			if a.RateLimits == nil {
				a.RateLimits = map[string]config.RateLimit{}
			}
			a.RateLimits[args[0]] = config.RateLimit{Events: events, Window: caddy.Duration(window)}
		case "rate_limit_ipv6_prefix":
			var bits string
			if err = oneArg(d, &bits); err == nil {
				if a.RateLimitIPv6Prefix, err = strconv.Atoi(strings.TrimPrefix(bits, "/")); err != nil {
					return d.Errf("rate_limit_ipv6_prefix: %q is not a prefix length, like 64", bits)
				}
			}
		case "redirect_urls":
			var urls []string
			urls, err = someArgs(d)
			a.RedirectURLs = append(a.RedirectURLs, urls...)
		case "webhook":
			var wc config.WebhookConfig
			wc, err = parseWebhook(d)
			a.Webhooks = append(a.Webhooks, wc)
		case "app_name", "logo_url", "accent", "templates", "messages", "locale":
			if a.UI == nil {
				a.UI = new(config.UIConfig)
			}
			err = oneArg(d, map[string]*string{"app_name": &a.UI.AppName, "logo_url": &a.UI.LogoURL, "accent": &a.UI.Accent,
				"templates": &a.UI.Templates, "messages": &a.UI.Messages, "locale": &a.UI.Locale}[d.Val()])
		default:
			return unknownOption(d, appOptions, "unrecognized socialgate option %q", d.Val())
		}
		if err == nil {
			err = check.option(a)
		}
		if err != nil {
			return err
		}
	}
	return check.finish(a)
}

func parseProvider(d *caddyfile.Dispenser) (config.ProviderConfig, error) {
	var pc config.ProviderConfig
	check := newWritten(d, providerRepeatable)
	if !d.NextArg() {
		return pc, d.Errf("provider needs a type: oidc, oauth2 or a preset (%s)", strings.Join(provider.Kinds(), ", "))
	}
	pc.Type = d.Val()
	if !slices.Contains(provider.Kinds(), pc.Type) {
		return pc, d.Errf("unknown provider type %q (%s)", pc.Type, confcheck.Hint(pc.Type, provider.Kinds()))
	}
	pc.Name = pc.Type
	if d.NextArg() {
		pc.Name = d.Val()
	}
	if d.NextArg() {
		return pc, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := check.note(d); err != nil {
			return pc, err
		}
		var err error
		switch opt := d.Val(); opt {
		case "client_id", "client_secret", "display_name", "issuer", "authorize_url", "token_url", "userinfo_url",
			"revoke_url", "emails_url", "jwks_url", "tenant", "base_url", "team_id", "key_id", "private_key":
			err = oneArg(d, map[string]*string{
				"client_id": &pc.ClientID, "client_secret": &pc.ClientSecret, "display_name": &pc.DisplayName,
				"issuer": &pc.Issuer, "authorize_url": &pc.AuthorizeURL, "token_url": &pc.TokenURL, "userinfo_url": &pc.UserinfoURL,
				"revoke_url": &pc.RevokeURL, "emails_url": &pc.EmailsURL, "jwks_url": &pc.JWKSURL, "tenant": &pc.Tenant,
				"base_url": &pc.BaseURL, "team_id": &pc.TeamID, "key_id": &pc.KeyID, "private_key": &pc.PrivateKey,
			}[opt])
		case "scopes":
			var s []string
			s, err = someArgs(d)
			pc.Scopes = append(pc.Scopes, s...)
		case "native_client_ids":
			var ids []string
			ids, err = someArgs(d)
			pc.NativeClientIDs = append(pc.NativeClientIDs, ids...)
		case "groups_from":
			var lists []string
			lists, err = someArgs(d)
			pc.GroupsFrom = append(pc.GroupsFrom, lists...)
		case "bundle_ids":
			var ids []string
			ids, err = someArgs(d)
			pc.BundleIDs = append(pc.BundleIDs, ids...)
		case "fields":
			pc.Fields, err = parseFields(d)
		case "auth_param":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return pc, d.ArgErr()
			}
			if pc.AuthParams == nil {
				pc.AuthParams = map[string]string{}
			}
			pc.AuthParams[args[0]] = args[1]
		case "pkce":
			pc.PKCE, err = onOff(d)
		case "sign_in":
			pc.SignIn, err = onOff(d)
		case "sign_out_at_provider":
			var on *bool
			if on, err = onOff(d); on != nil {
				pc.SignOutAtProvider = *on
			}
		case "link_by_email":
			pc.LinkByEmail, err = onOff(d)
		default:
			return pc, unknownOption(d, providerOptions, "unrecognized option %q in provider %s", opt, pc.Name)
		}
		if err != nil {
			return pc, err
		}
	}
	return pc, check.checkProvider(pc)
}

func parseFields(d *caddyfile.Dispenser) (*provider.Mapping, error) {
	m := new(provider.Mapping)
	targets := map[string]*string{"id": &m.ID, "email": &m.Email, "email_verified": &m.EmailVerified,
		"name": &m.Name, "picture": &m.Picture, "username": &m.Username, "groups": &m.Groups}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		target, ok := targets[d.Val()]
		if !ok {
			return nil, d.Errf("unknown profile field %q (want id, email, email_verified, name, picture, username or groups)", d.Val())
		}
		if err := oneArg(d, target); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func someArgs(d *caddyfile.Dispenser) ([]string, error) {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return nil, d.ArgErr()
	}
	return args, nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	option := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur <= 0 {
		return d.Errf("%s: %q is not a positive duration", option, s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// zeroOrDurationArg reads a duration that may be 0 (off), for an option
// whose default is not zero.
func zeroOrDurationArg(d *caddyfile.Dispenser, dst **caddy.Duration) error {
	var s string
	option := d.Val()
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur < 0 {
		return d.Errf("%s: %q is not a duration", option, s)
	}
	*dst = (*caddy.Duration)(&dur)
	return nil
}

func onOff(d *caddyfile.Dispenser) (*bool, error) {
	opt := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return nil, err
	}
	switch s {
	case "on", "true":
		return &[]bool{true}[0], nil
	case "off", "false":
		return &[]bool{false}[0], nil
	}
	return nil, d.Errf("%s: want on or off, got %s", opt, strconv.Quote(s))
}
