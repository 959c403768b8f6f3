package webhook_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
	"github.com/socialgate/socialgate/caddymodule/internal/store/storetest"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

// pg is the PostgreSQL server of this test binary, started by the first
// test that needs it.
var pg struct {
	once   sync.Once
	server *storetest.PostgresServer
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pg.server != nil {
		if err := pg.server.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping postgres:", err)
		}
	}
	os.Exit(code)
}

// postgresDSN returns a DSN of a schema of its own for t; without a server
// the test is skipped (it fails in CI, which installs PostgreSQL).
func postgresDSN(t *testing.T) string {
	pg.once.Do(func() { pg.server, pg.err = storetest.StartPostgres() })
	if pg.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL tests cannot run in CI: %v", pg.err)
		}
		t.Skipf("skipping PostgreSQL tests: %v", pg.err)
	}
	return pg.server.FreshDSN(t)
}

// Two gateways on one database each run a dispatcher with the same
// endpoint; they take turns, so each event arrives once.
func TestSharedPostgres_TwoDispatchersDeliverEachEventOnce(t *testing.T) {
	dsn := postgresDSN(t)
	rc := newReceiver(t)
	var stores []*postgres.Store
	for range 2 {
		st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, EncryptionKey: bytes.Repeat([]byte{9}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
		d := webhook.New(webhook.Options{Store: st, Payload: func(e *store.Event) any { return api.Event(e) }, Poll: 5 * time.Millisecond})
		d.Configure([]webhook.Endpoint{endpoint("app", rc.URL, secretA)})
		d.Start()
		t.Cleanup(d.Stop)
	}
	const users = 15
	for i := range users {
		_, err := stores[i%2].SignIn(context.Background(), store.SignIn{Account: store.ExternalAccount{
			Issuer: "https://x.example", Subject: fmt.Sprint("user", i)}})
		if err != nil {
			t.Fatal(err)
		}
	}
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
