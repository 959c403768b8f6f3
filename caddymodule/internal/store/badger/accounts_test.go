package badger

import (
	"context"
	"errors"
	"fmt"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"maps"
	"testing"
)

// checkClean fails the test when Check reports anything.
func checkClean(t testing.TB, b *Store) {
	t.Helper()
	if problems, err := b.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Errorf("Check = %q, %v; want none", problems, err)
	}
}

// TestUpdateExternalAccount_FnErrorAbortsAndIsReturnedAsIs checks, besides
// fn's error coming back as is (as storetest's test of that name does), that
// aborted updates leave every raw key and value as it was.
func TestUpdateExternalAccount_FnErrorAbortsAndIsReturnedAsIs(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Store, _ *fakeClock) {
		ctx := context.Background()
		res := mustSignIn(t, b, store.SignIn{Account: account("dan", "dan@example.com", true)})
		before := dump(t, b)
		custom := errors.New("provider said no")
		for _, want := range []error{store.ErrStale, custom, fmt.Errorf("wrapped: %w", store.ErrStale)} {
			got, err := b.UpdateExternalAccount(ctx, res.Account.ID, func(a *store.ExternalAccount) error {
				a.Tokens.RefreshToken = "must not be written"
				return want
			})
			if err != want || got != nil {
				t.Errorf("UpdateExternalAccount = %v, %v; want exactly %v", got, err, want)
			}
		}
		if after := dump(t, b); !maps.Equal(before, after) {
			t.Errorf("store changed by aborted updates")
		}
		_, err := b.UpdateExternalAccount(ctx, res.Account.ID, func(*store.ExternalAccount) error { return fmt.Errorf("x: %w", store.ErrStale) })
		if !errors.Is(err, store.ErrStale) {
			t.Errorf("errors.Is(%v, store.ErrStale) = false", err)
		}
	})
}

// TestUpdateExternalAccount_EmailChangeFollowsInTheIndex checks idx/email
// after an account's address changes: it names the user exactly for the
// addresses some account of theirs still vouches for. The user's addresses,
// their vouching and their linking are storetest's
// UpdateExternalAccount_EmailChangeFollowsOnTheUser.
func TestUpdateExternalAccount_EmailChangeFollowsInTheIndex(t *testing.T) {
	type want struct {
		email   string
		indexed bool // idx/email names the user
	}
	for _, tc := range []struct {
		name   string
		second bool // a second account of the user also vouches for old@example.com
		change func(a *store.ExternalAccount)
		want   []want
	}{
		{"new verified address moves the vouching", false,
			func(a *store.ExternalAccount) { a.Email = "new@example.com" },
			[]want{{"old@example.com", false}, {"new@example.com", true}}},
		{"verification withdrawn", false,
			func(a *store.ExternalAccount) { a.EmailVerified = false },
			[]want{{"old@example.com", false}}},
		{"email cleared", false,
			func(a *store.ExternalAccount) { a.Email, a.EmailVerified = "", false },
			[]want{{"old@example.com", false}}},
		{"another account still vouches", true,
			func(a *store.ExternalAccount) { a.Email = "new@example.com" },
			[]want{{"old@example.com", true}, {"new@example.com", true}}},
		{"new unverified address is recorded only", false,
			func(a *store.ExternalAccount) { a.Email, a.EmailVerified = "New@Example.com", false },
			[]want{{"old@example.com", false}, {"New@Example.com", false}}},
		{"case change alone keeps everything", false,
			func(a *store.ExternalAccount) { a.Email = "OLD@example.com" },
			[]want{{"old@example.com", true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b *Store, _ *fakeClock) {
				res := mustSignIn(t, b, store.SignIn{Account: account("gus", "old@example.com", true)})
				if tc.second {
					mustSignIn(t, b, store.SignIn{Account: account("gus-2", "old@example.com", true), LinkToUser: res.User.ID})
				}
				if _, err := b.UpdateExternalAccount(context.Background(), res.Account.ID, func(a *store.ExternalAccount) error {
					tc.change(a)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				for _, w := range tc.want {
					holder, _ := emailHolderOf(t, b, w.email)
					if indexed := holder == res.User.ID; indexed != w.indexed {
						t.Errorf("%s indexed = %v, want %v", w.email, indexed, w.indexed)
					}
				}
				checkClean(t, b)
			})
		})
	}
}

// emailHolderOf reads idx/email directly.
func emailHolderOf(t testing.TB, b *Store, email string) (string, bool) {
	t.Helper()
	v, ok := dump(t, b)[string(emailKey(email))]
	return v, ok
}
