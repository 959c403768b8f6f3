package tokens

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// stale is a token set inside the default skew and valid for a minute.
func stale() store.TokenSet {
	return store.TokenSet{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Minute)}
}

func TestFresh_FailingProviderIsCalledOncePerBackoff(t *testing.T) {
	down := fmt.Errorf("%w: HTTP 500", provider.ErrUnavailable)
	for name, tokens := range map[string]store.TokenSet{"still valid": stale(), "expired": expired()} {
		t.Run(name, func(t *testing.T) {
			f := &fakeProvider{fail: down}
			e, st, a := setup(t, f, tokens)
			for i := range 5 {
				fresh, err := e.Fresh(context.Background(), a)
				if e.valid(tokens) != (err == nil) {
					t.Fatalf("request %d: %v, %v", i, fresh, err)
				}
				if err != nil && !errors.Is(err, ErrUnavailable) {
					t.Fatalf("request %d: %v, want ErrUnavailable", i, err)
				}
				if fresh != nil {
					a = fresh // what the gateway's cache holds next
				}
			}
			if n := f.calls.Load(); n != 1 {
				t.Errorf("%d calls to a failing provider for 5 requests, want 1", n)
			}
			stored, _ := st.ExternalAccount(context.Background(), a.ID)
			if stored.Tokens.RefreshFailures != 1 || time.Until(stored.Tokens.RetryAt) <= 0 || stored.Status != store.StatusVerified {
				t.Errorf("stored %+v, status %s: want one failure, a retry time ahead, still verified", stored.Tokens, stored.Status)
			}
		})
	}
}

