package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/socialgate/socialgate/caddymodule/internal/ratelimit"
)

// RateLimit allows Events requests per Window per client.
type RateLimit struct {
	Events int            `json:"events"`
	Window caddy.Duration `json:"window"`
}

// defaultRateLimits apply to the classes a config does not set.
var defaultRateLimits = map[string]RateLimit{
	"start":    {Events: 30, Window: caddy.Duration(time.Minute)},
	"callback": {Events: 30, Window: caddy.Duration(time.Minute)},
	"native":   {Events: 20, Window: caddy.Duration(time.Minute)},
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
			return nil, fmt.Errorf("rate_limit: unknown class %q (want start, callback, native or api)", class)
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
