package badger

import (
	"context"
	"errors"
	"fmt"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TestSession_DeleteRemovesSessionAndIndex checks that deleting a session
// leaves no idx/user_sess entry. What the interface shows is storetest's
// Session_CreateGetDelete.
func TestSession_DeleteRemovesSessionAndIndex(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Store, clk *fakeClock) {
		ctx := context.Background()
		u := mustSignIn(t, b, store.SignIn{Account: account("lena", "lena@example.com", true)}).User
		s := &store.Session{UserID: u.ID, ExpiresAt: clk.Now().Add(time.Hour)}
		if err := b.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if n := countPrefix(t, b, prefixUserSess); n != 1 {
			t.Fatalf("%d user_sess entries after create, want 1", n)
		}
		if err := b.DeleteSession(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if n := countPrefix(t, b, prefixUserSess); n != 0 {
			t.Errorf("%d user_sess entries after delete, want 0", n)
		}
		if n := countPrefix(t, b, prefixSession); n != 0 {
			t.Errorf("%d sessions stored after delete, want 0", n)
		}
	})
}

// TestCreateSession_RefusesBadSessions checks, besides the errors (as
// storetest's CreateSession_RefusesBadSessions does), that no refused session
// is stored, whoever it names.
func TestCreateSession_RefusesBadSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Store, clk *fakeClock) {
		ctx := context.Background()
		u := mustSignIn(t, b, store.SignIn{Account: account("pia", "", false)}).User
		live := clk.Now().Add(time.Hour)
		taken := &store.Session{UserID: u.ID, ExpiresAt: live}
		if err := b.CreateSession(ctx, taken); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name     string
			s        *store.Session
			notFound bool
		}{
			{"unknown user", &store.Session{UserID: store.NewID("user"), ExpiresAt: live}, true},
			{"no user", &store.Session{ExpiresAt: live}, true},
			{"already expired", &store.Session{UserID: u.ID, ExpiresAt: clk.Now()}, false},
			{"id in use", &store.Session{ID: taken.ID, UserID: u.ID, ExpiresAt: live}, false},
			{"id with a slash", &store.Session{ID: "sess_a/b", UserID: u.ID, ExpiresAt: live}, false},
			{"nil", nil, false},
		} {
			err := b.CreateSession(ctx, tc.s)
			if err == nil || errors.Is(err, store.ErrNotFound) != tc.notFound {
				t.Errorf("%s: CreateSession = %v, want an error (store.ErrNotFound: %v)", tc.name, err, tc.notFound)
			}
		}
		if n := countPrefix(t, b, prefixSession); n != 1 {
			t.Errorf("%d sessions stored, want 1", n)
		}
	})
}

func TestReads_CorruptRecordIsAnErrorNotAPanic(t *testing.T) {
	b := openTest(t, Options{InMemory: true})
	ctx := context.Background()
	u := mustSignIn(t, b, store.SignIn{Account: account("quinn", "", false)}).User
	s := &store.Session{UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}
	if err := b.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	rawSet(t, b, userKey(u.ID), "{not json")
	rawSet(t, b, sessionKey(s.ID), "[]")
	rawSet(t, b, ephKey("flow", "short"), "abc")
	if _, err := b.User(ctx, u.ID); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("store.User on a corrupt record = %v", err)
	}
	if _, err := b.Session(ctx, s.ID); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("store.Session on a corrupt record = %v", err)
	}
	if _, err := b.TakeEphemeral(ctx, "flow", "short"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeEphemeral on a truncated record = %v", err)
	}
	if _, err := b.SignIn(ctx, store.SignIn{Account: account("quinn", "", false)}); err == nil {
		t.Error("store.SignIn onto a corrupt user succeeded")
	}
}

func BenchmarkSession(b *testing.B) {
	benchEachBackend(b, func(b *testing.B, st *Store) {
		ctx := context.Background()
		res, err := st.SignIn(ctx, store.SignIn{Account: account("bench", "bench@example.com", true)})
		if err != nil {
			b.Fatal(err)
		}
		s := &store.Session{UserID: res.User.ID, Email: "bench@example.com", Name: "Bench", ExpiresAt: time.Now().Add(time.Hour), UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", IP: "192.0.2.1"}
		if err := st.CreateSession(ctx, s); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := st.Session(ctx, s.ID); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkSignIn_Returning(b *testing.B) {
	benchEachBackend(b, func(b *testing.B, st *Store) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.SignIn(ctx, store.SignIn{Account: account("bench", "bench@example.com", true)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestRedact_HidesTheSecretKeepsTheCause(t *testing.T) {
	cause := fmt.Errorf(`DB::Get key: "sess/sess_abc\x01": %w`, badger.ErrDBClosed)
	err := fmt.Errorf("loading session: %w", store.Redact(cause, "sess_abc\x01"))
	if strings.Contains(err.Error(), "sess_abc") || !errors.Is(err, badger.ErrDBClosed) {
		t.Errorf("redacted error = %q (Is ErrDBClosed: %v)", err, errors.Is(err, badger.ErrDBClosed))
	}
}
