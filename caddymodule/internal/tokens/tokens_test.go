package tokens

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
)

// fakeProvider answers refreshes like a provider with rotating refresh
// tokens: each refresh token works once.
type fakeProvider struct {
	mu      sync.Mutex
	valid   map[string]bool
	calls   atomic.Int64
	delay   time.Duration
	fail    error // answer this instead
	rotate  bool
	expires time.Duration
	n       int
	// lose: the refresh is granted (and rotates) but the answer is lost;
	// grace: a rotated refresh token keeps working (the provider's reuse
	// grace, for as long as the test runs).
	lose, grace bool
}

func (f *fakeProvider) Refresh(ctx context.Context, _, rt string) (*oauth2.Token, error) {
	f.calls.Add(1)
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	if !f.valid[rt] {
		return nil, fmt.Errorf("%w: reused refresh token", provider.ErrInvalidGrant)
	}
	f.n++
	tok := &oauth2.Token{AccessToken: fmt.Sprintf("at-%d", f.n), TokenType: "Bearer",
		Expiry: time.Now().Add(f.expires), ExpiresIn: int64(f.expires / time.Second)}
	if f.rotate {
		if !f.grace {
			delete(f.valid, rt)
		}
		tok.RefreshToken = fmt.Sprintf("rt-%d", f.n)
		f.valid[tok.RefreshToken] = true
	}
	if f.lose {
		return nil, fmt.Errorf("%w: the connection broke before the answer", provider.ErrUnavailable)
	}
	return tok, nil
}

// setup stores one account whose token expired a second ago.
func setup(t *testing.T, f *fakeProvider, tokens store.TokenSet) (*Engine, store.Store, *store.ExternalAccount) {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	res, err := st.SignIn(context.Background(), store.SignIn{Now: time.Now(), Account: store.ExternalAccount{
		Provider: "fake", Issuer: "https://fake.example", Subject: "u1", Tokens: tokens}})
	if err != nil {
		t.Fatal(err)
	}
	if f.valid == nil {
		f.valid = map[string]bool{tokens.RefreshToken: true}
	}
	if f.expires == 0 {
		f.expires = time.Hour
	}
	e := New(Options{Store: st, Providers: func(name string) (Refresher, bool) { return f, name == "fake" }})
	return e, st, res.Account
}

func expired() store.TokenSet {
	return store.TokenSet{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(-time.Second)}
}

func TestFresh_ConcurrentReadsCauseOneRefresh(t *testing.T) {
	f := &fakeProvider{rotate: true, delay: 50 * time.Millisecond}
	e, st, a := setup(t, f, expired())
	var wg sync.WaitGroup
	got := make([]string, 50)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fresh, err := e.Fresh(context.Background(), a)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = fresh.Tokens.AccessToken
		}()
	}
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d refresh calls, want 1", n)
	}
	for _, tok := range got {
		if tok != "at-1" {
			t.Fatalf("a caller got %q, want at-1", tok)
		}
	}
	stored, _ := st.ExternalAccount(context.Background(), a.ID)
	if stored.Tokens.RefreshToken != "rt-1" || stored.Tokens.AccessToken != "at-1" {
		t.Errorf("stored tokens %+v: the rotated refresh token was not kept", stored.Tokens)
	}
	// The next refresh uses the rotated token: nothing was lost.
	stored, err := st.UpdateExternalAccount(context.Background(), a.ID, func(a *store.ExternalAccount) error {
		a.Tokens.Expiry = time.Now().Add(-time.Second)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fresh, err := e.Fresh(context.Background(), stored); err != nil || fresh.Tokens.AccessToken != "at-2" {
		t.Fatalf("second refresh: %v %v", fresh, err)
	}
}

func TestFresh_ValidTokenIsServedWithoutACall(t *testing.T) {
	f := &fakeProvider{}
	e, _, a := setup(t, f, store.TokenSet{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)})
	if fresh, err := e.Fresh(context.Background(), a); err != nil || fresh.Tokens.AccessToken != "at-0" {
		t.Fatalf("got %v, %v", fresh, err)
	}
	if f.calls.Load() != 0 {
		t.Error("a fresh token was refreshed")
	}
}

func TestFresh_InvalidGrantMarksTheAccountOnce(t *testing.T) {
	f := &fakeProvider{valid: map[string]bool{}}
	e, st, a := setup(t, f, expired())
	for i := 0; i < 5; i++ {
		if _, err := e.Fresh(context.Background(), a); !errors.Is(err, ErrNeedsReauthorization) {
			t.Fatalf("err = %v, want ErrNeedsReauthorization", err)
		}
		a, _ = st.ExternalAccount(context.Background(), a.ID)
	}
	if a.Status != store.StatusNeedsReauthorization {
		t.Errorf("status = %q", a.Status)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d refresh calls: a dead grant must not cause a retry storm", n)
	}
}

func TestFresh_ProviderDown(t *testing.T) {
	down := fmt.Errorf("%w: connection refused", provider.ErrUnavailable)
	t.Run("a still-valid token keeps being served", func(t *testing.T) {
		f := &fakeProvider{fail: down}
		e, _, a := setup(t, f, store.TokenSet{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(30 * time.Second)})
		if fresh, err := e.Fresh(context.Background(), a); err != nil || fresh.Tokens.AccessToken != "at-0" {
			t.Fatalf("got %v, %v", fresh, err)
		}
	})
	t.Run("an expired token is unavailable, not reauthorization", func(t *testing.T) {
		f := &fakeProvider{fail: down}
		e, st, a := setup(t, f, expired())
		if _, err := e.Fresh(context.Background(), a); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if stored, _ := st.ExternalAccount(context.Background(), a.ID); stored.Status != store.StatusVerified {
			t.Errorf("status = %q: a provider outage must not end the grant", stored.Status)
		}
	})
}

func TestFresh_WithoutRefreshToken(t *testing.T) {
	f := &fakeProvider{}
	e, _, a := setup(t, f, store.TokenSet{AccessToken: "at-0", Expiry: time.Now().Add(time.Minute)})
	if fresh, err := e.Fresh(context.Background(), a); err != nil || fresh.Tokens.AccessToken != "at-0" {
		t.Fatalf("a valid token without a refresh token: %v, %v", fresh, err)
	}
	e2, _, b := setup(t, &fakeProvider{}, store.TokenSet{AccessToken: "at-0", Expiry: time.Now().Add(-time.Second)})
	if _, err := e2.Fresh(context.Background(), b); !errors.Is(err, ErrNeedsReauthorization) {
		t.Fatalf("err = %v, want ErrNeedsReauthorization", err)
	}
}

func TestFresh_TokenWithoutExpiryNeverGoesStale(t *testing.T) {
	f := &fakeProvider{}
	e, _, a := setup(t, f, store.TokenSet{AccessToken: "gho_x"})
	if fresh, err := e.Fresh(context.Background(), a); err != nil || fresh.Tokens.AccessToken != "gho_x" {
		t.Fatalf("got %v, %v", fresh, err)
	}
	if f.calls.Load() != 0 {
		t.Error("a non-expiring token was refreshed")
	}
}

func TestFresh_NonRotatingProviderKeepsTheRefreshToken(t *testing.T) {
	f := &fakeProvider{rotate: false}
	e, st, a := setup(t, f, expired())
	if _, err := e.Fresh(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if stored, _ := st.ExternalAccount(context.Background(), a.ID); stored.Tokens.RefreshToken != "rt-0" {
		t.Errorf("refresh token = %q, want rt-0 kept", stored.Tokens.RefreshToken)
	}
}
