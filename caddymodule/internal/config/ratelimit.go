package config

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

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
func (o *Options) limiter() (*ratelimit.Limiter, error) {
	rules := map[string]ratelimit.Rule{}
	for class, rl := range defaultRateLimits {
		rules[class] = ratelimit.Rule{Events: rl.Events, Window: time.Duration(rl.Window)}
	}
	for class, rl := range o.RateLimits {
		if _, ok := defaultRateLimits[class]; !ok {
			return nil, fmt.Errorf("rate_limit: unknown class %q (want start, callback, native, logout or api)", class)
		}
		if rl.Events < 0 || (rl.Events > 0 && rl.Window <= 0) {
			return nil, fmt.Errorf("rate_limit %s: want a positive number of events in a positive window", class)
		}
		rules[class] = ratelimit.Rule{Events: rl.Events, Window: time.Duration(rl.Window)}
	}
	if p := o.RateLimitIPv6Prefix; p != 0 && (p < 32 || p > 128) {
		return nil, fmt.Errorf("rate_limit_ipv6_prefix: %d is not a prefix length between 32 and 128", p)
	}
	return ratelimit.New(ratelimit.Options{Rules: rules, IPv6Prefix: o.RateLimitIPv6Prefix}), nil
}
