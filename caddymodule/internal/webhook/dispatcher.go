package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Defaults of Options and bounds of the work done per round.
const (
	DefaultPoll = time.Second
	// batch is how many events one round reads per endpoint.
	batch = 100
	// pruneInterval is how often the outbox is pruned.
	pruneInterval = time.Minute
	// forgetAfter is how long an endpoint no gateway configures any more
	// keeps the events it has not had.
	forgetAfter = 24 * time.Hour
	// keptFailures is how many given-up events each endpoint's state lists.
	keptFailures = 10
	// lockName is the lock a shared store's dispatchers take turns at.
	lockName = "webhooks"
	// registryName is the meta value listing the endpoints lately configured.
	registryName = "webhook.endpoints"
)

// Locker is a store shared by several gateways (PostgreSQL) that lets one
// of them at a time do a round: the others skip theirs, so no event goes to
// an endpoint twice at once.
type Locker interface {
	WithLockIfFree(ctx context.Context, name string, fn func(ctx context.Context) error) (bool, error)
}

// Options configure a Dispatcher.
type Options struct {
	Store store.Store
	// Payload turns an event into the JSON object posted for it. Required.
	Payload func(*store.Event) any
	// Timeout bounds each delivery. Default: DefaultTimeout.
	Timeout time.Duration
	// Poll is how often the outbox is read for new events. Default: 1s.
	Poll   time.Duration
	Now    func() time.Time
	Logger *zap.Logger
}

// Dispatcher delivers the events of one store to the endpoints of the
// newest configuration that uses it. Safe for concurrent use.
type Dispatcher struct {
	Options
	client *http.Client

	mu      sync.Mutex
	configs []*[]Endpoint // newest last; see Configure

	lastPrune time.Time // of the loop goroutine
	lastErr   time.Time

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a dispatcher; Start runs it.
func New(o Options) *Dispatcher {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Dispatcher{Options: o, client: newClient(o.Timeout), wake: make(chan struct{}, 1)}
}

// Configure makes eps the endpoints until release is called. Configurations
// stack: the newest one not released is in force, so a configuration that
// replaces another takes over at once, and releasing a newer one that failed
// to start brings the older back.
func (d *Dispatcher) Configure(eps []Endpoint) (release func()) {
	cfg := &eps
	d.mu.Lock()
	d.configs = append(d.configs, cfg)
	d.mu.Unlock()
	d.Wake()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			d.configs = slices.DeleteFunc(d.configs, func(c *[]Endpoint) bool { return c == cfg })
			d.mu.Unlock()
		})
	}
}

// endpoints returns the endpoints in force; ok is false while no
// configuration is (before the first starts).
func (d *Dispatcher) endpoints() (eps []Endpoint, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.configs) == 0 {
		return nil, false
	}
	return *d.configs[len(d.configs)-1], true
}

// Wake makes the dispatcher read the outbox now rather than at its next poll.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Start runs the delivery loop in a goroutine until Stop.
func (d *Dispatcher) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	go d.loop(ctx)
}

// Stop ends the loop, cutting a delivery in flight short (it is attempted
// again later, not counted as failed), and waits for it.
func (d *Dispatcher) Stop() {
	if d.cancel != nil {
		d.cancel()
		<-d.done
	}
}

func (d *Dispatcher) loop(ctx context.Context) {
	defer close(d.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
		more, err := d.Round(ctx)
		if err != nil && ctx.Err() == nil && d.Now().Sub(d.lastErr) >= time.Minute {
			d.lastErr = d.Now()
			d.Logger.Warn("webhooks: reading or updating the outbox failed; retrying", zap.Error(err))
		}
		wait := d.Poll
		if more {
			wait = 0
		}
		t.Reset(wait)
	}
}

// Round does one round of deliveries: up to a batch of events per endpoint,
// the endpoints side by side, and the outbox's pruning when it is due. more
// reports that an endpoint has events waiting beyond the batch. On a shared
// store, a round another gateway is doing is skipped. Before any
// configuration is in force there is nothing to do: in particular nothing is
// pruned, since the endpoints about to be configured may need every event.
func (d *Dispatcher) Round(ctx context.Context) (more bool, err error) {
	eps, ok := d.endpoints()
	if !ok {
		return false, nil
	}
	round := func(ctx context.Context) error {
		mores := make([]bool, len(eps))
		errs := make([]error, len(eps)+1)
		var wg sync.WaitGroup
		for i := range eps {
			wg.Go(func() { mores[i], errs[i] = d.deliver(ctx, &eps[i]) })
		}
		wg.Wait()
		if now := d.Now(); now.Sub(d.lastPrune) >= pruneInterval {
			if errs[len(eps)] = d.prune(ctx, eps, now); errs[len(eps)] == nil {
				d.lastPrune = now
			}
		}
		more = slices.Contains(mores, true)
		return errors.Join(errs...)
	}
	if l, ok := d.Store.(Locker); ok {
		_, err = l.WithLockIfFree(ctx, lockName, round)
		return more, err
	}
	return more, round(ctx)
}

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

// deliver sends ep the events after its cursor, in order, until one fails
// (it is retried after its wait, and nothing after it goes first) or the
// batch is done. The state is saved after each delivery, so a crash repeats
// at most the delivery in flight.
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
		if ctx.Err() != nil {
			return false, nil // stopping: the attempt does not count
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
		if err := d.saveState(ctx, ep.Name, &st); err != nil {
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
	err = send(ctx, d.client, ep, ev.ID, d.Now(), body)
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

// Status is what the API shows of an endpoint.
type Status struct {
	Name   string
	URL    string // without query, fragment or user info
	Events []string
	Retain time.Duration
	// ReplayableFrom is the earliest start Replay takes now (when Retain
	// is not 0).
	ReplayableFrom time.Time
	State
}

// Status returns the delivery state of the endpoints in force.
func (d *Dispatcher) Status(ctx context.Context) ([]Status, error) {
	var out []Status
	eps, _ := d.endpoints()
	for _, ep := range eps {
		st, err := d.loadState(ctx, ep.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, Status{Name: ep.Name, URL: RedactURL(ep.URL), Events: ep.Events,
			Retain: ep.Retain, ReplayableFrom: d.replayableFrom(&ep), State: st})
	}
	return out, nil
}
