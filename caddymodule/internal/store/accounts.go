package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// ExternalAccount implements Store.ExternalAccount.
func (b *Badger) ExternalAccount(ctx context.Context, id string) (*ExternalAccount, error) {
	if !validID(id) {
		return nil, fmt.Errorf("loading account: %w", ErrNotFound)
	}
	var a ExternalAccount
	err := b.view(ctx, func(txn *badger.Txn) error { return getJSON(txn, eacKey(id), &a) })
	if err != nil {
		return nil, fmt.Errorf("loading account %s: %w", id, err)
	}
	return &a, nil
}

// ExternalAccountByIdentity implements Store.ExternalAccountByIdentity.
func (b *Badger) ExternalAccountByIdentity(ctx context.Context, issuer, subject string) (*ExternalAccount, error) {
	if issuer == "" || subject == "" || len(issuer)+len(subject) > maxIDLen || strings.ContainsRune(issuer+subject, 0) {
		return nil, fmt.Errorf("loading account by identity: %w", ErrNotFound)
	}
	var a ExternalAccount
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

// callerError carries an error of a caller's callback out of a transaction
// untouched: update retries only what Is badger.ErrConflict, and this does
// not unwrap.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }

// callerErr returns the callback's own error when err carries one, else nil.
func callerErr(err error) error {
	var ce callerError
	if errors.As(err, &ce) {
		return ce.err
	}
	return nil
}

// UpdateExternalAccount implements Store.UpdateExternalAccount. When fn
// changes the account's email or its verification, the user's addresses and
// the email indexes follow in the same transaction, as at sign-in (and
// user.updated is recorded when they changed). An account that fn moves to
// needs_reauthorization records external_account.reauthorization_required.
func (b *Badger) UpdateExternalAccount(ctx context.Context, id string, fn func(a *ExternalAccount) error) (*ExternalAccount, error) {
	if !validID(id) {
		return nil, fmt.Errorf("updating account: %w", ErrNotFound)
	}
	if fn == nil {
		return nil, fmt.Errorf("updating account %s: nil update function", id)
	}
	unlock, err := b.lockAccount(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("updating account %s: %w", id, err)
	}
	defer unlock()
	var out *ExternalAccount
	err = b.updateWithEvents(ctx, func(txn *badger.Txn, events *Outbox) error {
		var old ExternalAccount
		if err := getJSON(txn, eacKey(id), &old); err != nil {
			return err
		}
		acc := old
		if err := fn(&acc); err != nil {
			return callerError{err}
		}
		// fn cannot move the account to another user or identity.
		acc.ID, acc.UserID, acc.Issuer, acc.Subject, acc.CreatedAt = old.ID, old.UserID, old.Issuer, old.Subject, old.CreatedAt
		if err := acc.Tokens.Check(); err != nil {
			return err
		}
		now := b.now()
		acc.UpdatedAt = now
		var user *User
		if acc.Email != old.Email || acc.EmailVerified != old.EmailVerified {
			var err error
			if user, err = syncUserEmail(txn, events, &acc, now); err != nil {
				return err
			}
		}
		if err := setJSON(txn, eacKey(id), &acc, 0); err != nil {
			return err
		}
		if acc.Status == StatusNeedsReauthorization && old.Status != StatusNeedsReauthorization {
			if err := events.Add(Event{Type: EventAccountReauthed, CreatedAt: now, Account: &acc}); err != nil {
				return err
			}
		}
		if user != nil {
			if err := userEvent(txn, events, EventUserUpdated, user, now); err != nil {
				return err
			}
		}
		out = &acc
		return nil
	})
	if cerr := callerErr(err); cerr != nil {
		return nil, cerr
	}
	if err != nil {
		return nil, fmt.Errorf("updating account %s: %w", id, err)
	}
	return out, nil
}

// lockAccount waits for the account's update lock, or for ctx.
func (b *Badger) lockAccount(ctx context.Context, id string) (unlock func(), err error) {
	l := b.accountLocks[maphash.String(b.lockSeed, id)%uint64(len(b.accountLocks))]
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// syncUserEmail brings the addresses of acc's user in line with acc's email
// (trusting no provider to take an address over); it returns the user when
// that changed it.
func syncUserEmail(txn *badger.Txn, out *Outbox, acc *ExternalAccount, now time.Time) (*User, error) {
	var u User
	if err := getJSON(txn, userKey(acc.UserID), &u); err != nil {
		return nil, inconsistent(err, "account %s belongs to user %s", acc.ID, acc.UserID)
	}
	emails := Emails{Tx: badgerEmails{txn, now}, Out: out, Now: now}
	changed, err := emails.Sync(&u, acc)
	if err != nil || !changed {
		return nil, err
	}
	u.UpdatedAt = now
	return &u, setJSON(txn, userKey(u.ID), &u, 0)
}

// DeleteExternalAccount implements Store.DeleteExternalAccount. A nil check
// allows any unlink. It records session.revoked for each session it ends,
// external_account.deleted, and user.updated when the user's addresses
// changed.
func (b *Badger) DeleteExternalAccount(ctx context.Context, userID, accountID string, check func(remaining []*ExternalAccount) error) (*ExternalAccount, []string, error) {
	if !validID(userID) || !validID(accountID) {
		return nil, nil, fmt.Errorf("unlinking account: %w", ErrNotFound)
	}
	var out *ExternalAccount
	var revoked []string
	err := b.updateWithEvents(ctx, func(txn *badger.Txn, events *Outbox) error {
		var acc ExternalAccount
		err := getJSON(txn, eacKey(accountID), &acc)
		if err == nil && acc.UserID != userID {
			err = ErrNotFound // never reveal or touch another user's account
		}
		if err != nil {
			return err
		}
		var u User
		if err := getJSON(txn, userKey(userID), &u); err != nil {
			return inconsistent(err, "account %s belongs to user %s", acc.ID, userID)
		}
		// Reading the user and every user_eac entry makes a concurrent link
		// or unlink of this user conflict, so check sees what will remain.
		accs, err := accountsOf(txn, userID)
		if err != nil {
			return err
		}
		remaining := slices.DeleteFunc(accs, func(a *ExternalAccount) bool { return a.ID == acc.ID })
		if check != nil {
			if err := check(remaining); err != nil {
				return callerError{err}
			}
		}
		if err := deleteAccountRecords(txn, &acc); err != nil {
			return err
		}
		now := b.now()
		emails := Emails{Tx: badgerEmails{txn, now}, Out: events, Now: now}
		changed, err := emails.Unlink(&u, &acc)
		if err != nil {
			return err
		}
		revoked = emails.Revoked
		if err := events.Add(Event{Type: EventAccountDeleted, CreatedAt: now, Account: &acc}); err != nil {
			return err
		}
		if changed {
			u.UpdatedAt = now
			if err := setJSON(txn, userKey(u.ID), &u, 0); err != nil {
				return err
			}
			if err := events.Add(Event{Type: EventUserUpdated, CreatedAt: now, User: &u, Accounts: remaining}); err != nil {
				return err
			}
		}
		out = &acc
		return nil
	})
	if cerr := callerErr(err); cerr != nil {
		return nil, nil, cerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("unlinking account %s of user %s: %w", accountID, userID, err)
	}
	return out, revoked, nil
}

// accountsOf returns the user's accounts, oldest first.
func accountsOf(txn *badger.Txn, userID string) ([]*ExternalAccount, error) {
	var accs []*ExternalAccount
	err := scanKeys(txn, prefixUserEAC+userID+"/", func(eacID string) error {
		var acc ExternalAccount
		err := getJSON(txn, eacKey(eacID), &acc)
		if errors.Is(err, ErrNotFound) || (err == nil && acc.UserID != userID) {
			return nil // a stale index entry; Check reports it
		}
		if err != nil {
			return fmt.Errorf("loading account %s: %w", eacID, err)
		}
		accs = append(accs, &acc)
		return nil
	})
	slices.SortFunc(accs, func(x, y *ExternalAccount) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
	return accs, err
}

// deleteAccountRecords deletes the account, its user_eac entry and its
// identity entry (when that points at it). Its user's record is the caller's.
func deleteAccountRecords(txn *badger.Txn, a *ExternalAccount) error {
	if err := txn.Delete(eacKey(a.ID)); err != nil {
		return err
	}
	if err := txn.Delete(userEACKey(a.UserID, a.ID)); err != nil {
		return err
	}
	idKey := identityKey(a.Issuer, a.Subject)
	got, err := getString(txn, idKey)
	if errors.Is(err, ErrNotFound) || (err == nil && got != a.ID) {
		return nil
	}
	if err != nil {
		return err
	}
	return txn.Delete(idKey)
}
