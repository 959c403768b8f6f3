// Package config is socialgate's configuration without Caddy: the options
// of the socialgate app and of its handler, with their JSON names and the
// documentation of each, their checks, and the gateway's configuration built
// from them. The Caddy layer (package caddymodule) embeds these options in
// its modules, expands placeholders with Caddy's replacer and hands over
// what lives across reloads (the store, its keys, the webhook dispatcher).
// It imports the caddy package for one type only, caddy.Duration, so that a
// JSON config's durations read as Caddy's do ("10m", or nanoseconds).
package config

import (
	"time"

	"github.com/caddyserver/caddy/v2"
)

// DefaultSessionLifetime is how long a session lasts when session_lifetime is not set.
const DefaultSessionLifetime = 7 * 24 * time.Hour

// DefaultIDTokenSessionLifetime is how long a session started from a native
// app's bare ID token lasts when id_token_session_lifetime is not set.
const DefaultIDTokenSessionLifetime = 24 * time.Hour

// DefaultSessionIdleTimeout ends sessions unused for this long when
// session_idle_timeout is not set.
const DefaultSessionIdleTimeout = 24 * time.Hour

// Options are the options of the socialgate app (the socialgate global
// option of a Caddyfile), as its JSON config holds them.
type Options struct {
	// Storage is the directory of the embedded Badger store, which also holds
	// the generated keys (keys.json, mode 0600). Default: socialgate in
	// Caddy's data directory.
	Storage string `json:"storage,omitempty"`

	// Postgres, when set, keeps users, accounts, sessions and flows in
	// PostgreSQL instead of the embedded store, so that several gateways
	// behind a load balancer share one user base. Not with Storage.
	Postgres *PostgresStorage `json:"postgres,omitempty"`

	// Prefix is the path under which the gateway serves its own endpoints
	// (sign-in, callbacks, sign-out, me). Default: /_auth.
	Prefix string `json:"prefix,omitempty"`

	// DevProvider, when set, runs the built-in development OpenID provider and
	// adds it as the provider "dev", with the other providers it plays.
	// Never use it in production: anyone can sign in as anyone.
	DevProvider *DevProvider `json:"dev_provider,omitempty"`

	// Providers are the sign-in and connect providers, shown in this order.
	Providers []ProviderConfig `json:"providers,omitempty"`

	// CookieKeys sign and encrypt the session cookie, newest first: the first
	// encodes, all decode, so adding a key in front rotates without signing
	// anyone out. Each is at least 32 characters; {env.*} and {file.*} are
	// expanded at load. Default: a secret generated once in Storage.
	CookieKeys []string `json:"cookie_keys,omitempty"`

	// SessionLifetime is how long a session lasts after sign-in. Default: 7 days.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// IDTokenSessionLifetime is how long a session lasts that a native app
	// started with a bare ID token (POST /_auth/native/id_token): such a
	// sign-in leaves the gateway no grant (no refresh token) through which
	// the provider could ever say the person is gone, so it ends sooner and
	// the app signs in again through the provider's SDK, usually silently.
	// Never longer than SessionLifetime. Default: 24h.
	IDTokenSessionLifetime caddy.Duration `json:"id_token_session_lifetime,omitempty"`

	// SessionCache is how long a session, a user or a user's linked
	// accounts read from the store is kept in memory, so most requests need
	// no store read. What this gateway changes leaves the cache at once, and
	// so does what another gateway on the same PostgreSQL database changes:
	// each gateway listens for the others' changes (LISTEN/NOTIFY). Only
	// while that listener is disconnected is a session ended elsewhere
	// noticed within this time. While the database is down, sessions seen
	// within it keep working. Default: 5s; 0 reads the store on every
	// request.
	SessionCache *caddy.Duration `json:"session_cache,omitempty"`

	// SessionIdleTimeout ends a session unused for this long, on every
	// gateway sharing the store, before its lifetime if need be. Activity is
	// recorded at most once a minute per session (and per twentieth of the
	// timeout), off the request path, so a session may end up to a tenth
	// early, never late. Default: 24h; 0 turns it off.
	SessionIdleTimeout *caddy.Duration `json:"session_idle_timeout,omitempty"`

	// ReauthenticateAfter is how recent a session's sign-in must be for
	// connecting or disconnecting an account and signing out other
	// sessions: past it, the person goes through their provider again first
	// (OpenID providers are asked for a fresh sign-in). Default: 10m.
	ReauthenticateAfter caddy.Duration `json:"reauthenticate_after,omitempty"`

	// FlowTimeout is how long a started sign-in may take to come back from
	// the provider. Default: 10m.
	FlowTimeout caddy.Duration `json:"flow_timeout,omitempty"`

	// TokenRefreshSkew is how long before it expires a provider access token
	// is refreshed on read, at most half of the token's lifetime (its
	// expires_in), so that short-lived tokens are not refreshed on every
	// request. Default: 2m.
	TokenRefreshSkew caddy.Duration `json:"token_refresh_skew,omitempty"`

	// APIKeys are the keys the backend API (/_auth/api/v1/…) accepts as
	// Authorization: Bearer <key>; several allow rotation. Each is at least
	// 32 characters; {env.*} and {file.*} are expanded at load. Default:
	// none, and the API refuses every request.
	APIKeys []string `json:"api_keys,omitempty"`

	// IdentityIssuer is the iss claim of the identity token upstreams receive
	// in X-Auth-Jwt. Default: socialgate.
	IdentityIssuer string `json:"identity_issuer,omitempty"`

	// IdentityAudience is the aud claim of the identity token. Default: none.
	IdentityAudience []string `json:"identity_audience,omitempty"`

	// IdentityKeyDelay is how long a new identity-token key (after
	// identity-key-rotate, or a new PostgreSQL secret) is published in the
	// JWKS before it signs, so that verifiers caching the JWKS have it
	// before they meet it; the previous key signs meanwhile. The JWKS's
	// Cache-Control max-age is 5m, or half this when that is shorter.
	// Default: 10m.
	IdentityKeyDelay *caddy.Duration `json:"identity_key_delay,omitempty"`

	// RedirectURLs are the URLs native apps may be sent back to after sign-in
	// (myapp://oauth-callback, https://app.example.com/after-sign-in), each
	// once. They are recorded in the store at load, beside those added
	// through the backend API. Matching is exact on scheme, host and path;
	// loopback URLs may vary only the port (RFC 8252). Default: none.
	RedirectURLs []string `json:"redirect_urls,omitempty"`

	// ReturnURLs are absolute URLs that a browser may be sent back to after
	// sign-in, besides paths on the same site (matched exactly on scheme, host
	// and path). Default: none.
	ReturnURLs []string `json:"return_urls,omitempty"`

	// ReturnHosts are hosts any URL of which a browser may be sent back to
	// after sign-in or sign-out: app.example.com, or *.example.com for
	// every subdomain; https unless written http://host:port. Default: none.
	ReturnHosts []string `json:"return_hosts,omitempty"`

	// CookieDomain shares the session cookie with every host under this
	// domain (example.com), for single sign-on across subdomains: every
	// host under it is then trusted with sessions (docs/forward-auth.md).
	// Default: none, a __Host- cookie for the gateway's host alone.
	CookieDomain string `json:"cookie_domain,omitempty"`

	// ForwardAuth turns on <prefix>/verify for external proxies. Default:
	// off (404).
	ForwardAuth *ForwardAuth `json:"forward_auth,omitempty"`

	// AllowEmails admits only users with a verified email address among
	// these: ada@example.com, or a whole domain, *@example.com (any case).
	// A first sign-in by anyone else creates no user; a signed-in user the
	// rules no longer admit (after a reload) gets 403 on every route. Only
	// addresses the provider verified count. Default: everyone.
	AllowEmails []string `json:"allow_emails,omitempty"`

	// AllowGroups admits only users with a linked account in one of these
	// groups, each provider:group (corp:admins): the group as that provider
	// asserted it at the account's last sign-in (its fields groups mapping,
	// or github's groups_from). With AllowEmails, matching either admits;
	// refusals work alike.
	// Default: everyone.
	AllowGroups []string `json:"allow_groups,omitempty"`

	// Admins are the operators who may use the console at
	// <prefix>/admin: each rule an address or a whole domain
	// (ada@example.com, *@example.com), matched against the user's verified
	// addresses, or a provider:group (corp:admins), matched as AllowGroups
	// matches. Anyone else signed in gets 403 there. Default: none, and no
	// console.
	Admins []string `json:"admins,omitempty"`

	// RateLimits are per-client limits on the gateway's endpoints, by class:
	// start (beginning a sign-in), callback, native (native app endpoints)
	// and api (backend API). A client over the limit gets 429 with
	// Retry-After. Defaults: start and callback 30 per minute, native 20 per
	// minute, api 600 per minute; events 0 turns a class off. The client is
	// Caddy's client IP (see the trusted_proxies server option), an IPv6
	// client its network (see RateLimitIPv6Prefix). The limiter holds at
	// most 200,000 clients and makes room by forgetting the least recently
	// seen.
	RateLimits map[string]RateLimit `json:"rate_limits,omitempty"`

	// RateLimitIPv6Prefix is how many leading bits of an IPv6 client
	// address the rate limits count as one client: a host is usually handed
	// a whole /64 and can pick any address in it. IPv4 addresses (also
	// IPv4-mapped ones) count one by one. Between 32 and 128. Default: 64.
	RateLimitIPv6Prefix int `json:"rate_limit_ipv6_prefix,omitempty"`

	// UI brands the gateway's pages.
	UI *UIConfig `json:"ui,omitempty"`

	// Webhooks are endpoints that receive the gateway's events (users,
	// sessions, external accounts), signed, in order, at least once.
	// Each endpoint is delivered to on its own, so a slow one holds back no
	// other. Gateways that share a PostgreSQL database take turns at each
	// endpoint; give them the same webhooks. Default: none.
	Webhooks []WebhookConfig `json:"webhooks,omitempty"`
}
