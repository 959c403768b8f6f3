package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// prefixHandle indexes the values unique among users:
// idx/handle/<kind>/<value> holds the id of the user who has it.
const prefixHandle = "idx/handle/"

func handleKey(kind, value string) []byte { return []byte(prefixHandle + kind + "/" + value) }

// CreateUser implements Store.CreateUser.
func (b *Badger) CreateUser(ctx context.Context, u *User) error {
	if err := NewUser(u, b.now()); err != nil {
		return fmt.Errorf("creating user: %w", err)
	}
	err := b.updateWithEvents(ctx, func(txn *badger.Txn, out *Outbox) error {
		if err := claimHandles(txn, u, nil); err != nil {
			return err
		}
		emails := Emails{Tx: badgerEmails{txn, u.CreatedAt}, Now: u.CreatedAt}
		if err := emails.Create(u); err != nil {
			return err
		}
		if err := setJSON(txn, userKey(u.ID), u, 0); err != nil {
			return err
		}
		if err := addUser(txn, u); err != nil {
			return err
		}
		return out.Add(Event{Type: EventUserCreated, CreatedAt: u.CreatedAt, User: u})
	})
	if err != nil {
		return fmt.Errorf("creating user: %w", err)
	}
	return nil
}

// UpdateUser implements Store.UpdateUser.
func (b *Badger) UpdateUser(ctx context.Context, id string, fn func(u *User) error) (UserUpdate, error) {
	if !validID(id) {
		return UserUpdate{}, fmt.Errorf("updating user: %w", ErrNotFound)
	}
	var res UserUpdate
	err := b.updateWithEvents(ctx, func(txn *badger.Txn, out *Outbox) error {
		var old User
		if err := getJSON(txn, userKey(id), &old); err != nil {
			return err
		}
		now := b.now()
		u, changed, err := UpdateUser(&old, fn, now)
		if err != nil || !changed {
			res = UserUpdate{User: &old}
			return err
		}
		res = UserUpdate{User: u, Changed: true}
		if err := claimHandles(txn, u, &old); err != nil {
			return err
		}
		if err := setJSON(txn, userKey(id), u, 0); err != nil {
			return err
		}
		if err := userEvent(txn, out, EventUserUpdated, u, now); err != nil {
			return err
		}
		if u.Banned && !old.Banned {
			revoked, err := revokeSessionsOf(txn, id)
			if err != nil {
				return err
			}
			res.RevokedSessions, err = RevokedSessions(out, revoked, now)
			return err
		}
		// The user's live sessions take its public metadata (Session.AdoptUser).
		return badgerEmails{txn, now}.RewriteSessions(id, func(s *Session) bool { return s.AdoptUser(u, now) })
	})
	if err != nil {
		return UserUpdate{}, fmt.Errorf("updating user %s: %w", id, err)
	}
	return res, nil
}

// claimHandles points the handle index at u for each of u's handles that
// old (nil for a new user) did not have, failing with Taken when another
// user holds one, and releases old's handles that u dropped.
func claimHandles(txn *badger.Txn, u, old *User) error {
	var had map[string]string
	if old != nil {
		had = old.Handles()
	}
	has := u.Handles()
	for kind, v := range had {
		if has[kind] == v {
			continue
		}
		if err := releaseHandle(txn, kind, v, u.ID); err != nil {
			return err
		}
	}
	for kind, v := range has {
		if had[kind] == v {
			continue
		}
		holder, err := getString(txn, handleKey(kind, v))
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		case holder != u.ID:
			ok, err := exists(txn, userKey(holder))
			if err != nil {
				return err
			}
			if ok {
				return Taken(kind)
			}
		}
		if err := txn.Set(handleKey(kind, v), []byte(u.ID)); err != nil {
			return err
		}
	}
	return nil
}

// releaseHandle deletes the handle entry of kind and value if it names
// userID.
func releaseHandle(txn *badger.Txn, kind, value, userID string) error {
	holder, err := getString(txn, handleKey(kind, value))
	if errors.Is(err, ErrNotFound) || (err == nil && holder != userID) {
		return nil
	}
	if err != nil {
		return err
	}
	return txn.Delete(handleKey(kind, value))
}

// allUsers reads every user, for SelectUsers.
func allUsers(txn *badger.Txn) ([]*User, error) {
	var out []*User
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(prefixUser)
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var u User
		if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &u) }); err != nil {
			return nil, fmt.Errorf("decoding user %s: %w", it.Item().Key(), err)
		}
		out = append(out, &u)
	}
	return out, nil
}
