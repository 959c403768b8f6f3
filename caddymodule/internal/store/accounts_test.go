package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// checkClean fails the test when Check reports anything.
func checkClean(t testing.TB, b *Badger) {
	t.Helper()
	if problems, err := b.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Errorf("Check = %q, %v; want none", problems, err)
	}
}

func TestExternalAccount_ReturnsTheAccount(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		ctx := context.Background()
		res := mustSignIn(t, b, SignIn{Account: account("abe", "abe@example.com", true)})
		got, err := b.ExternalAccount(ctx, res.Account.ID)
		if err != nil || got.ID != res.Account.ID || got.UserID != res.User.ID || got.Tokens.RefreshToken != "rt-abe" {
			t.Errorf("ExternalAccount = %+v, %v", got, err)
		}
		for _, id := range []string{NewID("eac"), "", "eac/x", "a\x00b"} {
			if _, err := b.ExternalAccount(ctx, id); !errors.Is(err, ErrNotFound) {
				t.Errorf("ExternalAccount(%q) = %v, want ErrNotFound", id, err)
			}
		}
	})
}

func TestUpdateExternalAccount_WritesWhatFnLeavesButNotTheIdentity(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		res := mustSignIn(t, b, SignIn{Account: account("bea", "bea@example.com", true), Now: clk.Now()})
		other := mustSignIn(t, b, SignIn{Account: account("cal", "", false)})
		clk.Advance(time.Minute)
		got, err := b.UpdateExternalAccount(ctx, res.Account.ID, func(a *ExternalAccount) error {
			a.Tokens = TokenSet{AccessToken: "at-new", RefreshToken: "rt-new"}
			a.Status = StatusNeedsReauthorization
			a.Label = "work"
			a.ApprovedScopes = append(a.ApprovedScopes, "repo")
			// None of these may stick.
			a.ID, a.UserID, a.Issuer, a.Subject = NewID("eac"), other.User.ID, "https://evil.example", "cal"
			a.CreatedAt = time.Time{}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := b.ExternalAccount(ctx, res.Account.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []*ExternalAccount{got, stored} {
			if a.ID != res.Account.ID || a.UserID != res.User.ID || a.Issuer != testIssuer || a.Subject != "bea" ||
				!a.CreatedAt.Equal(res.Account.CreatedAt) {
				t.Errorf("identity fields moved: %+v", a)
			}
			if a.Tokens.RefreshToken != "rt-new" || a.Status != StatusNeedsReauthorization || a.Label != "work" ||
				!slices.Equal(a.ApprovedScopes, []string{"repo"}) || !a.UpdatedAt.Equal(clk.Now()) {
				t.Errorf("update not applied: %+v", a)
			}
		}
		if accs, _ := b.ExternalAccounts(ctx, other.User.ID); len(accs) != 1 {
			t.Errorf("the other user has %d accounts, want 1", len(accs))
		}
		checkClean(t, b)
	})
}

func TestUpdateExternalAccount_FnErrorAbortsAndIsReturnedAsIs(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		ctx := context.Background()
		res := mustSignIn(t, b, SignIn{Account: account("dan", "dan@example.com", true)})
		before := dump(t, b)
		custom := errors.New("provider said no")
		for _, want := range []error{ErrStale, custom, fmt.Errorf("wrapped: %w", ErrStale)} {
			got, err := b.UpdateExternalAccount(ctx, res.Account.ID, func(a *ExternalAccount) error {
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
		_, err := b.UpdateExternalAccount(ctx, res.Account.ID, func(*ExternalAccount) error { return fmt.Errorf("x: %w", ErrStale) })
		if !errors.Is(err, ErrStale) {
			t.Errorf("errors.Is(%v, ErrStale) = false", err)
		}
	})
}

func TestUpdateExternalAccount_UnknownAccountIsNotFound(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		called := false
		for _, id := range []string{NewID("eac"), "", "eac/x"} {
			_, err := b.UpdateExternalAccount(context.Background(), id, func(*ExternalAccount) error { called = true; return nil })
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("UpdateExternalAccount(%q) = %v, want ErrNotFound", id, err)
			}
		}
		if called {
			t.Error("fn was called for a missing account")
		}
	})
}

func TestUpdateExternalAccount_ConcurrentCompareAndSwapHasOneWinner(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		ctx := context.Background()
		id := mustSignIn(t, b, SignIn{Account: account("eve", "", false)}).Account.ID
		const n = 50
		var wins, stale atomic.Int32
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, err := b.UpdateExternalAccount(ctx, id, func(a *ExternalAccount) error {
					if a.Tokens.RefreshToken != "rt-eve" {
						return ErrStale
					}
					a.Tokens.RefreshToken = "rt-" + strconv.Itoa(i)
					return nil
				})
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, ErrStale):
					stale.Add(1)
				default:
					t.Errorf("UpdateExternalAccount: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || stale.Load() != n-1 {
			t.Errorf("%d winners and %d stale, want 1 and %d", wins.Load(), stale.Load(), n-1)
		}
	})
}

