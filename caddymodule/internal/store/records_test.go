package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestSession_DeleteRemovesSessionAndIndex(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		u := mustSignIn(t, b, SignIn{Account: account("lena", "lena@example.com", true)}).User
		s := &Session{UserID: u.ID, Email: u.PrimaryEmail(), ExpiresAt: clk.Now().Add(time.Hour), IP: "192.0.2.1"}
		if err := b.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		got, err := b.Session(ctx, s.ID)
		if err != nil || got.UserID != u.ID || got.IP != "192.0.2.1" || got.CreatedAt.IsZero() {
			t.Fatalf("Session = %+v, %v", got, err)
		}
		if err := b.DeleteSession(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Session(ctx, s.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Session after delete = %v, want ErrNotFound", err)
		}
		if n := countPrefix(t, b, prefixUserSess); n != 0 {
			t.Errorf("%d user_sess entries after delete, want 0", n)
		}
		for _, id := range []string{s.ID, NewID("sess"), "", "a/b"} {
			if err := b.DeleteSession(ctx, id); err != nil {
				t.Errorf("DeleteSession(%q) of a missing session: %v", id, err)
			}
		}
	})
}

func TestSession_ExpiresByTheClock(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		u := mustSignIn(t, b, SignIn{Account: account("mia", "", false)}).User
		s := &Session{UserID: u.ID, ExpiresAt: clk.Now().Add(time.Hour)}
		if err := b.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour - time.Second)
		if _, err := b.Session(ctx, s.ID); err != nil {
			t.Errorf("Session a second before expiry: %v", err)
		}
		clk.Advance(time.Second)
		if _, err := b.Session(ctx, s.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Session at expiry = %v, want ErrNotFound", err)
		}
		if list, err := b.Sessions(ctx, u.ID); err != nil || len(list) != 0 {
			t.Errorf("Sessions at expiry = %v, %v", list, err)
		}
	})
}

func TestSessions_ListsTheUsersLiveSessionsOldestFirst(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		nora := mustSignIn(t, b, SignIn{Account: account("nora", "", false)}).User
		otto := mustSignIn(t, b, SignIn{Account: account("otto", "", false)}).User
		var want []string
		for i, ttl := range []time.Duration{time.Hour, time.Minute, 2 * time.Hour} {
			s := &Session{UserID: nora.ID, CreatedAt: clk.Now().Add(time.Duration(i) * time.Second), ExpiresAt: clk.Now().Add(ttl)}
			if err := b.CreateSession(ctx, s); err != nil {
				t.Fatal(err)
			}
			if ttl > time.Minute {
				want = append(want, s.ID)
			}
		}
		if err := b.CreateSession(ctx, &Session{UserID: otto.ID, ExpiresAt: clk.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Minute)
		list, err := b.Sessions(ctx, nora.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range list {
			got = append(got, s.ID)
		}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("Sessions = %v, want %v", got, want)
		}
	})
}

func TestCreateSession_RefusesBadSessions(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		u := mustSignIn(t, b, SignIn{Account: account("pia", "", false)}).User
		live := clk.Now().Add(time.Hour)
		taken := &Session{UserID: u.ID, ExpiresAt: live}
		if err := b.CreateSession(ctx, taken); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name     string
			s        *Session
			notFound bool
		}{
			{"unknown user", &Session{UserID: NewID("user"), ExpiresAt: live}, true},
			{"no user", &Session{ExpiresAt: live}, true},
			{"already expired", &Session{UserID: u.ID, ExpiresAt: clk.Now()}, false},
			{"id in use", &Session{ID: taken.ID, UserID: u.ID, ExpiresAt: live}, false},
			{"id with a slash", &Session{ID: "sess_a/b", UserID: u.ID, ExpiresAt: live}, false},
			{"nil", nil, false},
		} {
			err := b.CreateSession(ctx, tc.s)
			if err == nil || errors.Is(err, ErrNotFound) != tc.notFound {
				t.Errorf("%s: CreateSession = %v, want an error (ErrNotFound: %v)", tc.name, err, tc.notFound)
			}
		}
		if n := countPrefix(t, b, prefixSession); n != 1 {
			t.Errorf("%d sessions stored, want 1", n)
		}
	})
}

func TestEphemeral_TakeReturnsTheRecordOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		ctx := context.Background()
		if err := b.PutEphemeral(ctx, "flow", "state-1", []byte("pending"), time.Minute); err != nil {
			t.Fatal(err)
		}
		got, err := b.TakeEphemeral(ctx, "flow", "state-1")
		if err != nil || string(got) != "pending" {
			t.Fatalf("TakeEphemeral = %q, %v", got, err)
		}
		if _, err := b.TakeEphemeral(ctx, "flow", "state-1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second TakeEphemeral = %v, want ErrNotFound", err)
		}
		for _, id := range []string{"missing", "", string(bytes.Repeat([]byte("x"), 10000))} {
			if _, err := b.TakeEphemeral(ctx, "flow", id); !errors.Is(err, ErrNotFound) {
				t.Errorf("TakeEphemeral(%.10q) = %v, want ErrNotFound", id, err)
			}
		}
	})
}