func TestFresh_BackoffDoublesAndASuccessEndsIt(t *testing.T) {
	f := &fakeProvider{fail: fmt.Errorf("%w: timeout", provider.ErrUnavailable), rotate: true}
	now := time.Now()
	e, st, a := setup(t, f, store.TokenSet{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: now.Add(time.Hour)})
	e.skew = 2 * time.Hour // always due
	e.now = func() time.Time { return now }
	var waits []time.Duration
	for range 6 {
		if _, err := e.Fresh(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		a, _ = st.ExternalAccount(context.Background(), a.ID)
		waits = append(waits, a.Tokens.RetryAt.Sub(now))
		now = a.Tokens.RetryAt // the next may be tried
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	if fmt.Sprint(waits) != fmt.Sprint(want) {
		t.Errorf("backoff %v, want %v", waits, want)
	}
	f.mu.Lock()
	f.fail = nil
	f.mu.Unlock()
	fresh, err := e.Fresh(context.Background(), a)
	if err != nil || fresh.Tokens.AccessToken == "at-0" || fresh.Tokens.RefreshFailures != 0 || !fresh.Tokens.RetryAt.IsZero() {
		t.Fatalf("after the provider is back: %+v, %v", fresh, err)
	}
}

func TestRetryAt_NeverLetsAValidTokenExpireWaiting(t *testing.T) {
	now := time.Now()
	expiry := now.Add(3 * time.Second)
	if got := retryAt(store.TokenSet{Expiry: expiry}, 4, now); !got.Equal(expiry) {
		t.Errorf("retry at %v, want the token's expiry %v", got.Sub(now), expiry.Sub(now))
	}
	if got := retryAt(store.TokenSet{Expiry: now.Add(-time.Second)}, 1, now); got.Sub(now) != firstBackoff {
		t.Errorf("expired token: retry in %v, want %v", got.Sub(now), firstBackoff)
	}
	if got := retryAt(store.TokenSet{}, 1000, now); got.Sub(now) != maxBackoff {
		t.Errorf("many failures: retry in %v, want %v", got.Sub(now), maxBackoff)
	}
}

func TestFresh_ShortLivedTokensAreNotRefreshedOnEveryRequest(t *testing.T) {
	// The provider issues 60 s tokens; the skew is the default 2 minutes.
	f := &fakeProvider{rotate: true, expires: time.Minute}
	e, _, a := setup(t, f, expired())
	var err error
	for i := range 20 {
		if a, err = e.Fresh(context.Background(), a); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d refreshes for 20 requests with 60 s tokens, want 1", n)
	}
	if life := a.Tokens.Expiry.Sub(a.Tokens.IssuedAt); life < 59*time.Second || life > time.Minute {
		t.Errorf("recorded lifetime %v, want 60 s", life)
	}
	// Past half its life, the token is refreshed.
	e.now = func() time.Time { return time.Now().Add(31 * time.Second) }
	if _, err := e.Fresh(context.Background(), a); err != nil || f.calls.Load() != 2 {
		t.Errorf("past half its lifetime: %v, %d calls, want a refresh", err, f.calls.Load())
	}
}

func TestFresh_SlowRefreshServesTheValidTokenAndGoesOn(t *testing.T) {
	f := &fakeProvider{rotate: true, delay: 3 * time.Second}
	e, st, a := setup(t, f, stale())
	start := time.Now()
	got := make(chan string, 3)
	for range 3 {
		go func() {
			fresh, err := e.Fresh(context.Background(), a)
			if err != nil {
				t.Error(err)
				got <- ""
				return
			}
			got <- fresh.Tokens.AccessToken
		}()
	}
	for range 3 {
		if tok := <-got; tok != "at-0" {
			t.Errorf("a request got %q, want the still-valid at-0", tok)
		}
	}
	if waited := time.Since(start); waited > validWait+time.Second {
		t.Errorf("requests waited %v for a slow refresh, want at most about %v", waited, validWait)
	}
	// The refresh went on and stored its outcome.
	deadline := time.Now().Add(5 * time.Second)
	for {
		stored, _ := st.ExternalAccount(context.Background(), a.ID)
		if stored.Tokens.AccessToken == "at-1" && stored.Tokens.RefreshToken == "rt-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow refresh was not stored: %+v", stored.Tokens)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// flakyStore fails the first failures updates of accounts.
type flakyStore struct {
	store.Store
	failures atomic.Int32
}

func (s *flakyStore) UpdateExternalAccount(ctx context.Context, id string, fn func(a *store.ExternalAccount) error) (*store.ExternalAccount, error) {
	if s.failures.Add(-1) >= 0 {
		return nil, errors.New("disk full")
	}
	return s.Store.UpdateExternalAccount(ctx, id, fn)
}

func TestFresh_ARotatedTokenIsStoredDespiteFailingWrites(t *testing.T) {
	f := &fakeProvider{rotate: true}
	e, st, a := setup(t, f, expired())
	flaky := &flakyStore{Store: st}
	flaky.failures.Store(3)
	e.store = flaky
	fresh, err := e.Fresh(context.Background(), a)
	if err != nil || fresh.Tokens.RefreshToken != "rt-1" {
		t.Fatalf("got %v, %v", fresh, err)
	}
	if stored, _ := st.ExternalAccount(context.Background(), a.ID); stored.Tokens.RefreshToken != "rt-1" {
		t.Errorf("stored refresh token %q, want the rotated rt-1", stored.Tokens.RefreshToken)
	}
}

// A refresh whose answer is lost after the provider rotated the refresh
// token: the retry, one backoff step later, sends the stored (previous)
// refresh token. It works where the provider has a reuse grace longer than
// the step; elsewhere the grant is gone, as documented.
func TestFresh_ALostRotationIsRetriedWithinTheProvidersGrace(t *testing.T) {
	for _, grace := range []bool{true, false} {
		t.Run(fmt.Sprint("grace ", grace), func(t *testing.T) {
			f := &fakeProvider{rotate: true, lose: true, grace: grace}
			e, st, a := setup(t, f, expired())
			if _, err := e.Fresh(context.Background(), a); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("lost answer: %v, want ErrUnavailable", err)
			}
			a, _ = st.ExternalAccount(context.Background(), a.ID)
			if wait := time.Until(a.Tokens.RetryAt); wait > firstBackoff || a.Tokens.RefreshToken != "rt-0" {
				t.Fatalf("after the lost answer: retry in %v with %q, want within %v with the stored rt-0", wait, a.Tokens.RefreshToken, firstBackoff)
			}
			f.mu.Lock()
			f.lose = false
			f.mu.Unlock()
			e.now = func() time.Time { return time.Now().Add(firstBackoff) }
			fresh, err := e.Fresh(context.Background(), a)
			if grace {
				if err != nil || fresh.Tokens.RefreshToken != "rt-2" {
					t.Errorf("retry within the grace: %v, %v; want the tokens of a second rotation", fresh, err)
				}
			} else if !errors.Is(err, ErrNeedsReauthorization) {
				t.Errorf("retry without a grace: %v, want ErrNeedsReauthorization", err)
			}
		})
	}
}
