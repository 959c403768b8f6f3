package caddymodule

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
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

// webhookEndpoints checks the configured webhooks and expands their secrets.
func (a *App) webhookEndpoints(repl *caddy.Replacer) ([]webhook.Endpoint, error) {
	var out []webhook.Endpoint
	for i, wc := range a.Webhooks {
		ep, err := wc.endpoint(repl, a.Webhooks[:i])
		if err != nil {
			return nil, err
		}
		out = append(out, ep)
	}
	return out, nil
}

// endpoint checks the webhook, configured after earlier ones, and decodes
// its secrets, expanded with repl. Without repl (while the Caddyfile is
// parsed) a secret still to be expanded is left for the server to check.
func (wc WebhookConfig) endpoint(repl *caddy.Replacer, earlier []WebhookConfig) (webhook.Endpoint, error) {
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
		if repl != nil {
			var err error
			if s, err = expand(repl, what, raw); err != nil {
				return ep, err
			}
		}
		var key []byte
		if repl != nil || !hasPlaceholder(raw) {
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

// dispatchers runs one webhook dispatcher per store, across config reloads:
// it starts with the first config that opens the store and stops when the
// last one using it is cleaned up, before the store closes. Each config's
// endpoints are in force from its Start to its Stop (see
// webhook.Dispatcher.Configure). Gateways on one PostgreSQL database take
// turns (store.Locker).
var dispatchers = caddy.NewUsagePool()

type pooledDispatcher struct{ *webhook.Dispatcher }

func (p pooledDispatcher) Destruct() error {
	p.Stop()
	return nil
}

// dispatcherRef is one config's reference to its store's dispatcher.
type dispatcherRef struct {
	*webhook.Dispatcher
	key  string
	once sync.Once
}

func acquireDispatcher(ref *storeRef, logger *zap.Logger) (*dispatcherRef, error) {
	v, _, err := dispatchers.LoadOrNew(ref.key, func() (caddy.Destructor, error) {
		instance, err := store.InstanceID(context.Background(), ref.Store)
		if err != nil {
			return nil, err
		}
		d := webhook.New(webhook.Options{
			Store:   ref.Store,
			Payload: func(e *store.Event) any { return api.Event(e, instance) },
			Logger:  logger,
		})
		d.Start()
		return pooledDispatcher{d}, nil
	})
	if err != nil {
		return nil, err
	}
	return &dispatcherRef{Dispatcher: v.(pooledDispatcher).Dispatcher, key: ref.key}, nil
}

func (r *dispatcherRef) release() {
	r.once.Do(func() { dispatchers.Delete(r.key) })
}

// parseWebhook reads a webhook block:
//
//	webhook <name> <url> {
//		secret  <whsec_…> [<older whsec_…>]
//		events  <type…>
//		retries <duration…>
//		retain  <duration>
//		timeout <duration>
//	}
func parseWebhook(d *caddyfile.Dispenser) (WebhookConfig, error) {
	var wc WebhookConfig
	args := d.RemainingArgs()
	if len(args) != 2 {
		return wc, d.Err("webhook: want <name> <url> { secret <whsec_…> }")
	}
	wc.Name, wc.URL = args[0], args[1]
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "secret":
			var s []string
			s, err = someArgs(d)
			wc.Secrets = append(wc.Secrets, s...)
		case "events":
			var e []string
			e, err = someArgs(d)
			wc.Events = append(wc.Events, e...)
		case "retries":
			var waits []string
			if waits, err = someArgs(d); err == nil {
				for _, w := range waits {
					dur, perr := caddy.ParseDuration(w)
					if perr != nil || dur <= 0 {
						return wc, d.Errf("webhook %s: retries: %q is not a positive duration", wc.Name, w)
					}
					wc.Retries = append(wc.Retries, caddy.Duration(dur))
				}
			}
		case "retain":
			var arg string
			if err = oneArg(d, &arg); err == nil {
				dur, perr := caddy.ParseDuration(arg)
				if perr != nil || dur < 0 {
					return wc, d.Errf("webhook %s: retain: %q is not a duration of 0 or more", wc.Name, arg)
				}
				wc.Retain = (*caddy.Duration)(&dur)
			}
		case "timeout":
			var arg string
			if err = oneArg(d, &arg); err == nil {
				dur, perr := caddy.ParseDuration(arg)
				if perr != nil || dur <= 0 {
					return wc, d.Errf("webhook %s: timeout: %q is not a positive duration", wc.Name, arg)
				}
				wc.Timeout = caddy.Duration(dur)
			}
		default:
			return wc, unknownOption(d, webhookOptions, "unrecognized option %q in webhook %s", d.Val(), wc.Name)
		}
		if err != nil {
			return wc, err
		}
	}
	return wc, nil
}

// Interface guards
var _ caddy.Destructor = pooledDispatcher{}