func TestEphemeral_KindsAreSeparate(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		ctx := context.Background()
		if err := b.PutEphemeral(ctx, "flow", "x", []byte("a"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := b.TakeEphemeral(ctx, "nonce", "x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("taking another kind = %v, want ErrNotFound", err)
		}
		for _, kind := range []string{"", "a/b"} {
			if err := b.PutEphemeral(ctx, kind, "x", nil, time.Minute); err == nil {
				t.Errorf("PutEphemeral with kind %q succeeded", kind)
			}
		}
		if err := b.PutEphemeral(ctx, "flow", "x", nil, 0); err == nil {
			t.Error("PutEphemeral with ttl 0 succeeded")
		}
	})
}

func TestEphemeral_ExpiresByTheClock(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		for _, id := range []string{"early", "late"} {
			if err := b.PutEphemeral(ctx, "nonce", id, []byte(id), 10*time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(10*time.Minute - time.Nanosecond)
		if got, err := b.TakeEphemeral(ctx, "nonce", "early"); err != nil || string(got) != "early" {
			t.Errorf("TakeEphemeral just before expiry = %q, %v", got, err)
		}
		clk.Advance(time.Nanosecond)
		if _, err := b.TakeEphemeral(ctx, "nonce", "late"); !errors.Is(err, ErrNotFound) {
			t.Errorf("TakeEphemeral at expiry = %v, want ErrNotFound", err)
		}
	})
}

func TestEphemeral_ConcurrentTakersHaveOneWinner(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		ctx := context.Background()
		for round := range 5 {
			if err := b.PutEphemeral(ctx, "flow", "contested", []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			var wins, notFound atomic.Int32
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					_, err := b.TakeEphemeral(ctx, "flow", "contested")
					switch {
					case err == nil:
						wins.Add(1)
					case errors.Is(err, ErrNotFound):
						notFound.Add(1)
					default:
						t.Errorf("TakeEphemeral: %v", err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 || notFound.Load() != 19 {
				t.Errorf("round %d: %d winners and %d not found, want 1 and 19", round, wins.Load(), notFound.Load())
			}
		}
	})
}

func TestReads_UnknownOrMalformedIDsAreNotFound(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		ctx := context.Background()
		for _, id := range []string{"", "user_nope", "user/x", "a\x00b"} {
			if _, err := b.User(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("User(%q) = %v, want ErrNotFound", id, err)
			}
			if _, err := b.Session(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("Session(%q) = %v, want ErrNotFound", id, err)
			}
			if accs, err := b.ExternalAccounts(ctx, id); err != nil || len(accs) != 0 {
				t.Errorf("ExternalAccounts(%q) = %v, %v", id, accs, err)
			}
		}
	})
}

func TestReads_CorruptRecordIsAnErrorNotAPanic(t *testing.T) {
	b := openTest(t, Options{InMemory: true})
	ctx := context.Background()
	u := mustSignIn(t, b, SignIn{Account: account("quinn", "", false)}).User
	s := &Session{UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}
	if err := b.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	rawSet(t, b, userKey(u.ID), "{not json")
	rawSet(t, b, sessionKey(s.ID), "[]")
	rawSet(t, b, ephKey("flow", "short"), "abc")
	if _, err := b.User(ctx, u.ID); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("User on a corrupt record = %v", err)
	}
	if _, err := b.Session(ctx, s.ID); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Session on a corrupt record = %v", err)
	}
	if _, err := b.TakeEphemeral(ctx, "flow", "short"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("TakeEphemeral on a truncated record = %v", err)
	}
	if _, err := b.SignIn(ctx, SignIn{Account: account("quinn", "", false)}); err == nil {
		t.Error("SignIn onto a corrupt user succeeded")
	}
}

func BenchmarkSession(b *testing.B) {
	for _, name := range []string{"memory", "disk"} {
		b.Run(name, func(b *testing.B) {
			opts := Options{InMemory: name == "memory"}
			if !opts.InMemory {
				opts.Dir = b.TempDir()
			}
			st := openTest(b, opts)
			ctx := context.Background()
			res, err := st.SignIn(ctx, SignIn{Account: account("bench", "bench@example.com", true)})
			if err != nil {
				b.Fatal(err)
			}
			s := &Session{UserID: res.User.ID, Email: "bench@example.com", Name: "Bench", ExpiresAt: time.Now().Add(time.Hour), UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", IP: "192.0.2.1"}
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
}

func BenchmarkSignIn_Returning(b *testing.B) {
	for _, name := range []string{"memory", "disk"} {
		b.Run(name, func(b *testing.B) {
			opts := Options{InMemory: name == "memory"}
			if !opts.InMemory {
				opts.Dir = b.TempDir()
			}
			st := openTest(b, opts)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.SignIn(ctx, SignIn{Account: account("bench", "bench@example.com", true)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestRedact_HidesTheSecretKeepsTheCause(t *testing.T) {
	cause := fmt.Errorf(`DB::Get key: "sess/sess_abc\x01": %w`, badger.ErrDBClosed)
	err := fmt.Errorf("loading session: %w", redact(cause, "sess_abc\x01"))
	if strings.Contains(err.Error(), "sess_abc") || !errors.Is(err, badger.ErrDBClosed) {
		t.Errorf("redacted error = %q (Is ErrDBClosed: %v)", err, errors.Is(err, badger.ErrDBClosed))
	}
}
