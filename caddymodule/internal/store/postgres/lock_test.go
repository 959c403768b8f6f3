package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// signInOne creates a user with one account whose access token has expired.
func signInOne(t *testing.T, s *Store, subject string) *store.ExternalAccount {
	t.Helper()
	res, err := s.SignIn(context.Background(), store.SignIn{Account: store.ExternalAccount{Provider: "p", Issuer: "https://i.example",
		Subject: subject, Tokens: store.TokenSet{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(-time.Minute)}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Account
}

// A refresh storm spread over two gateways on one database: every request
// takes the account's lock, re-reads the account, and refreshes only if the
// token is still expired. Exactly one refresh happens and the rotated
// refresh token is stored.
func TestWithAccountLock_OneRefreshAcrossGateways(t *testing.T) {
	dsn := freshDSN(t)
	gateways := []*Store{openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})}
	acc := signInOne(t, gateways[0], "storm")
	var refreshes, inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		s := gateways[i%2]
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := s.WithAccountLock(ctx, acc.ID, func(ctx context.Context) error {
				n := inside.Add(1)
				defer inside.Add(-1)
				if n > maxInside.Load() {
					maxInside.Store(n)
				}
				a, err := s.ExternalAccount(ctx, acc.ID)
				if err != nil || a.Tokens.Expiry.After(time.Now()) {
					return err // fresh: someone refreshed while we waited
				}
				refreshes.Add(1)
				time.Sleep(20 * time.Millisecond) // the provider's token endpoint
				_, err = s.UpdateExternalAccount(ctx, acc.ID, func(a *store.ExternalAccount) error {
					if a.Tokens.RefreshToken != "rt-0" {
						return store.ErrStale
					}
					a.Tokens = store.TokenSet{AccessToken: "at-1", RefreshToken: "rt-1", Expiry: time.Now().Add(time.Hour)}
					return nil
				})
				return err
			})
			if err != nil {
				t.Errorf("WithAccountLock: %v", err)
			}
		})
	}
	wg.Wait()
	if refreshes.Load() != 1 || maxInside.Load() != 1 {
		t.Errorf("%d refreshes, at most %d holders at once; want 1 and 1", refreshes.Load(), maxInside.Load())
	}
	if a, err := gateways[1].ExternalAccount(context.Background(), acc.ID); err != nil || a.Tokens.RefreshToken != "rt-1" {
		t.Errorf("stored tokens = %+v, %v; want the rotated refresh token", a.Tokens, err)
	}
}

// hold takes the account's lock on s and keeps it until release is closed.
func hold(t *testing.T, s *Store, accountID string) (release func()) {
	t.Helper()
	held, done, rel := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		err := s.WithAccountLock(context.Background(), accountID, func(context.Context) error {
			close(held)
			<-rel
			return nil
		})
		if err != nil {
			t.Errorf("holding the lock: %v", err)
		}
	}()
	<-held
	return func() { close(rel); <-done }
}

func TestWithAccountLock_WaitEndsWithTheContextAndLeavesNoLock(t *testing.T) {
	dsn := freshDSN(t)
	a, b := openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})
	release := hold(t, a, "eac_x")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	called := false
	err := b.WithAccountLock(ctx, "eac_x", func(context.Context) error { called = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || called {
		t.Errorf("WithAccountLock while held elsewhere = %v (fn called: %v), want DeadlineExceeded", err, called)
	}
	// Another account is free meanwhile.
	if err := b.WithAccountLock(context.Background(), "eac_y", func(context.Context) error { return nil }); err != nil {
		t.Errorf("another account: %v", err)
	}
	release()
	// The abandoned wait holds nothing: the lock is free at once on both gateways.
	for _, s := range []*Store{b, a, b} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.WithAccountLock(ctx, "eac_x", func(context.Context) error { return nil }); err != nil {
			t.Errorf("after release: %v", err)
		}
		cancel()
	}
}

func TestWithAccountLock_ReleasedAfterAnErrorOrAPanic(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{})
	want := errors.New("provider down")
	if err := s.WithAccountLock(context.Background(), "eac_x", func(context.Context) error { return want }); err != want {
		t.Errorf("WithAccountLock = %v, want fn's error as is", err)
	}
	func() {
		defer func() { recover() }()
		s.WithAccountLock(context.Background(), "eac_x", func(context.Context) error { panic("boom") })
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WithAccountLock(ctx, "eac_x", func(context.Context) error { return nil }); err != nil {
		t.Errorf("after an error and a panic: %v", err)
	}
}

// Every holder keeps a connection while its fn queries on another one; with
// the smallest pool, many holders at once still all finish.
func TestWithAccountLock_NeverStarvesItsOwnQueries(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{MaxConns: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 10 {
		acc := signInOne(t, s, fmt.Sprint("pool-", i))
		wg.Go(func() {
			err := s.WithAccountLock(ctx, acc.ID, func(ctx context.Context) error {
				_, err := s.UpdateExternalAccount(ctx, acc.ID, func(a *store.ExternalAccount) error {
					a.Label = "refreshed"
					return nil
				})
				return err
			})
			if err != nil {
				t.Errorf("WithAccountLock: %v", err)
			}
		})
	}
	wg.Wait()
}

func TestWithAccountLock_RefusesAnInvalidID(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{})
	if err := s.WithAccountLock(context.Background(), "", func(context.Context) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("WithAccountLock(\"\") = %v, want ErrNotFound", err)
	}
}

// TryLock's locks are held across gateways, once each (this gateway
// included), all on one connection that goes back to the pool when the
// last is given back.
func TestTryLock_OneHolderPerNameOnOneConnection(t *testing.T) {
	dsn := freshDSN(t)
	a, b := openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})
	ctx := context.Background()
	try := func(s *Store, name string, want bool) {
		t.Helper()
		if got, err := s.TryLock(ctx, name); err != nil || got != want {
			t.Fatalf("TryLock(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	try(a, "webhook.endpoint.x", true)
	try(b, "webhook.endpoint.x", false)
	try(a, "webhook.endpoint.x", false) // one holder within a gateway too
	try(a, "webhook.endpoint.y", true)
	try(b, "webhook.endpoint.z", true)
	if n := a.pool.Stat().AcquiredConns(); n != 1 {
		t.Errorf("two locks hold %d connections, want 1", n)
	}
	a.Unlock("webhook.endpoint.x")
	try(b, "webhook.endpoint.x", true)
	a.Unlock("webhook.endpoint.y")
	a.Unlock("webhook.endpoint.y") // given back already: nothing
	if n := a.pool.Stat().AcquiredConns(); n != 0 || len(a.lockSlots) != 0 {
		t.Errorf("with no lock held, %d connections and %d lock slots are held, want none", n, len(a.lockSlots))
	}
	try(a, "webhook.endpoint.y", true)
	// Close waits for the connection of the locks still held.
	a.Unlock("webhook.endpoint.y")
	b.Unlock("webhook.endpoint.x")
	b.Unlock("webhook.endpoint.z")
}
