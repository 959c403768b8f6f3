package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// State is an endpoint's delivery state, kept in the store.
type State struct {
	// Cursor is the id of the last event done with: delivered, given up,
	// or not wanted; after a replay, the position it starts from (see
	// store.EventsFrom) until the first event after it is done with.
	Cursor string `json:"cursor,omitempty"`
	// Pending is the event after Cursor that failed Attempts times so far.
	Pending  string `json:"pending,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	// NextAttemptAt is when Pending is tried again.
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	LastSuccessAt time.Time `json:"last_success_at,omitzero"`
	LastFailureAt time.Time `json:"last_failure_at,omitzero"`
	// LastError is why the last attempt failed.
	LastError string `json:"last_error,omitempty"`
	// Delivered and Failed count the events delivered and given up.
	Delivered int64 `json:"delivered,omitempty"`
	Failed    int64 `json:"failed,omitempty"`
	// RecentFailures are the last events given up, oldest first.
	RecentFailures []Failure `json:"recent_failures,omitempty"`
	// Replay is the id of the last replay request applied (see Replay).
	Replay string `json:"replay,omitempty"`
}

// Failure is an event given up after every attempt failed.
type Failure struct {
	EventID  string    `json:"event_id"`
	Type     string    `json:"type"`
	Attempts int       `json:"attempts"`
	Error    string    `json:"error"`
	At       time.Time `json:"at"`
}

func stateName(endpoint string) string { return "webhook.endpoint." + endpoint }

func (d *Dispatcher) loadState(ctx context.Context, endpoint string) (State, error) {
	var st State
	raw, err := d.Store.GetMeta(ctx, stateName(endpoint))
	if errors.Is(err, store.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("decoding the state of webhook %s: %w", endpoint, err)
	}
	return st, nil
}

func (d *Dispatcher) saveState(ctx context.Context, endpoint string, st *State) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return d.Store.PutMeta(ctx, stateName(endpoint), raw)
}

// deliver is a turn at ep: it sends ep the events after its cursor, in
// order, until one fails (it is retried after its wait, and nothing after
// it goes first) or the batch is done. The state is saved after each
// delivery, so a crash repeats at most the delivery in flight. On a shared
// store the caller holds ep's lock.
func (d *Dispatcher) deliver(ctx context.Context, ep *Endpoint) (more bool, err error) {
	st, err := d.loadState(ctx, ep.Name)
	if err != nil {
		return false, err
	}
	replayed, err := d.applyReplay(ctx, ep, &st)
	if err != nil {
		return false, err
	}
	if replayed {
		if err := d.saveState(ctx, ep.Name, &st); err != nil {
			return false, err
		}
	}
	if d.Now().Before(st.NextAttemptAt) {
		return false, nil
	}
	events, err := d.Store.Events(ctx, st.Cursor, batch)
	if err != nil {
		return false, err
	}
	skipped := false
	for _, ev := range events {
		if !ep.wants(ev.Type) {
			st.Cursor, skipped = ev.ID, true
			continue
		}
		if ev.ID != st.Pending {
			st.Pending, st.Attempts = ev.ID, 0
		}
		failure := d.attempt(ctx, ep, ev)
		if failure != nil && ctx.Err() != nil {
			return false, nil // stopping: the cut attempt does not count
		}
		stopped := ctx.Err() != nil
		if stopped {
			// Answered 2xx, then stopped (a reload changed the endpoint in
			// that instant): the delivery counts, or the next worker would
			// send the event again. Its state is saved past the stop, and
			// the turn ends there.
			save, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveAfterStop)
			defer cancel()
			ctx = save
		}
		now := d.Now()
		if failure == nil {
			st.Cursor, st.Pending, st.Attempts, st.NextAttemptAt = ev.ID, "", 0, time.Time{}
			st.LastSuccessAt = now
			st.Delivered++
			metrics.WebhookDeliveries.WithLabelValues(ep.Name, "delivered").Inc()
		} else if !d.failed(ep, &st, ev, failure, now) {
			metrics.WebhookDeliveries.WithLabelValues(ep.Name, "failed").Inc()
			return false, d.saveState(ctx, ep.Name, &st)
		} else {
			metrics.WebhookDeliveries.WithLabelValues(ep.Name, "given_up").Inc()
		}
		skipped = false
		if err := d.saveState(ctx, ep.Name, &st); err != nil || stopped {
			return false, err
		}
	}
	if skipped {
		err = d.saveState(ctx, ep.Name, &st)
	}
	return len(events) == batch && err == nil, err
}

// attempt posts ev to ep once.
func (d *Dispatcher) attempt(ctx context.Context, ep *Endpoint, ev *store.Event) error {
	body, err := json.Marshal(d.Payload(ev))
	if err != nil {
		return fmt.Errorf("encoding the payload: %w", err)
	}
	err = send(ctx, newClient(cmp.Or(ep.Timeout, d.Timeout)), ep, ev.ID, d.Now(), body)
	if c := d.Logger.Check(zap.DebugLevel, "webhook delivery"); c != nil {
		c.Write(zap.String("endpoint", ep.Name), zap.String("event_id", ev.ID), zap.String("type", ev.Type), zap.Error(err))
	}
	return err
}

// failed records a failed attempt at ev in st. It reports whether ev is
// given up (the cursor moves past it); otherwise the next attempt is due
// after the endpoint's wait, with up to 10% jitter.
func (d *Dispatcher) failed(ep *Endpoint, st *State, ev *store.Event, err error, now time.Time) (givenUp bool) {
	st.Attempts++
	st.LastFailureAt, st.LastError = now, err.Error()
	retries := ep.retries()
	if st.Attempts <= len(retries) {
		wait := retries[st.Attempts-1]
		wait += time.Duration(rand.Int64N(int64(wait)/10 + 1))
		st.NextAttemptAt = now.Add(wait)
		return false
	}
	d.Logger.Warn("webhook event given up after every attempt failed",
		zap.String("endpoint", ep.Name), zap.String("event_id", ev.ID), zap.String("type", ev.Type),
		zap.Int("attempts", st.Attempts), zap.String("error", st.LastError))
	st.RecentFailures = append(st.RecentFailures, Failure{EventID: ev.ID, Type: ev.Type, Attempts: st.Attempts, Error: st.LastError, At: now})
	st.RecentFailures = st.RecentFailures[max(0, len(st.RecentFailures)-keptFailures):]
	st.Cursor, st.Pending, st.Attempts, st.NextAttemptAt = ev.ID, "", 0, time.Time{}
	st.Failed++
	return true
}
