package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
	"github.com/socialgate/socialgate/internal/testkit"
)

// pg is the PostgreSQL server of this test binary, started by the first
// test that needs it.
var pg testkit.SharedPostgres

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping postgres:", err)
	}
	os.Exit(code)
}

// postgresDSN returns a DSN of a schema of its own for t; without a server
// the test is skipped (it fails in CI, which installs PostgreSQL).
func postgresDSN(t *testing.T) string { return pg.DSN(t) }

// twoGateways opens one fresh database twice, as two gateways do.
func twoGateways(t *testing.T) []*postgres.Store {
	dsn := postgresDSN(t)
	var stores []*postgres.Store
	for range 2 {
		st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, EncryptionKey: bytes.Repeat([]byte{9}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
	}
	return stores
}

// signInUsers signs n new users in, each on the next gateway in turn: two
// events each.
func signInUsers(t *testing.T, stores []*postgres.Store, n int) {
	for i := range n {
		_, err := stores[i%len(stores)].SignIn(context.Background(), store.SignIn{Account: store.ExternalAccount{
			Issuer: "https://x.example", Subject: fmt.Sprint("user", i)}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Two gateways on one database each run a dispatcher with the same
// endpoint; they take turns, so each event arrives once.
func TestSharedPostgres_TwoDispatchersDeliverEachEventOnce(t *testing.T) {
	rc := newReceiver(t)
	stores := twoGateways(t)
	for _, st := range stores {
		running(t, st, endpoint("app", rc.URL, secretA))
	}
	const users = 15
	signInUsers(t, stores, users)
	deadline := time.Now().Add(20 * time.Second)
	for len(rc.deliveries()) < 2*users && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // time for a duplicate to show up
	seen := map[string]int{}
	var last string
	for _, d := range rc.deliveries() {
		seen[d.ID()]++
		if d.ID() <= last {
			t.Errorf("event %s arrived after %s", d.ID(), last)
		}
		last = d.ID()
	}
	if len(seen) != 2*users {
		t.Errorf("%d distinct events arrived, want %d", len(seen), 2*users)
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("event %s arrived %d times", id, n)
		}
	}
}

// Two gateways on one database, two endpoints, one of them slow: the fast
// one gets every event promptly and once, whichever gateway delivers it,
// while the slow one is still on its first; the slow one gets its events
// once each and in order, never from both gateways at a time.
func TestSharedPostgres_ASlowEndpointDelaysNoOtherOnEitherGateway(t *testing.T) {
	fast, slow := newReceiver(t), newSlowReceiver(t, 300*time.Millisecond)
	stores := twoGateways(t)
	const users = 70 // 140 events: more than a batch
	signInUsers(t, stores, users)
	for _, st := range stores {
		running(t, st, endpoint("fast", fast.URL, secretA), endpoint("slow", slow.URL, secretA))
	}
	took := eventually(t, 10*time.Second, "every event at the fast endpoint", func() bool { return len(fast.deliveries()) >= 2*users })
	t.Logf("the fast endpoint had all %d events after %v; the slow one had %d", 2*users, took, slow.arrived.Load())
	if n := slow.arrived.Load(); n > 20 {
		t.Errorf("the slow endpoint got %d events in %v: it is not as slow as the test means", n, took)
	}
	time.Sleep(100 * time.Millisecond) // time for a duplicate to show up
	got := ids(fast.deliveries())
	if len(got) != 2*users || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("the fast endpoint got %d deliveries for %d events, out of order or repeated", len(got), 2*users)
	}
	if n := slow.cut.Load(); n != 0 {
		t.Errorf("%d deliveries to the slow endpoint were cut short", n)
	}
}

// A replay asked of one of two gateways is carried out once, by whichever
// takes the endpoint's next turn: each event comes again once, not once
// per gateway.
func TestSharedPostgres_AReplayIsCarriedOutOnce(t *testing.T) {
	rc := newReceiver(t)
	stores := twoGateways(t)
	ep := endpoint("app", rc.URL, secretA)
	ep.Retain = time.Hour
	var ds []*webhook.Dispatcher
	for _, st := range stores {
		ds = append(ds, running(t, st, ep))
	}
	from := time.Now()
	const users = 10
	signInUsers(t, stores, users)
	eventually(t, 10*time.Second, "every event", func() bool { return len(rc.deliveries()) == 2*users })
	if err := ds[1].Replay(context.Background(), "app", from); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "every event again", func() bool { return len(rc.deliveries()) >= 4*users })
	time.Sleep(200 * time.Millisecond) // time for a third copy to show up
	got := ids(rc.deliveries())
	if len(got) != 4*users || !slices.Equal(got[:2*users], got[2*users:]) {
		t.Errorf("%d deliveries for %d events and one replay of them all, want each event twice in all, in order", len(got), 2*users)
	}
}
