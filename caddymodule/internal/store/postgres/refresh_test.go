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

var errFresh = errors.New("fresh: nothing to store")

// refreshOnce is a refresh's fn: when the token is still expired it takes
// the provider's time and rotates the tokens, else it stores nothing.
func refreshOnce(refreshes *atomic.Int32, provider time.Duration) func(ctx context.Context, a *store.ExternalAccount) error {
	return func(ctx context.Context, a *store.ExternalAccount) error {
		if a.Tokens.Expiry.After(time.Now()) {
			return errFresh
		}
		refreshes.Add(1)
		time.Sleep(provider)
		a.Tokens = store.TokenSet{AccessToken: "at-1", RefreshToken: "rt-1", Expiry: time.Now().Add(time.Hour)}
		return nil
	}
}

// A refresh storm spread over two gateways on one database: each request
// locks the account's row, sees the account as the previous holder left
// it, and refreshes only if the token is still expired. Exactly one
// refresh happens and the rotated refresh token is stored.
func TestRefreshExternalAccount_OneRefreshAcrossGateways(t *testing.T) {
	dsn := freshDSN(t)
	gateways := []*Store{openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})}
	acc := signInOne(t, gateways[0], "storm")
	var refreshes, inside, maxInside atomic.Int32
	refresh := refreshOnce(&refreshes, 20*time.Millisecond)
	var wg sync.WaitGroup
	for i := range 50 {
		s := gateways[i%2]
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := s.RefreshExternalAccount(ctx, acc.ID, 20*time.Second, func(ctx context.Context, a *store.ExternalAccount) error {
				n := inside.Add(1)
				defer inside.Add(-1)
				if n > maxInside.Load() {
					maxInside.Store(n)
				}
				return refresh(ctx, a)
			})
			if err != nil && !errors.Is(err, errFresh) {
				t.Errorf("RefreshExternalAccount: %v", err)
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

// hold locks the account's row in a refresh on s until release is called.
func hold(t *testing.T, s *Store, accountID string) (release func()) {
	t.Helper()
	held, done, rel := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		_, err := s.RefreshExternalAccount(context.Background(), accountID, time.Minute, func(context.Context, *store.ExternalAccount) error {
			close(held)
			<-rel
			return errFresh
		})
		if !errors.Is(err, errFresh) {
			t.Errorf("holding the lock: %v", err)
		}
	}()
	<-held
	return func() { close(rel); <-done }
}

func TestRefreshExternalAccount_WaitEndsAsBusyAndLeavesNoLock(t *testing.T) {
	dsn := freshDSN(t)
	a, b := openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})
	x, y := signInOne(t, a, "x"), signInOne(t, a, "y")
	release := hold(t, a, x.ID)
	called := false
	start := time.Now()
	_, err := b.RefreshExternalAccount(context.Background(), x.ID, 200*time.Millisecond, func(context.Context, *store.ExternalAccount) error {
		called = true
		return nil
	})
	if !errors.Is(err, store.ErrBusy) || called || time.Since(start) > 3*time.Second {
		t.Errorf("refresh while held elsewhere = %v after %v (fn called: %v), want ErrBusy after the wait", err, time.Since(start), called)
	}
	// Another account is free meanwhile.
	var refreshes atomic.Int32
	if _, err := b.RefreshExternalAccount(context.Background(), y.ID, time.Second, refreshOnce(&refreshes, 0)); err != nil {
		t.Errorf("another account: %v", err)
	}
	release()
	// The abandoned wait holds nothing: the lock is free at once on both gateways.
	for _, s := range []*Store{b, a, b} {
		if _, err := s.RefreshExternalAccount(context.Background(), x.ID, time.Second, refreshOnce(&refreshes, 0)); err != nil && !errors.Is(err, errFresh) {
			t.Errorf("after release: %v", err)
		}
	}
	if refreshes.Load() != 2 {
		t.Errorf("%d refreshes, want one of each account", refreshes.Load())
	}
}

func TestRefreshExternalAccount_ReleasedAfterAnErrorOrAPanic(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{})
	acc := signInOne(t, s, "x")
	want := errors.New("provider down")
	if _, err := s.RefreshExternalAccount(context.Background(), acc.ID, time.Second, func(context.Context, *store.ExternalAccount) error { return want }); err != want {
		t.Errorf("RefreshExternalAccount = %v, want fn's error as is", err)
	}
	func() {
		defer func() { recover() }()
		s.RefreshExternalAccount(context.Background(), acc.ID, time.Second, func(context.Context, *store.ExternalAccount) error { panic("boom") })
	}()
	var refreshes atomic.Int32
	if _, err := s.RefreshExternalAccount(context.Background(), acc.ID, 5*time.Second, refreshOnce(&refreshes, 0)); err != nil || refreshes.Load() != 1 {
		t.Errorf("after an error and a panic: %v (%d refreshes)", err, refreshes.Load())
	}
	if a, _ := s.ExternalAccount(context.Background(), acc.ID); a.Tokens.AccessToken != "at-1" {
		t.Errorf("tokens %+v: fn's error or panic left a trace", a.Tokens)
	}
}

