package badger

import (
	"context"
	"errors"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"maps"
	"testing"
)

const testIssuer = "https://issuer.example"

// account is a provider's report of an identity.
func account(subject, email string, verified bool) store.ExternalAccount {
	return store.ExternalAccount{
		Provider:      "test",
		Issuer:        testIssuer,
		Subject:       subject,
		Email:         email,
		EmailVerified: verified,
		Name:          "Name of " + subject,
		ImageURL:      "https://img.example/" + subject,
		Tokens:        store.TokenSet{AccessToken: "at-" + subject, RefreshToken: "rt-" + subject},
	}
}

func mustSignIn(t *testing.T, b *Store, in store.SignIn) store.SignInResult {
	t.Helper()
	res, err := b.SignIn(context.Background(), in)
	if err != nil {
		t.Fatalf("store.SignIn(%s): %v", in.Account.Subject, err)
	}
	return res
}

// TestSignIn_UnverifiedEmailIsIndexedOnlyOnceVerified checks idx/email: an
// unverified address has no entry; verified later by the same account, it
// names the user. What the interface shows (the addresses, the linking) is
// storetest's SignIn_UnverifiedEmailIsRecordedButNeverLinks.
func TestSignIn_UnverifiedEmailIsIndexedOnlyOnceVerified(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Store, _ *fakeClock) {
		res := mustSignIn(t, b, store.SignIn{Account: account("gina", "gina@example.com", false)})
		if n := countPrefix(t, b, prefixEmail); n != 0 {
			t.Errorf("%d email index entries, want 0", n)
		}
		mustSignIn(t, b, store.SignIn{Account: account("gina", "GINA@example.com", true)})
		if n := countPrefix(t, b, prefixEmail); n != 1 {
			t.Errorf("%d email index entries, want 1", n)
		}
		if holder, _ := emailHolderOf(t, b, "gina@example.com"); holder != res.User.ID {
			t.Errorf("gina@example.com is indexed to %q, want %s", holder, res.User.ID)
		}
	})
}

// TestSignIn_LinkToUserRefusesAnotherUsersIdentity checks that a refused link
// leaves every raw key and value as it was (storetest compares what the
// interface shows).
func TestSignIn_LinkToUserRefusesAnotherUsersIdentity(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Store, _ *fakeClock) {
		ivy := mustSignIn(t, b, store.SignIn{Account: account("ivy", "ivy@example.com", true)})
		jack := mustSignIn(t, b, store.SignIn{Account: account("jack", "jack@example.com", true)})
		before := dump(t, b)

		changed := account("jack", "new@example.com", true)
		changed.Tokens.AccessToken = "stolen"
		_, err := b.SignIn(context.Background(), store.SignIn{Account: changed, LinkToUser: ivy.User.ID})
		if !errors.Is(err, store.ErrIdentityTaken) {
			t.Fatalf("store.SignIn = %v, want ErrIdentityTaken", err)
		}
		if after := dump(t, b); !maps.Equal(before, after) {
			t.Errorf("store changed on a refused link:\nbefore %q\nafter  %q", before, after)
		}
		if accs, _ := b.ExternalAccounts(context.Background(), jack.User.ID); len(accs) != 1 {
			t.Errorf("jack has %d accounts, want 1", len(accs))
		}
	})
}
