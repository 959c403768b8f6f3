package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/socialgate/socialgate/caddymodule/internal/gateway"
)

// ForwardAuth turns on the verify endpoint, <prefix>/verify, which external
// proxies (nginx auth_request, ingress-nginx, Traefik ForwardAuth, Envoy
// ext_authz, Caddy's forward_auth) ask for each request they pass: 200 with
// the identity headers for a signed-in request, else 401 (nginx) or a
// redirect to sign in (the others), or 403. Only a request from one of the
// server's trusted_proxies may ask; it names the original request in
// X-Original-URL or X-Forwarded-Proto/Host/Uri. See docs/forward-auth.md.
type ForwardAuth struct {
	// URL is the gateway's origin as browsers reach it
	// (https://auth.example.com): where browsers of the protected hosts are
	// sent to sign in. Required.
	URL string `json:"url"`

	// Policies are what each verify address asks, by name:
	// <prefix>/verify/<name> applies the policy <name>, with the settings
	// of a socialgate handler (require, forward_tokens, allow_emails,
	// allow_groups, identity_audience, public); <prefix>/verify applies
	// "default". A name not here is 404, which each proxy turns into a
	// refusal. Default: "default" admits every signed-in user that the
	// app's allow_emails and allow_groups admit.
	Policies map[string]Handler `json:"policies,omitempty"`
}

// gatewayConfig returns the gateway's forward-auth configuration; nil fa
// is nil. The trusted proxies are the Caddy server's trusted_proxies.
func (fa *ForwardAuth) gatewayConfig() *gateway.ForwardAuth {
	if fa == nil {
		return nil
	}
	cfg := &gateway.ForwardAuth{URL: fa.URL, Policies: map[string]gateway.Route{}, Trusted: fromTrustedProxy}
	for name, h := range fa.Policies {
		cfg.Policies[name] = h.route()
	}
	return cfg
}

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
//		policy <name> {
//			<socialgate handler options>
//		}
//	}
func parseForwardAuth(d *caddyfile.Dispenser) (*ForwardAuth, error) {
	fa := &ForwardAuth{}
	if err := oneArg(d, &fa.URL); err != nil {
		return nil, err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
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
		var h Handler
		for inner := d.Nesting(); d.NextBlock(inner); {
			if err := parseHandlerOption(d, &h); err != nil {
				return nil, err
			}
		}
		if fa.Policies == nil {
			fa.Policies = map[string]Handler{}
		}
		fa.Policies[name] = h
	}
	return fa, nil
}
