package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// UpdateExternalAccount implements Store.UpdateExternalAccount. When fn
// changes the account's email or its verification, the user's addresses and
// the email index follow in the same transaction, as at sign-in (and
// user.updated is recorded when they changed). An account that fn moves to
// needs_reauthorization records external_account.reauthorization_required.
func (r Rules) UpdateExternalAccount(ctx context.Context, id string, fn func(a *ExternalAccount) error) (*ExternalAccount, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("updating account: %w", ErrNotFound)
	}
	if fn == nil {
		return nil, fmt.Errorf("updating account %s: nil update function", id)
	}
	var out *ExternalAccount
	err := r.Backend.Update(ctx, func(tx Tx, events *Outbox) error {
		old, err := tx.Account(id, "")
		if err != nil {
			return err
		}
		acc := *old
		if err := fn(&acc); err != nil {
			return callerError{err}
		}
		// fn cannot move the account to another user or identity.
		acc.ID, acc.UserID, acc.Issuer, acc.Subject, acc.CreatedAt = old.ID, old.UserID, old.Issuer, old.Subject, old.CreatedAt
		if err := acc.Tokens.Check(); err != nil {
			return err
		}
		if err := CheckAddress(acc.Email); err != nil {
			return err
		}
		cleanAssertedIn(&acc.Email, &acc.EmailVerified) // not an address: none
		now := r.Backend.Now()
		acc.UpdatedAt = now
		var user *User
		if acc.Email != old.Email || acc.EmailVerified != old.EmailVerified {
			if user, err = syncUserEmail(tx, events, &acc, now); err != nil {
				return err
			}
		}
		if err := tx.SaveAccount(&acc); err != nil {
			return err
		}
		if err := ReauthorizationEvent(events, old, &acc); err != nil {
			return err
		}
		if user != nil {
			if err := userEvent(tx, events, EventUserUpdated, user, now); err != nil {
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

// ReauthorizationEvent records external_account.reauthorization_required
// in events when acc, as old was before, has just entered
// needs_reauthorization; every change of an account's status goes through
// it.
func ReauthorizationEvent(events *Outbox, old, acc *ExternalAccount) error {
	if acc.Status != StatusNeedsReauthorization || old.Status == StatusNeedsReauthorization {
		return nil
	}
	return events.Add(Event{Type: EventAccountReauthed, CreatedAt: acc.UpdatedAt, Account: acc})
}

// syncUserEmail brings the addresses of acc's user in line with acc's email
// (trusting no provider to take an address over) and saves the user; it
// returns the user when that changed it.
func syncUserEmail(tx Tx, out *Outbox, acc *ExternalAccount, now time.Time) (*User, error) {
	u, err := tx.LockUser(acc.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, moved("account %s belongs to user %s, which is missing", acc.ID, acc.UserID)
	}
	if err != nil {
		return nil, err
	}
	emails := Emails{Tx: tx, Out: out, Now: now}
	changed, err := emails.Sync(u, acc)
	if err != nil || !changed {
		return nil, err
	}
	u.UpdatedAt = now
	return u, tx.SaveUser(u)
}

// DeleteExternalAccount implements Store.DeleteExternalAccount. A nil check
// allows any unlink. The user is read (locked) first, so that a concurrent
// link or unlink of the user waits or conflicts and check sees exactly what
// will remain. It records session.revoked for each session it ends,
// external_account.deleted, and user.updated when the user's addresses
// changed.
func (r Rules) DeleteExternalAccount(ctx context.Context, userID, accountID string, check func(remaining []*ExternalAccount) error) (*ExternalAccount, []string, error) {
	if !ValidID(userID) || !ValidID(accountID) {
		return nil, nil, fmt.Errorf("unlinking account: %w", ErrNotFound)
	}
	var out *ExternalAccount
	var revoked []string
	err := r.Backend.Update(ctx, func(tx Tx, events *Outbox) error {
		u, err := tx.LockUser(userID)
		if err != nil {
			return err
		}
		// An account of another user is not found: never reveal or touch it.
		acc, err := tx.Account(accountID, userID)
		if err != nil {
			return err
		}
		accs, err := tx.Accounts(userID)
		if err != nil {
			return err
		}
		remaining := slices.DeleteFunc(accs, func(a *ExternalAccount) bool { return a.ID == acc.ID })
		if check != nil {
			if err := check(remaining); err != nil {
				return callerError{err}
			}
		}
		if err := tx.DeleteAccount(acc); err != nil {
			return err
		}
		now := r.Backend.Now()
		emails := Emails{Tx: tx, Out: events, Now: now}
		changed, err := emails.Unlink(u, acc)
		if err != nil {
			return err
		}
		revoked = emails.Revoked
		if err := events.Add(Event{Type: EventAccountDeleted, CreatedAt: now, Account: acc}); err != nil {
			return err
		}
		if changed {
			u.UpdatedAt = now
			if err := tx.SaveUser(u); err != nil {
				return err
			}
			if err := events.Add(Event{Type: EventUserUpdated, CreatedAt: now, User: u, Accounts: remaining}); err != nil {
				return err
			}
		}
		out = acc
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
