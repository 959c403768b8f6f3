package caddymodule

import (
	"context"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/config"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

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
func parseWebhook(d *caddyfile.Dispenser) (config.WebhookConfig, error) {
	var wc config.WebhookConfig
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
