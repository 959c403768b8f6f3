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

// ErrUnknownEndpoint is Replay's error for an endpoint that the
// configuration in force does not have.
var ErrUnknownEndpoint = errors.New("no webhook endpoint of that name is configured")

// ErrFutureStart is Replay's error for a start after now: moving an
// endpoint's position ahead would skip the events until then.
var ErrFutureStart = errors.New("a replay cannot start in the future")

// NotRetainedError is Replay's error for a start earlier than the endpoint
// keeps events.
type NotRetainedError struct {
	Endpoint string
	Retain   time.Duration
	// Earliest is the earliest start that can be replayed now.
	Earliest time.Time
}

func (e *NotRetainedError) Error() string {
	if e.Retain == 0 {
		return fmt.Sprintf("webhook %s keeps no delivered events (its retain is 0), so nothing can be replayed", e.Endpoint)
	}
	return fmt.Sprintf("webhook %s keeps events for %s: replay from %s or later",
		e.Endpoint, e.Retain, e.Earliest.UTC().Format(time.RFC3339))
}

// replayRequest asks an endpoint's next turn to move its position back to
// From. It is kept apart from the endpoint's State, which a turn in
// progress rewrites after every delivery; the turn that finds a request
// it has not applied yet (by ID) applies it.
type replayRequest struct {
	ID          string    `json:"id"`
	From        string    `json:"from"`
	RequestedAt time.Time `json:"requested_at"`
}

func replayName(endpoint string) string { return "webhook.replay." + endpoint }

// Replay makes the endpoint get again, in order, every event it wants that
// was committed at or after from, and then the events after them, as
// usual: a given-up event gets a fresh set of attempts. Each event keeps
// its webhook-id, so a receiver that deduplicates by it takes only the
// events it has not had. The endpoint must be in the configuration in
// force (ErrUnknownEndpoint), and from not in the future (ErrFutureStart)
// and within its Retain (*NotRetainedError). The endpoint's next turn, on
// whichever gateway takes it, carries the replay out.
func (d *Dispatcher) Replay(ctx context.Context, endpoint string, from time.Time) error {
	eps, _ := d.endpoints()
	var ep *Endpoint
	for i := range eps {
		if eps[i].Name == endpoint {
			ep = &eps[i]
		}
	}
	if ep == nil {
		return ErrUnknownEndpoint
	}
	if from.After(d.Now()) {
		return ErrFutureStart
	}
	earliest := d.replayableFrom(ep)
	if ep.Retain == 0 || from.Before(earliest) {
		return &NotRetainedError{Endpoint: endpoint, Retain: ep.Retain, Earliest: earliest}
	}
	req := replayRequest{ID: store.NewID("rpl"), From: store.EventsFrom(from), RequestedAt: d.Now()}
	raw, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if err := d.Store.PutMeta(ctx, replayName(endpoint), raw); err != nil {
		return fmt.Errorf("storing the replay request: %w", err)
	}
	d.Wake()
	return nil
}

// replayableFrom is the earliest start Replay takes now for ep: its
// retention, less a minute's margin, as a pruning that started just now may
// be deleting up to the retention's edge.
func (d *Dispatcher) replayableFrom(ep *Endpoint) time.Time {
	return d.Now().Add(-ep.Retain).Add(time.Minute)
}

// applyReplay moves st back to a replay request for ep that it has not
// applied yet, and reports whether it did.
func (d *Dispatcher) applyReplay(ctx context.Context, ep *Endpoint, st *State) (bool, error) {
	raw, err := d.Store.GetMeta(ctx, replayName(ep.Name))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var req replayRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return false, fmt.Errorf("decoding the replay request of webhook %s: %w", ep.Name, err)
	}
	if req.ID == st.Replay {
		return false, nil
	}
	st.Cursor, st.Pending, st.Attempts, st.NextAttemptAt = req.From, "", 0, time.Time{}
	st.Replay = req.ID
	d.Logger.Info("webhook replay started", zap.String("endpoint", ep.Name), zap.String("from_event", req.From),
		zap.Time("requested_at", req.RequestedAt))
	return true, nil
}
