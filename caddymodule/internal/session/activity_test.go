package session

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
	"github.com/socialgate/socialgate/caddymodule/internal/store/storetest"
)

// clock is a test's time, shared by its store and its gateways.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// touchCounter counts what reaches the store's TouchSessions.
type touchCounter struct {
	store.Store
	calls, touches atomic.Int64
}

func (c *touchCounter) TouchSessions(ctx context.Context, touches []store.SessionTouch) error {
	c.calls.Add(1)
	c.touches.Add(int64(len(touches)))
	return c.Store.TouchSessions(ctx, touches)
}

// gateway is one gateway's manager: cookie key, 5 s cache, 1 h idle
// timeout, a 24 h lifetime, on the shared clock.
func gateway(t *testing.T, st store.Store, clk *clock) *Manager {
	t.Helper()
	m, err := NewManager(st, [][]byte{bytes.Repeat([]byte("k"), 32)}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	m.now = clk.now
	return m.WithCache(5 * time.Second).WithIdleTimeout(time.Hour)
}

// signedIn starts a session through m and returns a request carrying it.
func signedIn(t *testing.T, st store.Store, m *Manager, clk *clock) (*store.Session, *http.Request) {
	t.Helper()
	ctx := context.Background()
	res, err := st.SignIn(ctx, store.SignIn{Now: clk.now(), Account: store.ExternalAccount{Provider: "p", Issuer: "https://i", Subject: "ada"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s, err := m.Start(ctx, rec, httptest.NewRequest(http.MethodGet, "/", nil), res.User, nil, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(rec.Result().Cookies()[0])
	return s, r
}

func alive(m *Manager, r *http.Request) bool {
	_, _, err := m.Lookup(r)
	return err == nil
}

// stores runs fn on a Badger store and, when a server can be started, a
// PostgreSQL one, both on clk.
func stores(t *testing.T, fn func(t *testing.T, st store.Store, clk *clock)) {
	t.Run("badger", func(t *testing.T) {
		clk := &clock{t: time.Now()}
		st, err := store.Open(store.Options{InMemory: true, Now: clk.now, Logger: fuzzQuietLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st, clk)
	})
	t.Run("postgres", func(t *testing.T) {
		server, err := storetest.StartPostgres()
		if errors.Is(err, storetest.ErrNoPostgres) && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { server.Stop() })
		clk := &clock{t: time.Now()}
		st, err := postgres.Open(context.Background(), postgres.Options{DSN: server.FreshDSN(t),
			EncryptionKey: bytes.Repeat([]byte("e"), 32), Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st, clk)
	})
}

func TestIdleTimeout_AnUnusedSessionIsDeadOnEveryGateway(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store, clk *clock) {
		a, b := gateway(t, st, clk), gateway(t, st, clk)
		s, r := signedIn(t, st, a, clk)
		if !s.ExpiresAt.Equal(s.CreatedAt.Add(time.Hour)) || !s.LastActiveAt.Equal(s.CreatedAt) {
			t.Fatalf("a new session expires %v after its start, last active %v: want the idle timeout", s.ExpiresAt.Sub(s.CreatedAt), s.LastActiveAt)
		}
		// Used on B at 50 min, on A at 100 min: each use keeps it alive an
		// hour more on both gateways.
		clk.advance(50 * time.Minute)
		if !alive(b, r) {
			t.Fatal("B refused the session within the idle timeout")
		}
		b.flushActivity(zap.NewNop())
		clk.advance(50 * time.Minute)
		if !alive(a, r) {
			t.Fatal("A refused the session used on B 50 minutes ago")
		}
		a.flushActivity(zap.NewNop())
		// Unused for an hour: dead everywhere, and gone from the listings.
		clk.advance(time.Hour - time.Second)
		if _, err := st.Session(context.Background(), s.ID); err != nil {
			t.Fatalf("the session ended before an hour without use: %v", err)
		}
		clk.advance(time.Second)
		for name, m := range map[string]*Manager{"A": a, "B": b} {
			if alive(m, r) {
				t.Errorf("%s still accepts a session unused for the idle timeout", name)
			}
		}
		if list, err := st.Sessions(context.Background(), s.UserID); err != nil || len(list) != 0 {
			t.Errorf("Sessions lists %d sessions unused for the idle timeout (%v)", len(list), err)
		}
		// Never past the absolute lifetime, however busy.
		s, r = signedIn(t, st, a, clk)
		for range 24 * 4 {
			clk.advance(15 * time.Minute)
			alive(a, r)
			a.flushActivity(zap.NewNop())
		}
		if alive(a, r) || alive(b, r) {
			t.Error("a session used every 15 minutes outlived its 24 h lifetime")
		}
	})
}

func TestIdleTimeout_RevocationElsewhereStillEndsItWithinTheCacheTTL(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store, clk *clock) {
		a, b := gateway(t, st, clk), gateway(t, st, clk)
		_, r := signedIn(t, st, a, clk)
		clk.advance(10 * time.Minute)
		if !alive(a, r) { // noted: A will write this activity
			t.Fatal("no session")
		}
		if err := b.End(context.Background(), httptest.NewRecorder(), r); err != nil { // signed out on B
			t.Fatal(err)
		}
		a.flushActivity(zap.NewNop()) // A's late write must not revive it
		clk.advance(5 * time.Second)  // the session cache's TTL
		if alive(a, r) || alive(b, r) {
			t.Error("a session signed out on B lives on past A's cache TTL after A recorded its activity")
		}
	})
}

func TestIdleTimeout_NoStoreWritePerRequest(t *testing.T) {
	clk := &clock{t: time.Now()}
	mem, err := store.Open(store.Options{InMemory: true, Now: clk.now, Logger: fuzzQuietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	st := &touchCounter{Store: mem}
	for _, cacheTTL := range []time.Duration{5 * time.Second, 0} {
		m := gateway(t, st, clk).WithCache(cacheTTL)
		s, r := signedIn(t, st, m, clk)
		calls := st.calls.Load()
		for range 1000 { // 1000 requests over 50 minutes
			clk.advance(3 * time.Second)
			if !alive(m, r) {
				t.Fatal("the session died while in use")
			}
		}
		if n := st.calls.Load() - calls; n != 0 {
			t.Fatalf("cache %v: %d store writes on the request path", cacheTTL, n)
		}
		m.flushActivity(zap.NewNop())
		if n, touched := st.calls.Load()-calls, st.touches.Load(); n != 1 || touched == 0 {
			t.Fatalf("cache %v: the flush made %d writes", cacheTTL, n)
		}
		got, err := st.Session(context.Background(), s.ID)
		if err != nil || clk.now().Sub(got.LastActiveAt) > 3*time.Minute {
			t.Fatalf("cache %v: after the flush the session was last active %v ago (%v)", cacheTTL, clk.now().Sub(got.LastActiveAt), err)
		}
		st.touches.Store(0)
	}
}

func TestRunActivity_WritesInTheBackgroundAndOnStop(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true, Logger: fuzzQuietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := &clock{t: time.Now()}
	m := gateway(t, st, clk)
	m.now = time.Now // RunActivity ticks in real time: every idle/20
	m.WithIdleTimeout(2 * time.Second)
	s, r := signedIn(t, st, m, clk)
	stop := m.RunActivity(zap.NewNop())
	time.Sleep(150 * time.Millisecond)
	alive(m, r)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := st.Session(context.Background(), s.ID)
		if err == nil && got.LastActiveAt.After(s.LastActiveAt) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background flush never recorded the activity")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond)
	alive(m, r)
	stop()
	if m.activity.take() != nil {
		t.Error("stop left activity unwritten")
	}
	stop() // twice is harmless
}
