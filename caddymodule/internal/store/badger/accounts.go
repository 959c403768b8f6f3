package badger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// ExternalAccount implements store.Store.ExternalAccount.
func (b *Store) ExternalAccount(ctx context.Context, id string) (*store.ExternalAccount, error) {
	if !store.ValidID(id) {
		return nil, fmt.Errorf("loading account: %w", store.ErrNotFound)
	}
	var a store.ExternalAccount
	err := b.view(ctx, func(txn *badger.Txn) error { return getJSON(txn, eacKey(id), &a) })
	if err != nil {
		return nil, fmt.Errorf("loading account %s: %w", id, err)
	}
	return &a, nil
}

// ExternalAccountByIdentity implements store.Store.ExternalAccountByIdentity.
func (b *Store) ExternalAccountByIdentity(ctx context.Context, issuer, subject string) (*store.ExternalAccount, error) {
	if !store.ValidIdentityLookup(issuer, subject) {
		return nil, fmt.Errorf("loading account by identity: %w", store.ErrNotFound)
	}
	var a store.ExternalAccount
	err := b.view(ctx, func(txn *badger.Txn) error {
		id, err := getString(txn, identityKey(issuer, subject))
		if err != nil {
			return err
		}
		return getJSON(txn, eacKey(id), &a)
	})
	if err != nil {
		return nil, fmt.Errorf("loading account by identity: %w", err)
	}
	return &a, nil
}

// UpdateExternalAccount implements store.Store.UpdateExternalAccount
// (store.Rules) under the account's update lock: updaters of one account
// queue in this process instead of all conflicting, which could exhaust
// their retries.
func (b *Store) UpdateExternalAccount(ctx context.Context, id string, fn func(a *store.ExternalAccount) error) (*store.ExternalAccount, error) {
	if !store.ValidID(id) {
		return nil, fmt.Errorf("updating account: %w", store.ErrNotFound)
	}
	unlock, err := b.lockAccount(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("updating account %s: %w", id, err)
	}
	defer unlock()
	return b.Rules.UpdateExternalAccount(ctx, id, fn)
}

// lockAccount waits for the account's update lock, or for ctx.
func (b *Store) lockAccount(ctx context.Context, id string) (unlock func(), err error) {
	l := b.accountLocks[maphash.String(b.lockSeed, id)%uint64(len(b.accountLocks))]
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// accountsOf returns the user's accounts, oldest first.
func accountsOf(txn *badger.Txn, userID string) ([]*store.ExternalAccount, error) {
	var accs []*store.ExternalAccount
	err := scanKeys(txn, prefixUserEAC+userID+"/", func(eacID string) error {
		var acc store.ExternalAccount
		err := getJSON(txn, eacKey(eacID), &acc)
		if errors.Is(err, store.ErrNotFound) || (err == nil && acc.UserID != userID) {
			return nil // a stale index entry; Check reports it
		}
		if err != nil {
			return fmt.Errorf("loading account %s: %w", eacID, err)
		}
		accs = append(accs, &acc)
		return nil
	})
	slices.SortFunc(accs, func(x, y *store.ExternalAccount) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
	return accs, err
}
