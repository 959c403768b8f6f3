package caddymodule

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/socialgate/socialgate/caddymodule/internal/ratelimit"
)

// RateLimit is the limit of one class of endpoints (rate_limit <class>
// <events> <window> in the Caddyfile): each client may make Events requests
// at once, and Events per Window on average after that (a token bucket that
// refills continuously). Classes the config leaves out keep their defaults.
type RateLimit struct {
	// Events is how many requests a client may make per Window, and at
	// once. 0 turns the class's limit off; a negative number fails the
	// load. Defaults: 30 for start and callback, 20 for native, 600 for
	// logout (the back-channel logout endpoint) and api.
	Events int `json:"events"`

	// Window is the time over which Events requests are allowed: a client
	// that used them all gets one more every Window/Events, and until then
	// 429 with Retry-After. It must be positive when Events is. Default:
	// 1m for every class.
	Window caddy.Duration `json:"window"`
}

// defaultRateLimits apply to the classes a config does not set. The
// back-channel logout endpoint (logout) takes anyone's requests, but a
// provider may send many at once (one per session when a person signs out
// everywhere).
var defaultRateLimits = map[string]RateLimit{
	"start":    {Events: 30, Window: caddy.Duration(time.Minute)},
	"callback": {Events: 30, Window: caddy.Duration(time.Minute)},
	"native":   {Events: 20, Window: caddy.Duration(time.Minute)},
	"logout":   {Events: 600, Window: caddy.Duration(time.Minute)},
	"api":      {Events: 600, Window: caddy.Duration(time.Minute)},
}

// limiter builds the abuse limits from the defaults and the config.
func (a *App) limiter() (*ratelimit.Limiter, error) {
	rules := map[string]ratelimit.Rule{}
	for class, rl := range defaultRateLimits {
		rules[class] = ratelimit.Rule{Events: rl.Events, Window: time.Duration(rl.Window)}
	}
	for class, rl := range a.RateLimits {
		if _, ok := defaultRateLimits[class]; !ok {
			return nil, fmt.Errorf("rate_limit: unknown class %q (want start, callback, native, logout or api)", class)
		}
		if rl.Events < 0 || (rl.Events > 0 && rl.Window <= 0) {
			return nil, fmt.Errorf("rate_limit %s: want a positive number of events in a positive window", class)
		}
		rules[class] = ratelimit.Rule{Events: rl.Events, Window: time.Duration(rl.Window)}
	}
	if p := a.RateLimitIPv6Prefix; p != 0 && (p < 32 || p > 128) {
		return nil, fmt.Errorf("rate_limit_ipv6_prefix: %d is not a prefix length between 32 and 128", p)
	}
	return ratelimit.New(ratelimit.Options{Rules: rules, IPv6Prefix: a.RateLimitIPv6Prefix}), nil
}

// clientIP is the client that the abuse limits count and the audit log
// names: the peer, or the address a proxy that Caddy trusts
// (trusted_proxies) reports; never a header from an untrusted peer. With
// trusted_proxies_strict it is Caddy's client_ip: the right-most address of
// the client IP headers that is not a trusted proxy's. Without it, Caddy
// takes the left-most valid address, which is the client's to choose
// (proxies append the peer they saw to what the client sent), so the
// gateway takes the right-most one itself: the client as the proxy in front
// of Caddy saw it. Behind more than one proxy that is the next proxy, and
// only trusted_proxies_strict, which knows them, finds the client.
func clientIP(r *http.Request) string {
	ctx := r.Context()
	if trusted, _ := caddyhttp.GetVar(ctx, caddyhttp.TrustedProxyVarKey).(bool); trusted {
		if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.TrustedProxiesStrict == 0 {
			if ip := lastForwardedIP(r.Header, srv.ClientIPHeaders); ip != "" {
				return ip
			}
		}
	}
	if ip, ok := caddyhttp.GetVar(ctx, caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return host
}

// lastForwardedIP returns the right-most valid address of the first of
// headers that has one (a comma-separated list, each value maybe with a
// port or an IPv6 zone, as Caddy reads them), or "".
func lastForwardedIP(h http.Header, headers []string) string {
	for _, name := range headers {
		parts := strings.Split(strings.Join(h.Values(name), ","), ",")
		for _, part := range slices.Backward(parts) {
			host, _, err := net.SplitHostPort(strings.TrimSpace(part))
			if err != nil {
				host = strings.TrimSpace(part)
			}
			host, _, _ = strings.Cut(host, "%")
			if ip, err := netip.ParseAddr(host); err == nil {
				return ip.String()
			}
		}
	}
	return ""
}
