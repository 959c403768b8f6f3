package config

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

// WebhookConfig is an endpoint that receives the gateway's events (user,
// session and external account changes) as signed POST requests, in order,
// at least once: see docs/webhooks.md.
type WebhookConfig struct {
	// Name identifies the endpoint in the API's delivery state and in logs;
	// the endpoint's place in the event outbox is kept under it, so a renamed
	// endpoint starts afresh. Letters, digits, - and _. Required.
	Name string `json:"name"`
	// URL receives the events: an absolute https URL, or http to a host
	// that cannot be on the internet (localhost, a loopback or private
	// address, a single-label name such as a container's). Required.
	URL string `json:"url"`
	// Secrets sign every delivery (the webhook-signature header, one
	// signature per secret): Standard Webhooks secrets, whsec_ then the
	// base64 of 24 to 64 random bytes. Put the new one first while a
	// receiver rotates. {env.*} and {file.*} are expanded at load. Required.
	Secrets []string `json:"secrets"`
	// Events are the event types sent to the endpoint. Default: all.
	Events []string `json:"events,omitempty"`
	// Retries are the waits between the attempts at one event; after the
	// last, the event is given up (recorded in the API) and the next one
	// goes. Default: 5s 30s 2m 10m 1h 3h 6h (eight attempts over ten hours).
	Retries []caddy.Duration `json:"retries,omitempty"`
	// Timeout bounds each delivery: a 2xx answer must arrive within it, or
	// the attempt failed (and the event waits for its next retry). A
	// reload that drops or changes the endpoint cuts a delivery in flight
	// short at once. Default: 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// Retain is how long events are kept after they happen, delivered or
	// not, so that they can be sent again (POST
	// /_auth/api/v1/webhooks/{name}/replay); 0 keeps them only until
	// delivered. Default: 24h.
	Retain *caddy.Duration `json:"retain,omitempty"`
}

var webhookName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// WebhookEndpoints checks the configured webhooks and expands their secrets.
func (o *Options) WebhookEndpoints(expand Expand) ([]webhook.Endpoint, error) {
	var out []webhook.Endpoint
	for i, wc := range o.Webhooks {
		ep, err := wc.endpoint(expand, o.Webhooks[:i])
		if err != nil {
			return nil, err
		}
		out = append(out, ep)
	}
	return out, nil
}

// endpoint checks the webhook, configured after earlier ones, and decodes
// its secrets, expanded with expand. Without expand (while the Caddyfile is
// parsed) a secret still to be expanded is left for the server to check.
func (wc WebhookConfig) endpoint(expand Expand, earlier []WebhookConfig) (webhook.Endpoint, error) {
	ep := webhook.Endpoint{Name: wc.Name, URL: wc.URL, Events: wc.Events}
	if !webhookName.MatchString(wc.Name) {
		return ep, fmt.Errorf("webhook %q: a name is 1 to 64 letters, digits, - or _", wc.Name)
	}
	if slices.ContainsFunc(earlier, func(o WebhookConfig) bool { return o.Name == wc.Name }) {
		return ep, fmt.Errorf("webhook %s: the name is used twice", wc.Name)
	}
	for i, raw := range wc.Secrets {
		what := fmt.Sprintf("webhook %s: secret %d", wc.Name, i+1)
		s := raw
		if expand != nil {
			var err error
			if s, err = expandValue(expand, what, raw); err != nil {
				return ep, err
			}
		}
		var key []byte
		if expand != nil || !hasPlaceholder(raw) {
			var err error
			if key, err = webhook.ParseSecret(s); err != nil {
				return ep, fmt.Errorf("%s: %w", what, err)
			}
		}
		ep.Secrets = append(ep.Secrets, key)
	}
	for _, r := range wc.Retries {
		ep.Retries = append(ep.Retries, time.Duration(r))
	}
	ep.Timeout = time.Duration(wc.Timeout)
	ep.Retain = webhook.DefaultRetain
	if wc.Retain != nil {
		ep.Retain = time.Duration(*wc.Retain)
	}
	return ep, ep.Check()
}
