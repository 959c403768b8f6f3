package session

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/store/cache"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
	"github.com/socialgate/socialgate/caddymodule/internal/store/storetest"
	"github.com/socialgate/socialgate/internal/testkit"
)

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

// gateway is one gateway's manager: cookie key, its own 5 s cache of the
// store, 1 h idle timeout, a 24 h lifetime, on the shared clock.
func gateway(t *testing.T, st store.Store, clk *storetest.Clock) *Manager {
	t.Helper()
	return gatewayCached(t, st, clk, 5*time.Second)
}

// gatewayCached is gateway with a cache of ttl (0: none).
func gatewayCached(t *testing.T, st store.Store, clk *storetest.Clock, ttl time.Duration) *Manager {
	t.Helper()
	m, err := NewManager(cache.New(st, clk.Now).Store(ttl), [][]byte{bytes.Repeat([]byte("k"), 32)}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	m.now = clk.Now
	return m.RememberVerified().WithIdleTimeout(time.Hour)
}

// started signs subject in at st and starts a session through m: its
// record and its cookie.
func started(t *testing.T, st store.Store, m *Manager, subject string) (*store.Session, *http.Cookie) {
	t.Helper()
	ctx := context.Background()
	res, err := st.SignIn(ctx, store.SignIn{Now: m.now(), Account: store.ExternalAccount{Provider: "p", Issuer: "https://i", Subject: subject}})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s, err := m.Start(ctx, rec, httptest.NewRequest(http.MethodGet, "/", nil), res.User, nil, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	return s, rec.Result().Cookies()[0]
}

// signedIn starts a session through m and returns a request carrying it.
func signedIn(t *testing.T, st store.Store, m *Manager) (*store.Session, *http.Request) {
	t.Helper()
	s, c := started(t, st, m, "ada")
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(c)
	return s, r
}

func alive(m *Manager, r *http.Request) bool {
	_, _, err := m.Lookup(r)
	return err == nil
}

// stores runs fn on a Badger store and, when a server can be started, a
// PostgreSQL one, both on clk.
func stores(t *testing.T, fn func(t *testing.T, st store.Store, clk *storetest.Clock)) {
	t.Run("badger", func(t *testing.T) {
		clk := storetest.NewClock()
		st, err := badger.Open(badger.Options{InMemory: true, Now: clk.Now, Logger: fuzzQuietLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st, clk)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := testkit.OwnPostgres(t)
		clk := storetest.NewClock()
		st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn,
			EncryptionKey: bytes.Repeat([]byte("e"), 32), Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, st, clk)
	})
}

// busy uses the session of r through m every 15 minutes for d, writing
// the activity each time.
func busy(clk *storetest.Clock, m *Manager, r *http.Request, d time.Duration) {
	for range d / (15 * time.Minute) {
		clk.Advance(15 * time.Minute)
		alive(m, r)
		m.flushActivity(zap.NewNop())
	}
}

func TestIdleTimeout_AnUnusedSessionIsDeadOnEveryGateway(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store, clk *storetest.Clock) {
		a, b := gateway(t, st, clk), gateway(t, st, clk)
		s, r := signedIn(t, st, a)
		if !s.ExpiresAt.Equal(s.CreatedAt.Add(time.Hour)) || !s.LastActiveAt.Equal(s.CreatedAt) {
			t.Fatalf("a new session expires %v after its start, last active %v: want the idle timeout", s.ExpiresAt.Sub(s.CreatedAt), s.LastActiveAt)
		}
		// Used on B at 50 min, on A at 100 min: each use keeps it alive an
		// hour more on both gateways.
		clk.Advance(50 * time.Minute)
		if !alive(b, r) {
			t.Fatal("B refused the session within the idle timeout")
		}
		b.flushActivity(zap.NewNop())
		clk.Advance(50 * time.Minute)
		if !alive(a, r) {
			t.Fatal("A refused the session used on B 50 minutes ago")
		}
		a.flushActivity(zap.NewNop())
		// Unused for an hour: dead everywhere, and gone from the listings.
		clk.Advance(time.Hour - time.Second)
		if _, err := st.Session(context.Background(), s.ID); err != nil {
			t.Fatalf("the session ended before an hour without use: %v", err)
		}
		clk.Advance(time.Second)
		for name, m := range map[string]*Manager{"A": a, "B": b} {
			if alive(m, r) {
				t.Errorf("%s still accepts a session unused for the idle timeout", name)
			}
		}
		if list, err := st.Sessions(context.Background(), s.UserID); err != nil || len(list) != 0 {
			t.Errorf("Sessions lists %d sessions unused for the idle timeout (%v)", len(list), err)
		}
		// Never past the absolute lifetime, however busy.
		s, r = signedIn(t, st, a)
		if busy(clk, a, r, 24*time.Hour); alive(a, r) || alive(b, r) {
			t.Error("a session used every 15 minutes outlived its 24 h lifetime")
		}
		// Nor past a shorter lifetime it was issued with.
		u, err := st.User(context.Background(), s.UserID)
		if err != nil {
			t.Fatal(err)
		}
		_, token, err := a.Issue(context.Background(), httptest.NewRequest(http.MethodGet, "/", nil), u, "", 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		r = httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		if busy(clk, a, r, 2*time.Hour); alive(a, r) || alive(b, r) {
			t.Error("a session issued for 2 h and used every 15 minutes outlived 2 h")
		}
	})
}

func TestIdleTimeout_RevocationElsewhereStillEndsItWithinTheCacheTTL(t *testing.T) {
	stores(t, func(t *testing.T, st store.Store, clk *storetest.Clock) {
		a, b := gateway(t, st, clk), gateway(t, st, clk)
		_, r := signedIn(t, st, a)
		clk.Advance(10 * time.Minute)
		if !alive(a, r) { // noted: A will write this activity
			t.Fatal("no session")
		}
		if err := b.End(context.Background(), httptest.NewRecorder(), r, nil); err != nil { // signed out on B
			t.Fatal(err)
		}
		a.flushActivity(zap.NewNop()) // A's late write must not revive it
		clk.Advance(5 * time.Second)  // the session cache's TTL
		if alive(a, r) || alive(b, r) {
			t.Error("a session signed out on B lives on past A's cache TTL after A recorded its activity")
		}
	})
}

func TestIdleTimeout_NoStoreWritePerRequest(t *testing.T) {
	clk := storetest.NewClock()
	mem, err := badger.Open(badger.Options{InMemory: true, Now: clk.Now, Logger: fuzzQuietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	st := &touchCounter{Store: mem}
	for _, cacheTTL := range []time.Duration{5 * time.Second, 0} {
		m := gatewayCached(t, st, clk, cacheTTL)
		s, r := signedIn(t, st, m)
		calls := st.calls.Load()
		for range 1000 { // 1000 requests over 50 minutes
			clk.Advance(3 * time.Second)
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
		if err != nil || clk.Now().Sub(got.LastActiveAt) > 3*time.Minute {
			t.Fatalf("cache %v: after the flush the session was last active %v ago (%v)", cacheTTL, clk.Now().Sub(got.LastActiveAt), err)
		}
		st.touches.Store(0)
	}
}

func TestRunActivity_WritesInTheBackgroundAndOnStop(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true, Logger: fuzzQuietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := storetest.NewClock()
	m := gateway(t, st, clk)
	m.now = time.Now // RunActivity ticks in real time: every idle/20
	m.WithIdleTimeout(2 * time.Second)
	s, r := signedIn(t, st, m)
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

// TestStart_ALinkRenewsNoLifetime: a session that a connect, reauthorize or
// re-authentication replaces used to get a whole new lifetime, so a native
// ID-token sign-in (24 hours) became a 7-day session through a connect
// flow. The new session now ends when the one it replaces would have.
func TestStart_ALinkRenewsNoLifetime(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true, Logger: fuzzQuietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := NewManager(st, [][]byte{bytes.Repeat([]byte("k"), 32)}, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := st.SignIn(ctx, store.SignIn{Now: m.now(), Account: store.ExternalAccount{Provider: "p", Issuer: "https://i", Subject: "ada"}})
	if err != nil {
		t.Fatal(err)
	}
	native, _, err := m.Issue(ctx, httptest.NewRequest(http.MethodGet, "/", nil), res.User, res.Account.ID, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	old := *native
	old.AbandonAt, old.ExpiresAt = time.Time{}, m.now().Add(2*time.Hour) // recorded before AbandonAt was
	for _, tc := range []struct {
		name     string
		previous *store.Session
		want     time.Duration
	}{
		{"a sign-in", nil, 7 * 24 * time.Hour},
		{"a link from a native ID-token session", native, 24 * time.Hour},
		{"a link from a session without AbandonAt", &old, 2 * time.Hour},
	} {
		rec := httptest.NewRecorder()
		s, err := m.Start(ctx, rec, httptest.NewRequest(http.MethodGet, "/", nil), res.User, tc.previous, Auth{})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.AbandonAt.Sub(m.now()); got > tc.want || got < tc.want-time.Minute {
			t.Errorf("%s: the new session ends in %v, want %v", tc.name, got.Round(time.Minute), tc.want)
		}
		if c := rec.Result().Cookies()[0]; time.Duration(c.MaxAge)*time.Second > tc.want {
			t.Errorf("%s: the cookie lives %ds, longer than %v", tc.name, c.MaxAge, tc.want)
		}
	}
}

// A use noted near the end of the idle timeout asks for a flush at once:
// waiting for the next tick would let the store end the session its person
// is using. Other uses wait for the tick, and a use already pending is not
// noted again.
func TestNote_AsksForAFlushOnlyWhenTheStoreWouldEndTheSessionFirst(t *testing.T) {
	for _, tc := range []struct {
		name      string
		idle      time.Duration // since the session's recorded activity
		wantFlush bool
	}{
		{"used after 10 minutes", 10 * time.Minute, false},
		{"used 5 minutes before it ends", 55 * time.Minute, false},
		{"used 90 seconds before it ends", 58*time.Minute + 30*time.Second, true},
		{"used a second before it ends", time.Hour - time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := storetest.NewClock()
			st, err := badger.Open(badger.Options{InMemory: true, Now: clk.Now, Logger: fuzzQuietLogger{}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			m := gateway(t, st, clk) // idle 1 h: activity recorded per minute
			_, r := signedIn(t, st, m)
			clk.Advance(tc.idle)
			used := clk.Now()
			if !alive(m, r) {
				t.Fatal("no session")
			}
			if asked := len(m.activity.flush) == 1; asked != tc.wantFlush {
				t.Errorf("asked for a flush: %v; want %v", asked, tc.wantFlush)
			}
			clk.Advance(time.Second)
			alive(m, r)
			if touches := m.activity.take(); len(touches) != 1 || !touches[0].At.Equal(used) {
				t.Errorf("pending after two uses: %+v; want the first use, once", touches)
			}
		})
	}
}
