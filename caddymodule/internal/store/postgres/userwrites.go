package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// CreateUser implements store.Store.CreateUser. Two creations of one
// username, external id or address at once: a unique constraint fails one,
// which is retried and finds the other's.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	if err := store.NewUser(u, s.now()); err != nil {
		return fmt.Errorf("creating user: %w", err)
	}
	err := s.writeWithEvents(ctx, func(tx pgx.Tx, out *store.Outbox) error {
		if err := insertUser(ctx, tx, u); err != nil {
			return err
		}
		if err := claimHandles(ctx, tx, u, nil); err != nil {
			return err
		}
		emails := store.Emails{Tx: s.emails(ctx, tx, u.CreatedAt), Now: u.CreatedAt}
		if err := emails.Create(u); errors.Is(err, store.ErrExists) {
			return callerError{err}
		} else if err != nil {
			return err
		}
		return out.Add(store.Event{Type: store.EventUserCreated, CreatedAt: u.CreatedAt, User: u})
	})
	if cerr := callerErr(err); cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("creating user: %w", err)
	}
	return nil
}

// UpdateUser implements store.Store.UpdateUser.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(u *store.User) error) (store.UserUpdate, error) {
	if !validID(id) {
		return store.UserUpdate{}, fmt.Errorf("updating user: %w", store.ErrNotFound)
	}
	var res store.UserUpdate
	err := s.writeWithEvents(ctx, func(tx pgx.Tx, out *store.Outbox) error {
		old, err := lockUser(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.now()
		u, changed, err := store.UpdateUser(old, fn, now)
		if err != nil {
			return callerError{err}
		}
		if !changed {
			res = store.UserUpdate{User: old}
			return nil
		}
		res = store.UserUpdate{User: u, Changed: true}
		if err := claimHandles(ctx, tx, u, old); err != nil {
			return err
		}
		if err := saveUser(ctx, tx, u); err != nil {
			return err
		}
		if err := s.userEvent(ctx, tx, out, store.EventUserUpdated, u, now); err != nil {
			return err
		}
		if u.Banned && !old.Banned {
			revoked, err := s.revokeSessionsOf(ctx, tx, id)
			if err != nil {
				return err
			}
			res.RevokedSessions, err = store.RevokedSessions(out, revoked, now)
			return err
		}
		// The user's live sessions take its public metadata (Session.AdoptUser).
		return s.emails(ctx, tx, now).RewriteSessions(u.ID, func(sess *store.Session) bool { return sess.AdoptUser(u, now) })
	})
	if cerr := callerErr(err); cerr != nil {
		err = cerr
	}
	if err != nil {
		return store.UserUpdate{}, fmt.Errorf("updating user %s: %w", id, notFound(err))
	}
	return res, nil
}

// claimHandles gives u each of its handles that old (nil for a new user)
// did not have, failing with store.Taken when another user holds one, and
// deletes old's handles that u dropped.
func claimHandles(ctx context.Context, tx pgx.Tx, u, old *store.User) error {
	var had map[string]string
	if old != nil {
		had = old.Handles()
	}
	has := u.Handles()
	for kind, v := range had {
		if has[kind] != v {
			if _, err := tx.Exec(ctx, `DELETE FROM user_handles WHERE kind = $1 AND value = $2 AND user_id = $3`, kind, v, u.ID); err != nil {
				return err
			}
		}
	}
	for kind, v := range has {
		if had[kind] == v {
			continue
		}
		var holder string
		err := tx.QueryRow(ctx, `SELECT user_id FROM user_handles WHERE kind = $1 AND value = $2`, kind, v).Scan(&holder)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case holder != u.ID:
			return callerError{store.Taken(kind)}
		default:
			continue
		}
		// A concurrent claim of the same value fails the primary key; the
		// transaction is retried and finds the winner's row.
		if _, err := tx.Exec(ctx, `INSERT INTO user_handles (kind, value, user_id) VALUES ($1, $2, $3)`, kind, v, u.ID); err != nil {
			return err
		}
	}
	return nil
}