// With the smallest pool, refreshes hold at most one connection: every
// other query finds the other one, and a refresh that finds every slot held
// for longer than it waits is busy.
func TestRefreshExternalAccount_NeverStarvesOtherQueries(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{MaxConns: 2})
	x, y := signInOne(t, s, "x"), signInOne(t, s, "y")
	release := hold(t, s, x.ID)
	for range 5 {
		if _, err := s.ExternalAccounts(context.Background(), y.UserID); err != nil {
			t.Fatalf("a query while a refresh holds the lock slot: %v", err)
		}
	}
	_, err := s.RefreshExternalAccount(context.Background(), y.ID, 100*time.Millisecond, func(context.Context, *store.ExternalAccount) error { return nil })
	if !errors.Is(err, store.ErrBusy) {
		t.Errorf("a refresh with every slot held: %v, want ErrBusy", err)
	}
	release()
	var wg sync.WaitGroup
	var refreshes atomic.Int32
	for i := range 10 {
		acc := signInOne(t, s, fmt.Sprint("pool-", i))
		wg.Go(func() {
			if _, err := s.RefreshExternalAccount(context.Background(), acc.ID, 30*time.Second, refreshOnce(&refreshes, 10*time.Millisecond)); err != nil {
				t.Errorf("RefreshExternalAccount: %v", err)
			}
		})
	}
	wg.Wait()
	if refreshes.Load() != 10 {
		t.Errorf("%d refreshes, want 10", refreshes.Load())
	}
}

// The refresh locks the account's row only: a writer holding the user's row
// (a sign-in, a link) neither blocks it nor is it needed, and once fn has
// run the write waits for nobody.
func TestRefreshExternalAccount_WritesWithoutTheUsersLock(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{})
	acc := signInOne(t, s, "x")
	tx, err := s.pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(context.Background(), `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, acc.UserID); err != nil {
		t.Fatal(err)
	}
	var refreshes atomic.Int32
	if _, err := s.RefreshExternalAccount(context.Background(), acc.ID, 5*time.Second, refreshOnce(&refreshes, 0)); err != nil {
		t.Fatalf("refresh while the user's row is locked: %v", err)
	}
}

// A row lock held elsewhere (any writer of the account) makes the refresh
// wait before fn, never after: fn is not called and the provider is spared.
func TestRefreshExternalAccount_WaitsForTheRowBeforeFn(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{})
	acc := signInOne(t, s, "x")
	tx, err := s.pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), `SELECT 1 FROM external_accounts WHERE id = $1 FOR UPDATE`, acc.ID); err != nil {
		t.Fatal(err)
	}
	var refreshes atomic.Int32
	_, err = s.RefreshExternalAccount(context.Background(), acc.ID, 300*time.Millisecond, refreshOnce(&refreshes, 0))
	if !errors.Is(err, store.ErrBusy) || refreshes.Load() != 0 {
		t.Errorf("refresh with the row locked elsewhere = %v, %d calls of fn; want ErrBusy and none", err, refreshes.Load())
	}
	tx.Rollback(context.Background())
	if _, err := s.RefreshExternalAccount(context.Background(), acc.ID, time.Second, refreshOnce(&refreshes, 0)); err != nil || refreshes.Load() != 1 {
		t.Errorf("after the row was released: %v", err)
	}
}

// fn's outcome is stored even when ctx ends while fn runs: the provider's
// answer is not thrown away because the caller left.
func TestRefreshExternalAccount_StoresAfterTheContextEnded(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{})
	acc := signInOne(t, s, "x")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.RefreshExternalAccount(ctx, acc.ID, time.Second, func(ctx context.Context, a *store.ExternalAccount) error {
		cancel()
		a.Tokens.RefreshToken = "rt-rotated"
		return nil
	})
	if err != nil {
		t.Fatalf("RefreshExternalAccount: %v", err)
	}
	if a, _ := s.ExternalAccount(context.Background(), acc.ID); a.Tokens.RefreshToken != "rt-rotated" {
		t.Errorf("refresh token %q, want the one fn stored", a.Tokens.RefreshToken)
	}
}

// Only the tokens, the approved scopes and the status are written; entering
// needs_reauthorization records its event, as UpdateExternalAccount does.
func TestRefreshExternalAccount_WritesWhatARefreshChanges(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{})
	acc := signInOne(t, s, "x")
	_, err := s.RefreshExternalAccount(context.Background(), acc.ID, time.Second, func(ctx context.Context, a *store.ExternalAccount) error {
		a.Status = store.StatusNeedsReauthorization
		a.ApprovedScopes = []string{"openid"}
		a.Email, a.UserID, a.Label = "other@example.com", "user_other", "moved"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.ExternalAccount(context.Background(), acc.ID)
	if got.Status != store.StatusNeedsReauthorization || len(got.ApprovedScopes) != 1 ||
		got.Email != acc.Email || got.UserID != acc.UserID || got.Label != acc.Label {
		t.Errorf("stored %+v", got)
	}
	events, err := s.Events(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Type == store.EventAccountReauthed && e.Account.ID == acc.ID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d %s events, want 1", n, store.EventAccountReauthed)
	}
}

func TestRefreshExternalAccount_RefusesAnInvalidOrUnknownID(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{})
	for _, id := range []string{"", "eac_missing"} {
		if _, err := s.RefreshExternalAccount(context.Background(), id, time.Second, func(context.Context, *store.ExternalAccount) error { return nil }); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RefreshExternalAccount(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func TestRefreshExternalAccount_RefusesAHalfWrittenTokenSet(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{})
	acc := signInOne(t, s, "x")
	_, err := s.RefreshExternalAccount(context.Background(), acc.ID, time.Second, func(ctx context.Context, a *store.ExternalAccount) error {
		a.Tokens.AccessToken = ""
		return nil
	})
	if err == nil {
		t.Fatal("a half-written token set was stored")
	}
	if got, _ := s.ExternalAccount(context.Background(), acc.ID); got.Tokens.AccessToken != "at-0" {
		t.Errorf("tokens %+v after a refused write", got.Tokens)
	}
}