func TestUpdateExternalAccount_ConcurrentIncrementsLoseNoUpdate(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		ctx := context.Background()
		id := mustSignIn(t, b, SignIn{Account: account("fay", "", false)}).Account.ID
		const n = 50
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, err := b.UpdateExternalAccount(ctx, id, func(a *ExternalAccount) error {
					v, _ := strconv.Atoi(a.Label) // "" is 0
					// A slow transaction: without the per-account lock the
					// conflicts would exhaust the retries of some callers.
					time.Sleep(3 * time.Millisecond)
					a.Label = strconv.Itoa(v + 1)
					return nil
				})
				if err != nil {
					t.Errorf("UpdateExternalAccount: %v", err)
				}
			})
		}
		wg.Wait()
		if got, err := b.ExternalAccount(ctx, id); err != nil || got.Label != strconv.Itoa(n) {
			t.Errorf("counter = %q, %v; want %d", got.Label, err, n)
		}
	})
}

func TestUpdateExternalAccount_EmailChangeFollowsOnTheUser(t *testing.T) {
	type want struct {
		email    string
		verified bool
		vouched  bool // by the updated account
		indexed  bool // idx/email names the user
	}
	for _, tc := range []struct {
		name   string
		second bool // a second account of the user also vouches for old@example.com
		change func(a *ExternalAccount)
		want   []want
	}{
		{"new verified address moves the vouching", false,
			func(a *ExternalAccount) { a.Email = "new@example.com" },
			[]want{{"old@example.com", false, false, false}, {"new@example.com", true, true, true}}},
		{"verification withdrawn", false,
			func(a *ExternalAccount) { a.EmailVerified = false },
			[]want{{"old@example.com", false, false, false}}},
		{"email cleared", false,
			func(a *ExternalAccount) { a.Email, a.EmailVerified = "", false },
			[]want{{"old@example.com", false, false, false}}},
		{"another account still vouches", true,
			func(a *ExternalAccount) { a.Email = "new@example.com" },
			[]want{{"old@example.com", true, false, true}, {"new@example.com", true, true, true}}},
		{"new unverified address is recorded only", false,
			func(a *ExternalAccount) { a.Email, a.EmailVerified = "New@Example.com", false },
			[]want{{"old@example.com", false, false, false}, {"New@Example.com", false, false, false}}},
		{"case change alone keeps everything", false,
			func(a *ExternalAccount) { a.Email = "OLD@example.com" },
			[]want{{"old@example.com", true, true, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
				ctx := context.Background()
				res := mustSignIn(t, b, SignIn{Account: account("gus", "old@example.com", true)})
				if tc.second {
					mustSignIn(t, b, SignIn{Account: account("gus-2", "old@example.com", true), LinkToUser: res.User.ID})
				}
				if _, err := b.UpdateExternalAccount(ctx, res.Account.ID, func(a *ExternalAccount) error {
					tc.change(a)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				u, err := b.User(ctx, res.User.ID)
				if err != nil {
					t.Fatal(err)
				}
				if len(u.Emails) != len(tc.want) {
					t.Fatalf("emails = %+v, want %+v", u.Emails, tc.want)
				}
				for i, w := range tc.want {
					e := u.Emails[i]
					vouched := slices.Contains(e.VerifiedBy, res.Account.ID)
					if e.Email != w.email || e.Verified != w.verified || vouched != w.vouched {
						t.Errorf("email %d = %+v, want %+v", i, e, w)
					}
					holder, _ := emailHolderOf(t, b, w.email)
					if indexed := holder == res.User.ID; indexed != w.indexed {
						t.Errorf("%s indexed = %v, want %v", w.email, indexed, w.indexed)
					}
					if _, total, _ := b.Users(ctx, UserQuery{Email: w.email}); total != 1 {
						t.Errorf("Users(%s) total = %d, want 1", w.email, total)
					}
				}
				// An address no longer vouched for links nobody any more.
				later := mustSignIn(t, b, SignIn{Account: account("stranger", "old@example.com", true), LinkByVerifiedEmail: true})
				if linked := later.User.ID == res.User.ID; linked != tc.want[0].indexed {
					t.Errorf("a stranger with old@example.com linked = %v, want %v", linked, tc.want[0].indexed)
				}
				checkClean(t, b)
			})
		})
	}
}

// emailHolderOf reads idx/email directly.
func emailHolderOf(t testing.TB, b *Badger, email string) (string, bool) {
	t.Helper()
	v, ok := dump(t, b)[string(emailKey(email))]
	return v, ok
}
