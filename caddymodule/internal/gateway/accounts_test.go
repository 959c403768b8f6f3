package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
)

// hookStore runs during once, while the gateway's read of accounts is on
// its way back.
type hookStore struct {
	store.Store
	during func()
}

func (h *hookStore) ExternalAccounts(ctx context.Context, userID string) ([]*store.ExternalAccount, error) {
	accs, err := h.Store.ExternalAccounts(ctx, userID)
	if h.during != nil {
		h.during()
		h.during = nil
	}
	return accs, err
}

// The linked accounts another gateway changed are read again once that
// change is heard, whether it names the user or everyone, and a read that
// raced the change is not cached.
func TestAccountsCache_ChangesHeardFromAnotherGatewayAreReadAgain(t *testing.T) {
	b, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	hs := &hookStore{Store: b}
	g := New(Config{Store: hs, AccountsCache: time.Hour})
	ctx := context.Background()
	res, err := b.SignIn(ctx, store.SignIn{Now: time.Now(), Account: store.ExternalAccount{Provider: "p", Issuer: "https://i", Subject: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	linked := func() int {
		accs, err := g.accountsOf(ctx, res.User.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(accs)
	}
	link := func(subject string) {
		if _, err := b.SignIn(ctx, store.SignIn{Now: time.Now(), LinkToUser: res.User.ID,
			Account: store.ExternalAccount{Provider: "p", Issuer: "https://i", Subject: subject}}); err != nil {
			t.Fatal(err)
		}
	}
	if linked() != 1 {
		t.Fatal("want one account")
	}
	link("s2") // by another gateway: this one's cache does not know
	if linked() != 1 {
		t.Fatal("the cache did not serve the accounts (the test needs it to)")
	}
	g.ForgetAccounts(res.User.ID)
	if n := linked(); n != 2 {
		t.Errorf("after ForgetAccounts: %d accounts, want 2", n)
	}
	link("s3")
	g.ForgetAllAccounts()
	if n := linked(); n != 3 {
		t.Errorf("after ForgetAllAccounts: %d accounts, want 3", n)
	}
	g.ForgetAccounts(res.User.ID) // so that the next read goes to the store
	hs.during = func() {
		link("s4")
		g.ForgetAccounts(res.User.ID) // heard while the read was on its way
	}
	if n := linked(); n != 3 {
		t.Fatalf("the racing read: %d accounts, want the 3 it read", n)
	}
	if n := linked(); n != 4 {
		t.Errorf("a read that raced a change was cached: %d accounts, want 4", n)
	}
}
