package webhook

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Defaults of Options and bounds of the work done per turn.
const (
	DefaultPoll = time.Second
	// batch is how many events one turn at an endpoint reads.
	batch = 100
	// saveAfterStop bounds the saving of a delivery answered just as its
	// worker was stopped.
	saveAfterStop = 5 * time.Second
	// pruneInterval is how often the outbox is pruned.
	pruneInterval = time.Minute
	// forgetAfter is how long an endpoint no gateway configures any more
	// keeps the events it has not had.
	forgetAfter = 24 * time.Hour
	// keptFailures is how many given-up events each endpoint's state lists.
	keptFailures = 10
	// pruneLock is the lock the gateways of a shared store take turns
	// pruning at; each endpoint's lock is named after its state.
	pruneLock = "webhook.prune"
	// registryName is the meta value listing the endpoints lately configured.
	registryName = "webhook.endpoints"
)

// Options configure a Dispatcher.
type Options struct {
	// Store is where the events and each endpoint's state are; when it is
	// a store.Locker, the gateways that share it take turns at each endpoint.
	Store store.Store
	// Payload turns an event into the JSON object posted for it. Required.
	Payload func(*store.Event) any
	// Timeout bounds each delivery to an endpoint that sets no Timeout of
	// its own. Default: DefaultTimeout.
	Timeout time.Duration
	// Poll is how often each endpoint's events are looked for. Default: 1s.
	Poll   time.Duration
	Now    func() time.Time
	Logger *zap.Logger
}

// Dispatcher delivers the events of one store to the endpoints of the
// newest configuration that uses it. Each endpoint has a worker of its own,
// which goes through the outbox from the endpoint's own position, one
// delivery at a time: an endpoint that is slow, down or hanging holds back
// its own events only, and no more deliveries are in flight than there are
// endpoints. Safe for concurrent use.
type Dispatcher struct {
	Options

	mu      sync.Mutex
	configs []*[]Endpoint      // newest last; see Configure
	ctx     context.Context    // from Start to Stop: the workers' parent
	cancel  context.CancelFunc // ends ctx
	workers map[string]*worker // by endpoint name, the latest of each
	wg      sync.WaitGroup     // the workers and the pruning loop

	lastPrune time.Time // of the pruning loop
}

// worker delivers to one endpoint until its ctx ends.
type worker struct {
	ep     Endpoint
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}
	done   chan struct{} // closed once the worker has let go of the endpoint
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
	return &Dispatcher{Options: o, workers: map[string]*worker{}}
}

// Configure makes eps the endpoints until release is called. Configurations
// stack: the newest one not released is in force, so a configuration that
// replaces another takes over at once, and releasing a newer one that failed
// to start brings the older back. An endpoint that the configuration taking
// over drops, or changes (its URL, secrets or any other setting), has its
// delivery in flight cut short at once; the cut attempt does not count, and
// a changed endpoint's next delivery is made under its new settings.
func (d *Dispatcher) Configure(eps []Endpoint) (release func()) {
	cfg := &eps
	d.mu.Lock()
	d.configs = append(d.configs, cfg)
	d.reconcile()
	d.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			d.mu.Lock()
			d.configs = slices.DeleteFunc(d.configs, func(c *[]Endpoint) bool { return c == cfg })
			d.reconcile()
			d.mu.Unlock()
		})
	}
}

// endpoints returns the endpoints in force; ok is false while no
// configuration is (before the first starts).
func (d *Dispatcher) endpoints() (eps []Endpoint, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inForce()
}

func (d *Dispatcher) inForce() (eps []Endpoint, ok bool) {
	if len(d.configs) == 0 {
		return nil, false
	}
	return *d.configs[len(d.configs)-1], true
}

// Wake makes every endpoint's worker look for events now rather than at its
// next poll.
func (d *Dispatcher) Wake() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Start runs a worker for each endpoint in force, and the outbox's
// pruning, in goroutines until Stop.
func (d *Dispatcher) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	d.mu.Lock()
	d.ctx, d.cancel = ctx, cancel
	d.reconcile()
	d.mu.Unlock()
	d.wg.Go(func() { d.pruneLoop(ctx) })
}

// Stop ends the workers, cutting the deliveries in flight short (they are
// attempted again later, not counted as failed), and waits for them.
func (d *Dispatcher) Stop() {
	d.mu.Lock()
	cancel := d.cancel
	d.ctx, d.cancel = nil, nil
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		d.wg.Wait()
	}
}

// reconcile, with d.mu held, ends the workers of endpoints that are not in
// force as they are, and starts one for each endpoint in force without one.
func (d *Dispatcher) reconcile() {
	if d.ctx == nil {
		return
	}
	eps, _ := d.inForce()
	want := map[string]*Endpoint{}
	for i := range eps {
		want[eps[i].Name] = &eps[i]
	}
	for name, w := range d.workers {
		if ep := want[name]; ep == nil || !reflect.DeepEqual(*ep, w.ep) {
			w.cancel()
		}
	}
	for name, ep := range want {
		prev := d.workers[name]
		if prev != nil && prev.ctx.Err() == nil {
			continue
		}
		w := &worker{ep: *ep, wake: make(chan struct{}, 1), done: make(chan struct{})}
		w.ctx, w.cancel = context.WithCancel(d.ctx)
		d.workers[name] = w
		d.wg.Go(func() { d.work(w, prev) })
	}
}

// work is w's loop: a turn at its endpoint at each poll, or at once while
// events wait beyond a batch.
func (d *Dispatcher) work(w *worker, prev *worker) {
	defer func() {
		d.mu.Lock()
		if d.workers[w.ep.Name] == w {
			delete(d.workers, w.ep.Name)
		}
		d.mu.Unlock()
		close(w.done)
	}()
	if prev != nil {
		// One worker per endpoint at a time: the one it replaces first saves
		// the endpoint's state and gives back its lock.
		select {
		case <-prev.done:
		case <-w.ctx.Done():
			return
		}
	}
	var lastErr time.Time
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
		var more bool
		_, err := d.withLock(w.ctx, stateName(w.ep.Name), func() (err error) {
			more, err = d.deliver(w.ctx, &w.ep)
			return err
		})
		if err != nil && w.ctx.Err() == nil && d.Now().Sub(lastErr) >= time.Minute {
			lastErr = d.Now()
			d.Logger.Warn("webhooks: reading or updating the outbox failed; retrying",
				zap.String("endpoint", w.ep.Name), zap.Error(err))
		}
		wait := d.Poll
		if more {
			wait = 0
		}
		t.Reset(wait)
	}
}

// withLock runs fn holding the lock called name when the store is shared,
// and reports whether it ran: when another gateway holds the lock, the
// work is that gateway's this time.
func (d *Dispatcher) withLock(ctx context.Context, name string, fn func() error) (bool, error) {
	l, shared := d.Store.(store.Locker)
	if !shared {
		return true, fn()
	}
	ok, err := l.TryLock(ctx, name)
	if !ok || err != nil {
		return false, err
	}
	defer l.Unlock(name)
	return true, fn()
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
