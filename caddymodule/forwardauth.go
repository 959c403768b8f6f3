package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/socialgate/socialgate/caddymodule/internal/config"
)

// fromTrustedProxy reports whether r's peer is one of the server's
// trusted_proxies, as Caddy decided when the request came in.
func fromTrustedProxy(r *http.Request) bool {
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	return trusted
}

// parseForwardAuth parses the forward_auth option of the socialgate
// global option:
//
//	forward_auth <url> {
//		listen <host:port> [{ trusted <cidr>... }]
//		policy <name> {
//			<socialgate handler options>
//		}
//	}
func parseForwardAuth(d *caddyfile.Dispenser) (*config.ForwardAuth, error) {
	fa := &config.ForwardAuth{}
	if err := oneArg(d, &fa.URL); err != nil {
		return nil, err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() == "listen" {
			if fa.Listen != nil {
				return nil, d.Errf("forward_auth: listen is written twice")
			}
			l, err := parseVerifyListen(d)
			if err != nil {
				return nil, err
			}
			fa.Listen = l
			continue
		}
		if d.Val() != "policy" {
			return nil, unknownOption(d, forwardAuthOptions, "unrecognized forward_auth option %q", d.Val())
		}
		if !d.NextArg() {
			return nil, d.Errf("policy: want <name> { <socialgate handler options> }")
		}
		name := d.Val()
		if d.NextArg() {
			return nil, d.ArgErr()
		}
		if _, dup := fa.Policies[name]; dup {
			return nil, d.Errf("forward_auth: policy %q is written twice", name)
		}
		var rt config.Route
		for inner := d.Nesting(); d.NextBlock(inner); {
			if err := parseHandlerOption(d, &rt); err != nil {
				return nil, err
			}
		}
		if fa.Policies == nil {
			fa.Policies = map[string]config.Route{}
		}
		fa.Policies[name] = rt
	}
	return fa, nil
}
