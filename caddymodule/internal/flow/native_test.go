package flow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
)

// clock is a test's clock, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newNonceFlow(t *testing.T) (*Flow, *clock) {
	t.Helper()
	clk := &clock{t: time.Now()}
	st, err := badger.Open(badger.Options{InMemory: true, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(Config{Store: st}), clk
}

func hexSHA256(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

const appVerifier = "the-app-keeps-this-verifier-and-never-sends-it-early"

func TestSignInNonce_RedeemsOnceWithItsVerifierWithinItsLifetime(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// redeem does what the caller does between issue and redemption and
		// returns the nonce and verifier it presents.
		redeem func(t *testing.T, f *Flow, clk *clock, nonce string) (string, string)
		ok     bool
	}{
		{"the app with its verifier", func(t *testing.T, f *Flow, clk *clock, n string) (string, string) { return n, appVerifier }, true},
		{"just before it expires", func(t *testing.T, f *Flow, clk *clock, n string) (string, string) {
			clk.advance(SignInNonceTTL - time.Second)
			return n, appVerifier
		}, true},
		{"the wrong verifier", func(t *testing.T, f *Flow, clk *clock, n string) (string, string) {
			return n, strings.Repeat("x", 50)
		}, false},
		{"no verifier", func(t *testing.T, f *Flow, clk *clock, n string) (string, string) { return n, "" }, false},
		{"the challenge as verifier", func(t *testing.T, f *Flow, clk *clock, n string) (string, string) { return n, s256(appVerifier) }, false},
		{"expired", func(t *testing.T, f *Flow, clk *clock, n string) (string, string) {
			clk.advance(SignInNonceTTL)
			return n, appVerifier
		}, false},
		{"reused", func(t *testing.T, f *Flow, clk *clock, n string) (string, string) {
			if err := f.TakeSignInNonce(ctx, n, appVerifier); err != nil {
				t.Fatalf("first redemption: %v", err)
			}
			return n, appVerifier
		}, false},
		{"burnt by a wrong verifier", func(t *testing.T, f *Flow, clk *clock, n string) (string, string) {
			f.TakeSignInNonce(ctx, n, strings.Repeat("y", 50))
			return n, appVerifier
		}, false},
		{"never issued", func(t *testing.T, f *Flow, clk *clock, n string) (string, string) { return randomString(), appVerifier }, false},
		{"its SHA-256 in hex (Apple's claim)", func(t *testing.T, f *Flow, clk *clock, n string) (string, string) {
			return hexSHA256(n), appVerifier
		}, false},
		{"a rotating token nonce", func(t *testing.T, f *Flow, clk *clock, n string) (string, string) {
			rt, err := f.putBound(ctx, nonceKind, nonceRecord{UserID: "user_x", Challenge: s256(appVerifier)}, NonceTTL)
			if err != nil {
				t.Fatal(err)
			}
			return rt, appVerifier
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, clk := newNonceFlow(t)
			nonce, expires, err := f.IssueSignInNonce(ctx, s256(appVerifier))
			if err != nil || !validToken(nonce) || expires.Before(time.Now().Add(SignInNonceTTL-time.Minute)) {
				t.Fatalf("IssueSignInNonce = %q, %v, %v", nonce, expires, err)
			}
			n, v := tc.redeem(t, f, clk, nonce)
			err = f.TakeSignInNonce(ctx, n, v)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("TakeSignInNonce: %v", err)
			case !tc.ok && err != ErrInvalidSignInNonce:
				t.Fatalf("TakeSignInNonce = %v, want ErrInvalidSignInNonce", err)
			}
		})
	}
}

func TestSignInNonce_IsNotARotatingTokenNonce(t *testing.T) {
	ctx := context.Background()
	f, _ := newNonceFlow(t)
	nonce, _, err := f.IssueSignInNonce(ctx, s256(appVerifier))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.RedeemNonce(ctx, nonce, appVerifier); err != ErrInvalidNonce {
		t.Fatalf("RedeemNonce of a sign-in nonce = %v, want ErrInvalidNonce", err)
	}
}

func TestSignInNonce_NeedsAnS256Challenge(t *testing.T) {
	f, _ := newNonceFlow(t)
	for _, challenge := range []string{"", "short", appVerifier, s256(appVerifier) + "x", strings.Repeat("+", 43)} {
		if _, _, err := f.IssueSignInNonce(context.Background(), challenge); !errors.Is(err, errNativeChallenge) {
			t.Errorf("IssueSignInNonce(%q) = %v, want errNativeChallenge", challenge, err)
		}
	}
}

func TestSignInNonce_ConcurrentRedemptionsHaveOneWinner(t *testing.T) {
	ctx := context.Background()
	f, _ := newNonceFlow(t)
	nonce, _, err := f.IssueSignInNonce(ctx, s256(appVerifier))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 20 {
		wg.Go(func() {
			if f.TakeSignInNonce(ctx, nonce, appVerifier) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d redemptions of one nonce succeeded, want 1", wins)
	}
}
