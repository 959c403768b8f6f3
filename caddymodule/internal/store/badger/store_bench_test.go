package badger

import (
	"bytes"
	"context"
	"fmt"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The reads of the request path, one goroutine at a time: store.Session on every
// signed-in request, ExternalAccounts on routes with require or
// forward_token, store.User on the API's token endpoint. Each runs on an in-memory
// store and on disk with encryption at rest, as the gateway opens it
// (pool.go); BenchmarkSession (records_test.go) is the parallel session read.
//
//	go test ./caddymodule/internal/store -run '^$' -bench . -benchmem

// benchBackends runs bench on both backends, each with one signed-in user.
func benchBackends(b *testing.B, bench func(b *testing.B, st *Store, user *store.User, sess *store.Session)) {
	for _, name := range []string{"memory", "disk-encrypted"} {
		b.Run(name, func(b *testing.B) {
			opts := Options{InMemory: name == "memory"}
			if !opts.InMemory {
				opts.Dir = b.TempDir()
				opts.EncryptionKey = bytes.Repeat([]byte{7}, 32)
			}
			st := openTest(b, opts)
			ctx := context.Background()
			res, err := st.SignIn(ctx, store.SignIn{Account: account("ada", "ada@example.com", true)})
			if err != nil {
				b.Fatal(err)
			}
			sess := &store.Session{UserID: res.User.ID, Email: "ada@example.com", Name: "Ada Lovelace",
				ExpiresAt: time.Now().Add(time.Hour), UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", IP: "127.0.0.1"}
			if err := st.CreateSession(ctx, sess); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			bench(b, st, res.User, sess)
		})
	}
}

func BenchmarkSessionRead(b *testing.B) {
	benchBackends(b, func(b *testing.B, st *Store, _ *store.User, sess *store.Session) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := st.Session(ctx, sess.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// An unknown id: a signed-out cookie still decodes and costs one lookup.
func BenchmarkSessionRead_Unknown(b *testing.B) {
	benchBackends(b, func(b *testing.B, st *Store, _ *store.User, _ *store.Session) {
		ctx := context.Background()
		id := store.NewID("sess")
		for b.Loop() {
			if _, err := st.Session(ctx, id); err == nil {
				b.Fatal("an unknown session was found")
			}
		}
	})
}

func BenchmarkExternalAccounts(b *testing.B) {
	benchBackends(b, func(b *testing.B, st *Store, user *store.User, _ *store.Session) {
		ctx := context.Background()
		for b.Loop() {
			accs, err := st.ExternalAccounts(ctx, user.ID)
			if err != nil || len(accs) != 1 {
				b.Fatal(accs, err)
			}
		}
	})
}

func BenchmarkUserRead(b *testing.B) {
	benchBackends(b, func(b *testing.B, st *Store, user *store.User, _ *store.Session) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := st.User(ctx, user.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDeleteEventsBacklog prunes an outbox of 50,000 events (what a
// gateway does a minute after it starts on a store whose events were never
// pruned, e.g. after an import). Batches must not rescan the tombstones of
// the batches before them: the cost per event stays flat as the backlog
// grows.
func BenchmarkDeleteEventsBacklog(b *testing.B) {
	for _, n := range []int{10_000, 50_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				st := openTest(b, Options{Dir: b.TempDir(), EncryptionKey: bytes.Repeat([]byte{7}, 32)})
				ctx := context.Background()
				for i := 0; i < n; i += 500 {
					err := st.updateWithEvents(ctx, func(_ *badger.Txn, out *store.Outbox) error {
						for range 500 {
							if err := out.Add(store.Event{Type: store.EventSessionCreated, CreatedAt: time.Now()}); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				if err := st.DeleteEventsBefore(ctx, "evt_g"); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if left, err := st.Events(ctx, "", 10); err != nil || len(left) != 0 {
					b.Fatalf("after pruning: %d events left, %v", len(left), err)
				}
				st.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}
