package cache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/store/cache"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
	"github.com/socialgate/socialgate/caddymodule/internal/store/storetest"
	"github.com/socialgate/socialgate/internal/testkit"
)

type silent struct{}

func (silent) Errorf(string, ...any)   {}
func (silent) Warningf(string, ...any) {}
func (silent) Infof(string, ...any)    {}
func (silent) Debugf(string, ...any)   {}

// TestConformance: a store seen through the cache keeps every promise of
// store.Store, each test reading through a view that serves what it read
// within the hour, so that every write must forget what it made stale.
func TestConformance(t *testing.T) {
	t.Run("badger", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			b, err := badger.Open(badger.Options{InMemory: true, Now: storetest.Now(t), Logger: silent{}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return cache.New(b, storetest.Now(t)).Store(time.Hour)
		})
	})
	t.Run("postgres", func(t *testing.T) {
		server := testkit.OwnPostgresServer(t)
		storetest.Run(t, func(t *testing.T) store.Store {
			pg, err := postgres.Open(context.Background(), postgres.Options{DSN: server.FreshDSN(t),
				EncryptionKey: make([]byte, 32), Now: storetest.Now(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pg.Close() })
			v := cache.New(pg, storetest.Now(t)).Store(time.Hour)
			if _, ok := v.(store.Shared); !ok {
				t.Fatal("the view of a PostgreSQL store is not store.Shared: its refresh and delivery locks are lost")
			}
			return v
		})
	})
}

// counting is a store that counts the reads the cache may serve.
type counting struct {
	store.Store
	sessions, users, accounts atomic.Int64
	// hold, when set, is waited on by Session before it reads.
	hold chan struct{}
}

func (c *counting) Session(ctx context.Context, id string) (*store.Session, error) {
	c.sessions.Add(1)
	if c.hold != nil {
		<-c.hold
	}
	return c.Store.Session(ctx, id)
}

func (c *counting) User(ctx context.Context, id string) (*store.User, error) {
	c.users.Add(1)
	return c.Store.User(ctx, id)
}

func (c *counting) ExternalAccounts(ctx context.Context, id string) ([]*store.ExternalAccount, error) {
	c.accounts.Add(1)
	return c.Store.ExternalAccounts(ctx, id)
}

