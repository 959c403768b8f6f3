package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// The request path's reads on PostgreSQL over loopback, beside the Badger
// rows of the store package's benchmarks:
//
//	go test ./caddymodule/internal/store/postgres -run '^$' -bench . -benchmem
//
// The private test server runs with fsync off; reads do not fsync anyway.

// benchStore opens a store with one signed-in user and one session.
func benchStore(b *testing.B) (*Store, *store.SignInResult, *store.Session) {
	b.Helper()
	s := openDSN(b, freshDSN(b), Options{})
	ctx := context.Background()
	res, err := s.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "github", Issuer: "https://github.com",
		Subject: "1234567", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace",
		ApprovedScopes: []string{"read:user", "user:email", "repo"},
		Tokens:         store.TokenSet{AccessToken: "gho_16C7e42F292c6912E7710c838347Ae178B4a", RefreshToken: "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498", TokenType: "bearer", Expiry: time.Now().Add(8 * time.Hour)}}})
	if err != nil {
		b.Fatal(err)
	}
	sess := &store.Session{UserID: res.User.ID, Email: "ada@example.com", Name: "Ada Lovelace",
		ExpiresAt: time.Now().Add(time.Hour), UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", IP: "127.0.0.1"}
	if err := s.CreateSession(ctx, sess); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	return s, &res, sess
}

// BenchmarkSession is the read of every signed-in request, one goroutine
// at a time and from GOMAXPROCS goroutines at once.
func BenchmarkSession(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		s, _, sess := benchStore(b)
		ctx := context.Background()
		for b.Loop() {
			if _, err := s.Session(ctx, sess.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s, _, sess := benchStore(b)
		ctx := context.Background()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Session(ctx, sess.ID); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("unknown", func(b *testing.B) {
		s, _, _ := benchStore(b)
		ctx := context.Background()
		id := store.NewID("sess")
		for b.Loop() {
			if _, err := s.Session(ctx, id); err == nil {
				b.Fatal("an unknown session was found")
			}
		}
	})
}

// BenchmarkExternalAccounts is the read of routes with require or
// forward_token: the user's accounts with their tokens unsealed.
func BenchmarkExternalAccounts(b *testing.B) {
	s, res, _ := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		accs, err := s.ExternalAccounts(ctx, res.User.ID)
		if err != nil || len(accs) != 1 {
			b.Fatal(accs, err)
		}
	}
}

// BenchmarkSignIn_Returning is a returning user's sign-in: one transaction
// of locks and updates.
func BenchmarkSignIn_Returning(b *testing.B) {
	s, res, _ := benchStore(b)
	ctx := context.Background()
	in := store.SignIn{Account: *res.Account}
	for b.Loop() {
		if _, err := s.SignIn(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateExternalAccount is a token refresh's compare-and-swap.
func BenchmarkUpdateExternalAccount(b *testing.B) {
	s, res, _ := benchStore(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.UpdateExternalAccount(ctx, res.Account.ID, func(a *store.ExternalAccount) error {
			a.Tokens.Expiry = a.Tokens.Expiry.Add(time.Second)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedirectURLs is what a native sign-in start reads with 20,000
// allowlisted URLs of 1.5 KB: the version its compiled allowlist is checked
// against, a page of the API, and the whole list (what every start read
// before the allowlist was kept compiled).
func BenchmarkRedirectURLs(b *testing.B) {
	s := openDSN(b, freshDSN(b), Options{})
	ctx := context.Background()
	pad := strings.Repeat("p", 1500)
	for i := range 20000 {
		if _, err := s.CreateRedirectURL(ctx, fmt.Sprintf("app%d://cb/%s", i, pad)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.Run("version", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.RedirectURLsVersion(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("page", func(b *testing.B) {
		for b.Loop() {
			if list, _, err := s.RedirectURLs(ctx, store.RedirectURLQuery{Limit: 1, Offset: 10000}); err != nil || len(list) != 1 {
				b.Fatal(list, err)
			}
		}
	})
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			if list, _, err := s.RedirectURLs(ctx, store.RedirectURLQuery{}); err != nil || len(list) != 20000 {
				b.Fatal(len(list), err)
			}
		}
	})
}
