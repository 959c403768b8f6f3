package store

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// The reads of the request path, one goroutine at a time: Session on every
// signed-in request, ExternalAccounts on routes with require or
// forward_token, User on the API's token endpoint. Each runs on an in-memory
// store and on disk with encryption at rest, as the gateway opens it
// (pool.go); BenchmarkSession (records_test.go) is the parallel session read.
//
//	go test ./caddymodule/internal/store -run '^$' -bench . -benchmem

// benchBackends runs bench on both backends, each with one signed-in user.
func benchBackends(b *testing.B, bench func(b *testing.B, st *Badger, user *User, sess *Session)) {
	for _, name := range []string{"memory", "disk-encrypted"} {
		b.Run(name, func(b *testing.B) {
			opts := Options{InMemory: name == "memory"}
			if !opts.InMemory {
				opts.Dir = b.TempDir()
				opts.EncryptionKey = bytes.Repeat([]byte{7}, 32)
			}
			st := openTest(b, opts)
			ctx := context.Background()
			res, err := st.SignIn(ctx, SignIn{Account: account("ada", "ada@example.com", true)})
			if err != nil {
				b.Fatal(err)
			}
			sess := &Session{UserID: res.User.ID, Email: "ada@example.com", Name: "Ada Lovelace",
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
	benchBackends(b, func(b *testing.B, st *Badger, _ *User, sess *Session) {
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
	benchBackends(b, func(b *testing.B, st *Badger, _ *User, _ *Session) {
		ctx := context.Background()
		id := NewID("sess")
		for b.Loop() {
			if _, err := st.Session(ctx, id); err == nil {
				b.Fatal("an unknown session was found")
			}
		}
	})
}

func BenchmarkExternalAccounts(b *testing.B) {
	benchBackends(b, func(b *testing.B, st *Badger, user *User, _ *Session) {
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
	benchBackends(b, func(b *testing.B, st *Badger, user *User, _ *Session) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := st.User(ctx, user.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
