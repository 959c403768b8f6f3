package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// pruneLoop prunes the outbox when it is due, until ctx ends.
func (d *Dispatcher) pruneLoop(ctx context.Context) {
	var lastErr time.Time
	t := time.NewTicker(d.Poll)
	defer t.Stop()
	for {
		if err := d.pruneIfDue(ctx); err != nil && ctx.Err() == nil && d.Now().Sub(lastErr) >= time.Minute {
			lastErr = d.Now()
			d.Logger.Warn("webhooks: pruning the outbox failed; retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneIfDue prunes the outbox when pruneInterval has passed since this
// gateway last did, while a configuration is in force: before the first there is nothing to do, and in particular nothing
// to prune, since the endpoints about to be configured may need every
// event.
func (d *Dispatcher) pruneIfDue(ctx context.Context) error {
	eps, ok := d.endpoints()
	now := d.Now()
	if !ok || now.Sub(d.lastPrune) < pruneInterval {
		return nil
	}
	// A gateway that finds another pruning tries again at its next poll
	// rather than in a minute: each gateway's turn at pruning is also when
	// its endpoints enter the registry.
	ran, err := d.withLock(ctx, pruneLock, func() error { return d.prune(ctx, eps, now) })
	if ran && err == nil {
		d.lastPrune = now
	}
	return err
}

// prune deletes the events that every endpoint configured lately (on any
// gateway sharing the store, within forgetAfter) is done with and no longer
// retains (Endpoint.Retain). The registry of those endpoints lives in the
// store, so a gateway whose configuration lacks an endpoint does not delete
// the events another gateway has still to deliver to it. With no endpoint
// at all, every event up to now goes.
func (d *Dispatcher) prune(ctx context.Context, eps []Endpoint, now time.Time) error {
	seen := map[string]registered{}
	raw, err := d.Store.GetMeta(ctx, registryName)
	if err == nil {
		err = json.Unmarshal(raw, &seen)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("reading the webhook registry: %w", err)
	}
	for _, ep := range eps {
		seen[ep.Name] = registered{Seen: now, Retain: ep.Retain}
	}
	for name, r := range seen {
		if now.Sub(r.Seen) > forgetAfter {
			delete(seen, name)
		}
	}
	if raw, err = json.Marshal(seen); err != nil {
		return err
	}
	if err := d.Store.PutMeta(ctx, registryName, raw); err != nil {
		return fmt.Errorf("storing the webhook registry: %w", err)
	}
	before := store.EventsFrom(now)
	for name, r := range seen {
		st, err := d.loadState(ctx, name)
		if err != nil {
			return err
		}
		before = min(before, st.Cursor, store.EventsFrom(now.Add(-r.Retain)))
	}
	if before == "" {
		return nil
	}
	return d.Store.DeleteEventsBefore(ctx, before)
}

// registered is an endpoint in the registry: when a gateway last had it
// in force, and how long it keeps events.
type registered struct {
	Seen   time.Time     `json:"seen"`
	Retain time.Duration `json:"retain,omitempty"`
}

// UnmarshalJSON also reads the registry of gateways before retention,
// which held only the time.
func (r *registered) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*r = registered{}
		return json.Unmarshal(b, &r.Seen)
	}
	type plain registered
	return json.Unmarshal(b, (*plain)(r))
}
