package store

import (
	"context"
	"fmt"
)

// CreateUser implements Store.CreateUser.
func (r Rules) CreateUser(ctx context.Context, u *User) error {
	if err := NewUser(u, r.Backend.Now()); err != nil {
		return fmt.Errorf("creating user: %w", err)
	}
	err := r.Backend.Update(ctx, func(tx Tx, out *Outbox) error {
		if err := tx.InsertUser(u); err != nil {
			return err
		}
		if err := claimHandles(tx, u, nil); err != nil {
			return err
		}
		emails := Emails{Tx: tx, Now: u.CreatedAt}
		if err := emails.Create(u); err != nil {
			return err
		}
		return out.Add(Event{Type: EventUserCreated, CreatedAt: u.CreatedAt, User: u})
	})
	if cerr := callerErr(err); cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("creating user: %w", err)
	}
	return nil
}

// UpdateUser implements Store.UpdateUser.
func (r Rules) UpdateUser(ctx context.Context, id string, fn func(u *User) error) (UserUpdate, error) {
	if !ValidID(id) {
		return UserUpdate{}, fmt.Errorf("updating user: %w", ErrNotFound)
	}
	var res UserUpdate
	err := r.Backend.Update(ctx, func(tx Tx, out *Outbox) error {
		old, err := tx.LockUser(id)
		if err != nil {
			return err
		}
		now := r.Backend.Now()
		u, changed, err := UpdateUser(old, fn, now)
		if err != nil {
			return callerError{err}
		}
		if !changed {
			res = UserUpdate{User: old}
			return nil
		}
		res = UserUpdate{User: u, Changed: true}
		if err := claimHandles(tx, u, old); err != nil {
			return err
		}
		if err := tx.SaveUser(u); err != nil {
			return err
		}
		if err := userEvent(tx, out, EventUserUpdated, u, now); err != nil {
			return err
		}
		if u.Banned && !old.Banned {
			revoked, err := tx.DeleteSessions(id)
			if err != nil {
				return err
			}
			res.RevokedSessions, err = RevokedSessions(out, revoked, now)
			return err
		}
		// The user's live sessions take its public metadata (Session.adoptUser).
		return tx.RewriteSessions(id, func(s *Session) bool { return s.adoptUser(u, now) })
	})
	if cerr := callerErr(err); cerr != nil {
		err = cerr
	}
	if err != nil {
		return UserUpdate{}, fmt.Errorf("updating user %s: %w", id, err)
	}
	return res, nil
}

// claimHandles makes u hold each of its handles that old (nil for a new
// user) did not have, failing with Taken when another user holds one, and
// releases old's handles that u dropped.
func claimHandles(tx Tx, u, old *User) error {
	var had map[string]string
	if old != nil {
		had = old.Handles()
	}
	has := u.Handles()
	for kind, v := range had {
		if has[kind] == v {
			continue
		}
		if err := tx.ReleaseHandle(kind, v, u.ID); err != nil {
			return err
		}
	}
	for kind, v := range has {
		if had[kind] == v {
			continue
		}
		switch holder, err := tx.HandleHolder(kind, v); {
		case err != nil:
			return err
		case holder == u.ID:
			continue
		case holder != "":
			return callerError{Taken(kind)}
		}
		if err := tx.HoldHandle(kind, v, u); err != nil {
			return err
		}
	}
	return nil
}

// DeleteUser implements Store.DeleteUser in one transaction. It records
// external_account.deleted for each account, then user.deleted; the
// sessions end without events of their own.
func (r Rules) DeleteUser(ctx context.Context, id string) error {
	if !ValidID(id) {
		return fmt.Errorf("deleting user: %w", ErrNotFound)
	}
	err := r.Backend.Update(ctx, func(tx Tx, out *Outbox) error {
		// Locked first: links and unlinks of this user, which lock it first
		// too, wait, so the accounts read are the accounts deleted.
		u, err := tx.LockUser(id)
		if err != nil {
			return err
		}
		accounts, err := tx.Accounts(id)
		if err != nil {
			return err
		}
		if err := tx.DeleteUser(u); err != nil {
			return err
		}
		now := r.Backend.Now()
		for _, a := range accounts {
			if err := out.Add(Event{Type: EventAccountDeleted, CreatedAt: now, Account: a}); err != nil {
				return err
			}
		}
		// The user is gone: its event names it and no more.
		return out.Add(Event{Type: EventUserDeleted, CreatedAt: now, User: &User{ID: id}})
	})
	if err != nil {
		return fmt.Errorf("deleting user %s: %w", id, err)
	}
	return nil
}
