package store

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDeleteExternalAccount_RemovesTheAccountAndItsIndexes(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		first := mustSignIn(t, b, SignIn{Account: account("hal", "hal@example.com", true), Now: clk.Now()})
		clk.Advance(time.Second)
		gh := account("hal-gh", "hal@work.example", true)
		gh.Tokens.RefreshToken = "rt-to-revoke"
		second := mustSignIn(t, b, SignIn{Account: gh, LinkToUser: first.User.ID, Now: clk.Now()})
		var seen []*ExternalAccount
		got, err := b.DeleteExternalAccount(ctx, first.User.ID, second.Account.ID, func(remaining []*ExternalAccount) error {
			seen = remaining
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != second.Account.ID || got.Tokens.RefreshToken != "rt-to-revoke" {
			t.Errorf("returned account = %+v, want the unlinked one with its tokens", got)
		}
		if len(seen) != 1 || seen[0].ID != first.Account.ID {
			t.Errorf("check saw %v, want only %s", seen, first.Account.ID)
		}
		if _, err := b.ExternalAccount(ctx, second.Account.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("ExternalAccount after unlink = %v, want ErrNotFound", err)
		}
		if accs, _ := b.ExternalAccounts(ctx, first.User.ID); len(accs) != 1 || accs[0].ID != first.Account.ID {
			t.Errorf("ExternalAccounts after unlink = %v", accs)
		}
		for key := range dump(t, b) {
			if strings.Contains(key, second.Account.ID) || key == string(identityKey(testIssuer, "hal-gh")) {
				t.Errorf("key %q survived the unlink", key)
			}
		}
		// The identity is free: signing in with it makes a new user.
		if again := mustSignIn(t, b, SignIn{Account: gh}); again.User.ID == first.User.ID || !again.UserCreated {
			t.Errorf("sign-in with the unlinked identity = %+v, want a new user", again)
		}
		checkClean(t, b)
	})
}

// errLastAccount is what a caller's check returns for a user's last account.
var errLastAccount = errors.New("the last sign-in method cannot be removed")

func refuseLast(remaining []*ExternalAccount) error {
	if len(remaining) == 0 {
		return errLastAccount
	}
	return nil
}

func TestDeleteExternalAccount_RefusedByCheckChangesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		ctx := context.Background()
		res := mustSignIn(t, b, SignIn{Account: account("ida", "ida@example.com", true)})
		if err := b.CreateSession(ctx, &Session{UserID: res.User.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		before := dump(t, b)
		got, err := b.DeleteExternalAccount(ctx, res.User.ID, res.Account.ID, refuseLast)
		if err != errLastAccount || got != nil {
			t.Fatalf("DeleteExternalAccount = %v, %v; want exactly errLastAccount", got, err)
		}
		if after := dump(t, b); !maps.Equal(before, after) {
			t.Errorf("store changed on a refused unlink:\nbefore %q\nafter  %q", before, after)
		}
	})
}

func TestDeleteExternalAccount_UnlinkingTheOnlyVoucherUnverifiesTheEmail(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		// jo's Google account vouches for jo@example.com; her GitHub account
		// has no email. Unlinking Google leaves nobody vouching for it.
		google := mustSignIn(t, b, SignIn{Account: account("jo-google", "jo@example.com", true)})
		clk.Advance(time.Second)
		github := mustSignIn(t, b, SignIn{Account: account("jo-github", "", false), LinkToUser: google.User.ID})
		if _, err := b.DeleteExternalAccount(ctx, google.User.ID, google.Account.ID, refuseLast); err != nil {
			t.Fatal(err)
		}
		u, err := b.User(ctx, google.User.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(u.Emails) != 1 || u.Emails[0].Verified || len(u.Emails[0].VerifiedBy) != 0 {
			t.Errorf("emails after unlink = %+v, want jo@example.com unverified", u.Emails)
		}
		if _, ok := emailHolderOf(t, b, "jo@example.com"); ok {
			t.Error("jo@example.com is still in the email index")
		}
		// The address still finds jo in the user list...
		if users, total, err := b.Users(ctx, UserQuery{Email: "jo@example.com"}); err != nil || total != 1 || users[0].ID != u.ID {
			t.Errorf("Users(jo@example.com) = %v, %d, %v", users, total, err)
		}
		// ...but links nobody to her.
		later := mustSignIn(t, b, SignIn{Account: account("someone", "jo@example.com", true), LinkByVerifiedEmail: true})
		if later.User.ID == u.ID {
			t.Error("a later sign-in with jo@example.com linked to jo")
		}
		if accs, _ := b.ExternalAccounts(ctx, u.ID); len(accs) != 1 || accs[0].ID != github.Account.ID {
			t.Errorf("jo's accounts = %v, want only GitHub", accs)
		}
		checkClean(t, b)
	})
}

func TestDeleteExternalAccount_AnotherUsersAccountIsNotFound(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		ctx := context.Background()
		kay := mustSignIn(t, b, SignIn{Account: account("kay", "kay@example.com", true)})
		lou := mustSignIn(t, b, SignIn{Account: account("lou", "lou@example.com", true)})
		before := dump(t, b)
		for _, tc := range []struct{ user, account string }{
			{kay.User.ID, lou.Account.ID},
			{lou.User.ID, kay.Account.ID},
			{kay.User.ID, NewID("eac")},
			{NewID("user"), kay.Account.ID},
			{"", kay.Account.ID},
			{kay.User.ID, "eac/x"},
		} {
			called := false
			_, err := b.DeleteExternalAccount(ctx, tc.user, tc.account, func([]*ExternalAccount) error { called = true; return nil })
			if !errors.Is(err, ErrNotFound) || called {
				t.Errorf("unlinking %q of %q = %v (check called: %v), want ErrNotFound", tc.account, tc.user, err, called)
			}
		}
		if after := dump(t, b); !maps.Equal(before, after) {
			t.Error("store changed by refused unlinks")
		}
	})
}

func TestDeleteExternalAccount_ConcurrentUnlinksKeepTheLastAccount(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		ctx := context.Background()
		for round := range 5 {
			first := mustSignIn(t, b, SignIn{Account: account("max-"+string(rune('a'+round)), "", false)})
			second := mustSignIn(t, b, SignIn{Account: account("max2-"+string(rune('a'+round)), "", false), LinkToUser: first.User.ID})
			var ok, refused atomic.Int32
			var wg sync.WaitGroup
			for _, id := range []string{first.Account.ID, second.Account.ID} {
				wg.Go(func() {
					_, err := b.DeleteExternalAccount(ctx, first.User.ID, id, refuseLast)
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, errLastAccount):
						refused.Add(1)
					default:
						t.Errorf("DeleteExternalAccount: %v", err)
					}
				})
			}
			wg.Wait()
			if accs, _ := b.ExternalAccounts(ctx, first.User.ID); ok.Load() != 1 || refused.Load() != 1 || len(accs) != 1 {
				t.Errorf("round %d: %d unlinked, %d refused, %d left; want 1, 1, 1", round, ok.Load(), refused.Load(), len(accs))
			}
		}
		checkClean(t, b)
	})
}
