package webhook_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

// slowReceiver is a receiver that answers 200 after delay, or when the
// dispatcher gives up on the request, and counts the requests it got and
// the ones cut short.
type slowReceiver struct {
	*httptest.Server
	arrived, cut atomic.Int64
}

func newSlowReceiver(t *testing.T, delay time.Duration) *slowReceiver {
	rc := &slowReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // the server notices the client leave only once the body is read
		rc.arrived.Add(1)
		select {
		case <-r.Context().Done():
			rc.cut.Add(1)
		case <-time.After(delay):
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

// running starts a dispatcher on st with eps that polls every 10ms, and
// stops it when the test ends.
func running(t *testing.T, st store.Store, eps ...webhook.Endpoint) *webhook.Dispatcher {
	d := webhook.New(webhook.Options{Store: st, Payload: func(e *store.Event) any { return api.Event(e, "ins_test") },
		Poll: 10 * time.Millisecond, Timeout: 5 * time.Second})
	d.Configure(eps)
	d.Start()
	t.Cleanup(d.Stop)
	return d
}

// eventually polls cond for up to limit and reports how long it took to
// hold, or fails the test.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// A receiver that takes its time with each event (here 300ms, in the field
// 9s) holds back only its own events: another endpoint gets all of a burst
// of 250 events (three batches) while the slow one is still on its first.
func TestDispatcher_ASlowEndpointDelaysNoOther(t *testing.T) {
	fast, slow := newReceiver(t), newSlowReceiver(t, 300*time.Millisecond)
	f := newFixture(t, nil)
	const sessions = 248
	user := f.signIn("una")
	for range sessions {
		f.newSession(user.User.ID)
	}
	running(t, f.st, endpoint("fast", fast.URL, secretA), endpoint("slow", slow.URL, secretA))
	took := eventually(t, 10*time.Second, "every event at the fast endpoint", func() bool { return len(fast.deliveries()) >= sessions+2 })
	t.Logf("the fast endpoint had all %d events after %v; the slow one had %d", sessions+2, took, slow.arrived.Load())
	if n := slow.arrived.Load(); n > 40 {
		t.Errorf("the slow endpoint got %d events in %v: it is not as slow as the test means", n, took)
	}
	got := ids(fast.deliveries())
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("the fast endpoint's deliveries are out of order or repeated")
	}
}

// A configuration that drops an endpoint (a reload without it) cuts the
// delivery in flight to it short and sends it nothing more; the attempt is
// not counted against the event.
func TestConfigure_ADroppedEndpointStopsAtOnce(t *testing.T) {
	kept, gone := newReceiver(t), newSlowReceiver(t, time.Minute)
	f := newFixture(t, nil)
	f.signIn("vic")
	d := running(t, f.st, endpoint("kept", kept.URL, secretA), endpoint("gone", gone.URL, secretA))
	eventually(t, 5*time.Second, "a delivery in flight to the endpoint about to go", func() bool { return gone.arrived.Load() == 1 })
	d.Configure([]webhook.Endpoint{endpoint("kept", kept.URL, secretA)})
	took := eventually(t, 2*time.Second, "the delivery in flight cut short", func() bool { return gone.cut.Load() == 1 })
	t.Logf("the dropped endpoint's delivery was cut %v after the new configuration", took)
	f.signIn("wes")
	eventually(t, 5*time.Second, "the kept endpoint's events", func() bool { return len(kept.deliveries()) == 4 })
	time.Sleep(100 * time.Millisecond)
	if n := gone.arrived.Load(); n != 1 {
		t.Errorf("the dropped endpoint got %d requests, want the 1 cut short", n)
	}
	st, err := f.st.GetMeta(context.Background(), "webhook.endpoint.gone")
	if err == nil && (bytes.Contains(st, []byte(`"attempts"`)) || bytes.Contains(st, []byte(`"last_error"`))) {
		t.Errorf("the cut attempt was counted: %s", st)
	}
}

// A configuration that moves an endpoint to another URL cuts the delivery
// in flight to the old URL short, and the new URL gets that event next.
func TestConfigure_AChangedURLTakesTheNextDelivery(t *testing.T) {
	old, moved := newSlowReceiver(t, time.Minute), newReceiver(t)
	f := newFixture(t, nil)
	f.signIn("xia")
	d := running(t, f.st, endpoint("app", old.URL, secretA))
	eventually(t, 5*time.Second, "a delivery in flight to the old URL", func() bool { return old.arrived.Load() == 1 })
	d.Configure([]webhook.Endpoint{endpoint("app", moved.URL, secretA)})
	eventually(t, 2*time.Second, "the delivery to the old URL cut short", func() bool { return old.cut.Load() == 1 })
	eventually(t, 5*time.Second, "both events at the new URL", func() bool { return len(moved.deliveries()) == 2 })
	if got := types(moved.deliveries()); !slices.Equal(got, []string{store.EventUserCreated, store.EventAccountCreated}) {
		t.Errorf("the new URL got %q", got)
	}
	if n := old.arrived.Load(); n != 1 {
		t.Errorf("the old URL got %d requests, want the 1 cut short", n)
	}
}

// A delivery the endpoint has answered 2xx counts, even when a new
// configuration changes the endpoint in the instant after the answer: the
// endpoint's next delivery, under the new settings, is the next event, not
// the same one again. (A reload cut the worker's context between the
// answer and the bookkeeping, which then took the answered delivery for
// a cut one, and the event went out twice.)
func TestConfigure_ADeliveryAnsweredAsTheEndpointChangesIsNotSentAgain(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, nil)
	f.signIn("yan") // user.created, external_account.created
	var d *webhook.Dispatcher
	var changed atomic.Bool
	// The dispatcher logs each delivery once its answer is in; the first
	// such line changes the endpoint's secrets, as a reload does.
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.DebugLevel)
	logger := zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "webhook delivery" && changed.CompareAndSwap(false, true) {
			d.Configure([]webhook.Endpoint{endpoint("app", rc.URL, secretA, secretB)})
		}
		return nil
	}))
	d = webhook.New(webhook.Options{Store: f.st, Payload: func(e *store.Event) any { return api.Event(e, "ins_test") },
		Poll: 10 * time.Millisecond, Timeout: 5 * time.Second, Logger: logger})
	d.Configure([]webhook.Endpoint{endpoint("app", rc.URL, secretA)})
	d.Start()
	t.Cleanup(d.Stop)
	eventually(t, 5*time.Second, "both events delivered", func() bool { return len(rc.deliveries()) >= 2 })
	time.Sleep(100 * time.Millisecond) // room for a repeat to arrive
	ds := rc.deliveries()
	if !changed.Load() {
		t.Fatal("the configuration never changed mid-delivery: the test proves nothing")
	}
	if got := types(ds); !slices.Equal(got, []string{store.EventUserCreated, store.EventAccountCreated}) {
		t.Errorf("the endpoint got %q, want each event once", got)
	}
}
