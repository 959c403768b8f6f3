package badger

import (
	"context"
	"errors"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"maps"
	"strings"
	"testing"
	"time"
)

// TestDeleteExternalAccount_RemovesTheAccountAndItsIndexes checks that no
// raw key survives the unlink that names the account or its identity. What
// the interface shows is storetest's DeleteExternalAccount_RemovesTheAccount.
func TestDeleteExternalAccount_RemovesTheAccountAndItsIndexes(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Store, _ *fakeClock) {
		first := mustSignIn(t, b, store.SignIn{Account: account("hal", "hal@example.com", true)})
		second := mustSignIn(t, b, store.SignIn{Account: account("hal-gh", "hal@work.example", true), LinkToUser: first.User.ID})
		if _, _, err := b.DeleteExternalAccount(context.Background(), first.User.ID, second.Account.ID, refuseLast); err != nil {
			t.Fatal(err)
		}
		for key := range dump(t, b) {
			if strings.Contains(key, second.Account.ID) || key == string(identityKey(testIssuer, "hal-gh")) {
				t.Errorf("key %q survived the unlink", key)
			}
		}
		checkClean(t, b)
	})
}

// errLastAccount is what a caller's check returns for a user's last account.
var errLastAccount = errors.New("the last sign-in method cannot be removed")

func refuseLast(remaining []*store.ExternalAccount) error {
	if len(remaining) == 0 {
		return errLastAccount
	}
	return nil
}

// TestDeleteExternalAccount_RefusedByCheckChangesNothing checks that a
// refused unlink leaves every raw key and value as it was (storetest compares
// what the interface shows).
func TestDeleteExternalAccount_RefusedByCheckChangesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Store, _ *fakeClock) {
		ctx := context.Background()
		res := mustSignIn(t, b, store.SignIn{Account: account("ida", "ida@example.com", true)})
		if err := b.CreateSession(ctx, &store.Session{UserID: res.User.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		before := dump(t, b)
		got, _, err := b.DeleteExternalAccount(ctx, res.User.ID, res.Account.ID, refuseLast)
		if err != errLastAccount || got != nil {
			t.Fatalf("DeleteExternalAccount = %v, %v; want exactly errLastAccount", got, err)
		}
		if after := dump(t, b); !maps.Equal(before, after) {
			t.Errorf("store changed on a refused unlink:\nbefore %q\nafter  %q", before, after)
		}
	})
}

// TestDeleteExternalAccount_UnlinkingTheOnlyVoucherDropsTheIndexEntry checks
// that idx/email no longer names a user once no account of theirs vouches for
// the address. The rest is storetest's
// DeleteExternalAccount_OfTheOnlyVoucherUnverifiesTheEmail.
func TestDeleteExternalAccount_UnlinkingTheOnlyVoucherDropsTheIndexEntry(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Store, _ *fakeClock) {
		// jo's Google account vouches for jo@example.com; her GitHub account
		// has no email. Unlinking Google leaves nobody vouching for it.
		google := mustSignIn(t, b, store.SignIn{Account: account("jo-google", "jo@example.com", true)})
		mustSignIn(t, b, store.SignIn{Account: account("jo-github", "", false), LinkToUser: google.User.ID})
		if _, ok := emailHolderOf(t, b, "jo@example.com"); !ok {
			t.Fatal("jo@example.com is not in the email index before the unlink")
		}
		if _, _, err := b.DeleteExternalAccount(context.Background(), google.User.ID, google.Account.ID, refuseLast); err != nil {
			t.Fatal(err)
		}
		if _, ok := emailHolderOf(t, b, "jo@example.com"); ok {
			t.Error("jo@example.com is still in the email index")
		}
		checkClean(t, b)
	})
}

// TestDeleteExternalAccount_AnotherUsersAccountIsNotFound checks that the
// refused unlinks leave every raw key and value as they were (storetest
// compares what the interface shows).
func TestDeleteExternalAccount_AnotherUsersAccountIsNotFound(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Store, _ *fakeClock) {
		ctx := context.Background()
		kay := mustSignIn(t, b, store.SignIn{Account: account("kay", "kay@example.com", true)})
		lou := mustSignIn(t, b, store.SignIn{Account: account("lou", "lou@example.com", true)})
		before := dump(t, b)
		for _, tc := range []struct{ user, account string }{
			{kay.User.ID, lou.Account.ID},
			{lou.User.ID, kay.Account.ID},
			{kay.User.ID, store.NewID("eac")},
			{store.NewID("user"), kay.Account.ID},
			{"", kay.Account.ID},
			{kay.User.ID, "eac/x"},
		} {
			called := false
			_, _, err := b.DeleteExternalAccount(ctx, tc.user, tc.account, func([]*store.ExternalAccount) error { called = true; return nil })
			if !errors.Is(err, store.ErrNotFound) || called {
				t.Errorf("unlinking %q of %q = %v (check called: %v), want ErrNotFound", tc.account, tc.user, err, called)
			}
		}
		if after := dump(t, b); !maps.Equal(before, after) {
			t.Error("store changed by refused unlinks")
		}
	})
}
