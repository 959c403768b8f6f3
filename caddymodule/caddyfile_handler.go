package caddymodule

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/socialgate/socialgate/caddymodule/internal/config"
)

// parseHandler sets up the handler from Caddyfile tokens. Syntax:
//
//	socialgate [public] {
//		public
//		require       <provider> [scopes <scope...>]
//		forward_token <provider> [header <name>]
//		allow_emails  <address|*@domain...>
//		allow_groups  <provider:group...>
//		identity_audience <aud...>
//	}
//
// require, forward_token, allow_emails and allow_groups may repeat; every
// requirement must be met (allow_emails and allow_groups together: either).
// public (as the argument or in the block) lets requests through without a
// session, and takes none of the others but identity_audience.
func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	h.Next()
	check, err := newHandlerCheck(h)
	if err != nil {
		return nil, err
	}
	if h.NextArg() {
		if h.Val() != "public" {
			return nil, h.Errf("socialgate: unknown argument %q (want public, or options in a block)", h.Val())
		}
		handler.Public = true
		if h.NextArg() {
			return nil, h.ArgErr()
		}
	}
	for h.NextBlock(0) {
		if err := check.note(h.Dispenser); err != nil {
			return nil, err
		}
		if err := parseHandlerOption(h.Dispenser, &handler.Route); err != nil {
			return nil, err
		}
		if err := check.option(handler); err != nil {
			return nil, err
		}
	}
	return handler, nil
}

// parseHandlerOption parses the handler option at d's cursor into handler:
// the options of a socialgate block, which a forward_auth policy shares.
func parseHandlerOption(d *caddyfile.Dispenser, handler *config.Route) error {
	switch d.Val() {
	case "public":
		if d.NextArg() {
			return d.ArgErr()
		}
		handler.Public = true
	case "require":
		args := d.RemainingArgs()
		if len(args) == 0 || len(args) == 2 || (len(args) > 2 && args[1] != "scopes") {
			return d.Errf("require: want <provider> [scopes <scope...>]")
		}
		req := config.Requirement{Provider: args[0]}
		if len(args) > 2 {
			req.Scopes = args[2:]
		}
		handler.Require = append(handler.Require, req)
	case "forward_token":
		args := d.RemainingArgs()
		switch {
		case len(args) == 1:
			handler.ForwardTokens = append(handler.ForwardTokens, config.ForwardToken{Provider: args[0]})
		case len(args) == 3 && args[1] == "header":
			handler.ForwardTokens = append(handler.ForwardTokens, config.ForwardToken{Provider: args[0], Header: args[2]})
		default:
			return d.Errf("forward_token: want <provider> [header <name>]")
		}
	case "allow_emails":
		rules := d.RemainingArgs()
		if len(rules) == 0 {
			return d.Errf("allow_emails: want <address|*@domain...>")
		}
		handler.AllowEmails = append(handler.AllowEmails, rules...)
	case "allow_groups":
		rules := d.RemainingArgs()
		if len(rules) == 0 {
			return d.Errf("allow_groups: want <provider:group...>")
		}
		handler.AllowGroups = append(handler.AllowGroups, rules...)
	case "identity_audience":
		aud := d.RemainingArgs()
		if len(aud) == 0 {
			return d.Errf("identity_audience: want <aud...>")
		}
		handler.IdentityAudience = aud
	default:
		return unknownOption(d, handlerOptions, "unrecognized socialgate option %q", d.Val())
	}
	return nil
}