// fixture is a Badger store with one user, one linked account and one
// session, behind a counting store, behind the cache.
type fixture struct {
	inner *counting
	c     *cache.Cache
	clk   *storetest.Clock
	user  *store.User
	acc   *store.ExternalAccount
	sess  *store.Session
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := storetest.NewClock()
	b, err := badger.Open(badger.Options{InMemory: true, Now: clk.Now, Logger: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	res, err := b.SignIn(ctx, store.SignIn{Now: clk.Now(), Account: store.ExternalAccount{Provider: "test", Issuer: "https://op.example",
		Subject: "ada", Email: "ada@example.com", EmailVerified: true, Tokens: store.TokenSet{AccessToken: "at"}}})
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	sess := &store.Session{ID: store.NewID("sess"), UserID: res.User.ID, AccountID: res.Account.ID, CreatedAt: now,
		ExpiresAt: now.Add(time.Hour), AbandonAt: now.Add(time.Hour), LastActiveAt: now}
	if err := b.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	inner := &counting{Store: b}
	return &fixture{inner: inner, c: cache.New(inner, clk.Now), clk: clk, user: res.User, acc: res.Account, sess: sess}
}

// reads reads the session, the user and the accounts through v and
// returns how many of those reads reached the store.
func (f *fixture) reads(t *testing.T, v store.Store) (sessions, users, accounts int64) {
	t.Helper()
	s0, u0, a0 := f.inner.sessions.Load(), f.inner.users.Load(), f.inner.accounts.Load()
	ctx := context.Background()
	v.Session(ctx, f.sess.ID)
	v.User(ctx, f.user.ID)
	v.ExternalAccounts(ctx, f.user.ID)
	return f.inner.sessions.Load() - s0, f.inner.users.Load() - u0, f.inner.accounts.Load() - a0
}

// TestStore_ServesWithinTTLAndForgetsOnWrites: after a first read, a view
// serves the session, the user and the accounts from memory until its TTL
// has passed, or until a write (through any view of the cache) or a Forget
// makes them stale; a view with TTL 0 reads the store every time.
func TestStore_ServesWithinTTLAndForgetsOnWrites(t *testing.T) {
	ctx := context.Background()
	type reads struct{ sessions, users, accounts int64 }
	for _, tc := range []struct {
		name   string
		ttl    time.Duration
		change func(f *fixture, other store.Store) error
		want   reads // store reads of the second round
	}{
		{"nothing changed", time.Minute, nil, reads{}},
		{"TTL 0 reads every time", 0, nil, reads{1, 1, 1}},
		{"TTL passed", time.Minute, func(f *fixture, _ store.Store) error { f.clk.Advance(time.Minute); return nil }, reads{1, 1, 1}},
		{"within TTL", time.Minute, func(f *fixture, _ store.Store) error { f.clk.Advance(59 * time.Second); return nil }, reads{}},
		{"session expired within TTL", 2 * time.Hour, func(f *fixture, _ store.Store) error { f.clk.Advance(61 * time.Minute); return nil }, reads{1, 0, 0}},
		{"sign-out", time.Minute, func(f *fixture, o store.Store) error { return o.DeleteSession(ctx, f.sess.ID) }, reads{1, 0, 0}},
		{"revocation", time.Minute, func(f *fixture, o store.Store) error { return o.RevokeSession(ctx, f.sess.ID) }, reads{1, 0, 0}},
		{"sign-in of the user", time.Minute, func(f *fixture, o store.Store) error {
			_, err := o.SignIn(ctx, store.SignIn{Now: f.clk.Now(), Account: store.ExternalAccount{Provider: "test",
				Issuer: "https://op.example", Subject: "ada", Email: "ada@example.com", EmailVerified: true}})
			return err
		}, reads{1, 1, 1}},
		{"account updated", time.Minute, func(f *fixture, o store.Store) error {
			_, err := o.UpdateExternalAccount(ctx, f.acc.ID, func(a *store.ExternalAccount) error { a.Tokens.AccessToken = "new"; return nil })
			return err
		}, reads{1, 1, 1}},
		{"update refused by its function", time.Minute, func(f *fixture, o store.Store) error {
			o.UpdateExternalAccount(ctx, f.acc.ID, func(*store.ExternalAccount) error { return store.ErrStale })
			return nil
		}, reads{1, 1, 1}},
		{"account unlinked", time.Minute, func(f *fixture, o store.Store) error {
			_, _, err := o.DeleteExternalAccount(ctx, f.user.ID, f.acc.ID, func([]*store.ExternalAccount) error { return nil })
			return err
		}, reads{1, 1, 1}},
		{"user deleted", time.Minute, func(f *fixture, o store.Store) error { return o.DeleteUser(ctx, f.user.ID) }, reads{1, 1, 1}},
		{"public metadata changed", time.Minute, func(f *fixture, o store.Store) error {
			_, err := o.UpdateUser(ctx, f.user.ID, func(u *store.User) error { u.PublicMetadata = map[string]any{"plan": "pro"}; return nil })
			return err
		}, reads{1, 1, 1}},
		{"user banned", time.Minute, func(f *fixture, o store.Store) error {
			_, err := o.UpdateUser(ctx, f.user.ID, func(u *store.User) error { u.Banned = true; return nil })
			return err
		}, reads{1, 1, 1}},
		{"another user created", time.Minute, func(f *fixture, o store.Store) error {
			u := &store.User{}
			if err := store.NewUser(u, f.clk.Now()); err != nil {
				return err
			}
			return o.CreateUser(ctx, u)
		}, reads{}},
		{"heard from another gateway", time.Minute, func(f *fixture, _ store.Store) error { f.c.ForgetUsers(f.user.ID); return nil }, reads{1, 1, 1}},
		{"another user heard of", time.Minute, func(f *fixture, _ store.Store) error { f.c.ForgetUsers("user_other"); return nil }, reads{}},
		{"reconnected listener", time.Minute, func(f *fixture, _ store.Store) error { f.c.ForgetAll(); return nil }, reads{1, 1, 1}},
		{"activity", time.Minute, func(f *fixture, o store.Store) error {
			return o.TouchSessions(ctx, []store.SessionTouch{{ID: f.sess.ID, At: f.clk.Now(), ExpiresAt: f.clk.Now().Add(time.Hour)}})
		}, reads{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			v := f.c.Store(tc.ttl)
			if s, u, a := f.reads(t, v); s != 1 || u != 1 || a != 1 {
				t.Fatalf("first reads reached the store %d, %d, %d times; want once each", s, u, a)
			}
			if tc.change != nil {
				if err := tc.change(f, f.c.Store(0)); err != nil {
					t.Fatal(err)
				}
			}
			if s, u, a := f.reads(t, v); (reads{s, u, a}) != tc.want {
				t.Errorf("second reads of session, user, accounts reached the store %d, %d, %d times; want %v", s, u, a, tc.want)
			}
		})
	}
}

// TestStore_NeverServesWhatAWriteEnded: what a view serves after a write
// is what the store holds, whichever view wrote.
func TestStore_NeverServesWhatAWriteEnded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	v, w := f.c.Store(time.Hour), f.c.Store(time.Hour)
	f.reads(t, v)
	if _, err := w.UpdateExternalAccount(ctx, f.acc.ID, func(a *store.ExternalAccount) error { a.Tokens.AccessToken = "rotated"; return nil }); err != nil {
		t.Fatal(err)
	}
	if accounts, _ := v.ExternalAccounts(ctx, f.user.ID); len(accounts) != 1 || accounts[0].Tokens.AccessToken != "rotated" {
		t.Errorf("accounts after a refresh elsewhere: %+v", accounts)
	}
	now := f.clk.Now().Add(30 * time.Second)
	if err := w.TouchSessions(ctx, []store.SessionTouch{{ID: f.sess.ID, At: now, ExpiresAt: now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if s, _ := v.Session(ctx, f.sess.ID); s == nil || !s.LastActiveAt.Equal(now) {
		t.Errorf("session after activity: %+v; want it last active at %v", s, now)
	}
	if err := w.DeleteSession(ctx, f.sess.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Session(ctx, f.sess.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("session after sign-out: %v; want ErrNotFound", err)
	}
}

// TestStore_DoesNotCacheAReadThatRacedAForget: a session read from the
// store while a revocation is heard is served once, never cached: the next
// read goes to the store and finds it gone.
func TestStore_DoesNotCacheAReadThatRacedAForget(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	v := f.c.Store(time.Hour)
	f.inner.hold = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		v.Session(ctx, f.sess.ID) // reads the live session, slowly
	}()
	for f.inner.sessions.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := f.inner.Store.RevokeSession(ctx, f.sess.ID); err != nil { // another gateway…
		t.Fatal(err)
	}
	f.c.ForgetUsers(f.user.ID) // …whose change is heard
	close(f.inner.hold)
	wg.Wait()
	if _, err := v.Session(ctx, f.sess.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the revoked session read during the revocation was cached: %v", err)
	}
}

// TestStore_UnwrapReachesTheImplementation: what only an implementation
// offers (Badger's backup, either store's invariant check) is found under
// the cache.
func TestStore_UnwrapReachesTheImplementation(t *testing.T) {
	b, err := badger.Open(badger.Options{InMemory: true, Logger: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v := cache.New(b, nil).Store(time.Minute)
	if got, ok := store.Unwrap(v).(*badger.Store); !ok || got != b {
		t.Errorf("store.Unwrap(view) = %T; want the Badger store", store.Unwrap(v))
	}
	if _, ok := v.(store.Shared); ok {
		t.Error("the view of a Badger store claims the shared locks it does not have")
	}
}

// hookStore runs during once, while a read of accounts is on its way back.
type hookStore struct {
	store.Store
	during func()
}

func (h *hookStore) ExternalAccounts(ctx context.Context, userID string) ([]*store.ExternalAccount, error) {
	accs, err := h.Store.ExternalAccounts(ctx, userID)
	if h.during != nil {
		h.during()
		h.during = nil
	}
	return accs, err
}

// The linked accounts another gateway changed are read again once that
// change is heard, whether it names the user or everyone, and a read that
// raced the change is not cached.
func TestStore_AccountsChangedElsewhereAreReadAgainOnceHeard(t *testing.T) {
	b, err := badger.Open(badger.Options{InMemory: true, Logger: silent{}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	hs := &hookStore{Store: b}
	c := cache.New(hs, nil)
	v := c.Store(time.Hour)
	ctx := context.Background()
	res, err := b.SignIn(ctx, store.SignIn{Now: time.Now(), Account: store.ExternalAccount{Provider: "p", Issuer: "https://i", Subject: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	linked := func() int {
		accs, err := v.ExternalAccounts(ctx, res.User.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(accs)
	}
	link := func(subject string) {
		if _, err := b.SignIn(ctx, store.SignIn{Now: time.Now(), LinkToUser: res.User.ID,
			Account: store.ExternalAccount{Provider: "p", Issuer: "https://i", Subject: subject}}); err != nil {
			t.Fatal(err)
		}
	}
	if linked() != 1 {
		t.Fatal("want one account")
	}
	link("s2") // by another gateway: this one's cache does not know
	if linked() != 1 {
		t.Fatal("the cache did not serve the accounts (the test needs it to)")
	}
	c.ForgetUsers(res.User.ID)
	if n := linked(); n != 2 {
		t.Errorf("after ForgetUsers: %d accounts, want 2", n)
	}
	link("s3")
	c.ForgetAll()
	if n := linked(); n != 3 {
		t.Errorf("after ForgetAll: %d accounts, want 3", n)
	}
	c.ForgetUsers(res.User.ID) // so that the next read goes to the store
	hs.during = func() {
		link("s4")
		c.ForgetUsers(res.User.ID) // heard while the read was on its way
	}
	if n := linked(); n != 3 {
		t.Fatalf("the racing read: %d accounts, want the 3 it read", n)
	}
	if n := linked(); n != 4 {
		t.Errorf("a read that raced a change was cached: %d accounts, want 4", n)
	}
}
