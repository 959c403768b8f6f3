package badger

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// User implements store.Store.User.
func (b *Store) User(ctx context.Context, id string) (*store.User, error) {
	if !store.ValidID(id) {
		return nil, fmt.Errorf("loading user: %w", store.ErrNotFound)
	}
	var u store.User
	err := b.view(ctx, func(txn *badger.Txn) error { return getJSON(txn, userKey(id), &u) })
	if err != nil {
		return nil, fmt.Errorf("loading user %s: %w", id, err)
	}
	return &u, nil
}

// ExternalAccounts implements store.Store.ExternalAccounts: the user's accounts,
// oldest first.
func (b *Store) ExternalAccounts(ctx context.Context, userID string) ([]*store.ExternalAccount, error) {
	if !store.ValidID(userID) {
		return nil, nil
	}
	var accs []*store.ExternalAccount
	err := b.view(ctx, func(txn *badger.Txn) error {
		var err error
		accs, err = accountsOf(txn, userID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing accounts of user %s: %w", userID, err)
	}
	return accs, nil
}

// Session implements store.Store.Session.
func (b *Store) Session(ctx context.Context, id string) (*store.Session, error) {
	if !store.ValidID(id) {
		return nil, fmt.Errorf("loading session: %w", store.ErrNotFound)
	}
	var s store.Session
	err := b.view(ctx, func(txn *badger.Txn) error { return getJSON(txn, sessionKey(id), &s) })
	if err == nil && !b.now().Before(s.ExpiresAt) {
		err = store.ErrNotFound // Badger drops it at the next second; the clock decides now
	}
	if err != nil {
		return nil, fmt.Errorf("loading session: %w", store.Redact(err, id))
	}
	return &s, nil
}

// DeleteSession implements store.Store.DeleteSession: the session and its user
// index entry go together.
func (b *Store) DeleteSession(ctx context.Context, id string) error {
	if err := b.endSession(ctx, id, store.EventSessionEnded); err != nil {
		return fmt.Errorf("deleting session: %w", store.Redact(err, id))
	}
	return nil
}

// RevokeSession implements store.Store.RevokeSession.
func (b *Store) RevokeSession(ctx context.Context, id string) error {
	if err := b.endSession(ctx, id, store.EventSessionRevoked); err != nil {
		return fmt.Errorf("revoking session: %w", store.Redact(err, id))
	}
	return nil
}

// touchBatch bounds the touches of one Badger transaction.
const touchBatch = 256

// TouchSessions implements store.Store.TouchSessions: the session and its user
// index entry get the new expiry together, and its count moves to the new
// expiry's hour.
func (b *Store) TouchSessions(ctx context.Context, touches []store.SessionTouch) error {
	for batch := range slices.Chunk(touches, touchBatch) {
		err := b.update(ctx, func(txn *badger.Txn) error {
			now := b.now()
			for _, t := range batch {
				if !store.ValidID(t.ID) {
					continue
				}
				var s store.Session
				err := getJSON(txn, sessionKey(t.ID), &s)
				if errors.Is(err, store.ErrNotFound) || (err == nil && (!now.Before(s.ExpiresAt) || !store.ValidID(s.UserID))) {
					continue
				}
				if err != nil {
					return fmt.Errorf("loading a session: %w", store.Redact(err, t.ID))
				}
				old := s
				if !s.Touch(t) {
					continue
				}
				if s.ID = t.ID; store.ExpiryHour(old.ExpiresAt) != store.ExpiryHour(s.ExpiresAt) {
					old.ID = t.ID
					if err := countSession(txn, &old, -1); err != nil {
						return err
					}
					if err := countSession(txn, &s, 1); err != nil {
						return err
					}
				}
				exp := badgerExpiry(s.ExpiresAt)
				if err := setJSON(txn, sessionKey(t.ID), &s, exp); err != nil {
					return err
				}
				if err := txn.SetEntry(&badger.Entry{Key: userSessKey(s.UserID, t.ID), ExpiresAt: exp}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("recording session activity: %w", err)
		}
	}
	return nil
}

// endSession deletes a session and its index entry and, when it was live,
// records an event of type typ.
func (b *Store) endSession(ctx context.Context, id, typ string) error {
	if !store.ValidID(id) {
		return nil
	}
	return b.updateWithEvents(ctx, func(txn *badger.Txn, out *store.Outbox) error {
		var s store.Session
		err := getJSON(txn, sessionKey(id), &s)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := txn.Delete(sessionKey(id)); err != nil {
			return err
		}
		s.ID = id
		if err := countSession(txn, &s, -1); err != nil {
			return err
		}
		if now := b.now(); now.Before(s.ExpiresAt) {
			if err := out.Add(store.Event{Type: typ, CreatedAt: now, Session: &s}); err != nil {
				return err
			}
		}
		if !store.ValidID(s.UserID) {
			return nil // a bad record can have no valid index entry
		}
		return txn.Delete(userSessKey(s.UserID, id))
	})
}

// Sessions implements store.Store.Sessions: the user's live sessions, oldest first.
func (b *Store) Sessions(ctx context.Context, userID string) ([]*store.Session, error) {
	if !store.ValidID(userID) {
		return nil, nil
	}
	now := b.now()
	var out []*store.Session
	err := b.view(ctx, func(txn *badger.Txn) error {
		return scanKeys(txn, prefixUserSess+userID+"/", func(sessID string) error {
			var s store.Session
			err := getJSON(txn, sessionKey(sessID), &s)
			if errors.Is(err, store.ErrNotFound) || (err == nil && (s.UserID != userID || !now.Before(s.ExpiresAt))) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("loading a session: %w", store.Redact(err, sessID))
			}
			out = append(out, &s)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing sessions of user %s: %w", userID, err)
	}
	slices.SortFunc(out, func(x, y *store.Session) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
	return out, nil
}

// PutEphemeral implements store.Store.PutEphemeral. kind is a fixed name without
// "/"; id is opaque (it may come from a query string).
func (b *Store) PutEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration) error {
	return b.putEphemeral(ctx, kind, id, value, ttl, false)
}

// CreateEphemeral implements store.Store.CreateEphemeral: the read and the write
// are one transaction, so of concurrent creators all but one lose the
// conflict, retry, and find the record.
func (b *Store) CreateEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration) error {
	return b.putEphemeral(ctx, kind, id, value, ttl, true)
}

func (b *Store) putEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration, create bool) error {
	if err := store.CheckPutEphemeral(kind, id, ttl); err != nil {
		return err
	}
	err := b.update(ctx, func(txn *badger.Txn) error {
		now := b.now()
		if create {
			if _, live, err := liveEphemeral(txn, kind, id, now); err != nil || live {
				return cmp.Or(err, store.ErrExists)
			}
		}
		exp := now.Add(ttl)
		val := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(value)), uint64(exp.UnixNano()))
		val = append(val, value...)
		return txn.SetEntry(&badger.Entry{Key: ephKey(kind, id), Value: val, ExpiresAt: badgerExpiry(exp)})
	})
	if err != nil {
		return fmt.Errorf("storing %s record: %w", kind, store.Redact(err, id))
	}
	return nil
}

// liveEphemeral reads the record under kind/id: its value, and whether it
// is there and unexpired (Badger's TTL has a one-second grain; the clock
// decides).
func liveEphemeral(txn *badger.Txn, kind, id string, now time.Time) ([]byte, bool, error) {
	item, err := txn.Get(ephKey(kind, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	val, err := item.ValueCopy(nil)
	if err != nil {
		return nil, false, err
	}
	if len(val) < 8 {
		return nil, false, errors.New("the record is truncated")
	}
	if exp := int64(binary.BigEndian.Uint64(val)); !now.Before(time.Unix(0, exp)) {
		return nil, false, nil
	}
	return val[8:], true, nil
}

// TakeEphemeral implements store.Store.TakeEphemeral. The read and the delete are
// one transaction, so of concurrent takers all but one lose the conflict,
// retry, and find nothing.
func (b *Store) TakeEphemeral(ctx context.Context, kind, id string) ([]byte, error) {
	if err := store.CheckTakeEphemeral(kind, id); err != nil {
		return nil, err
	}
	var out []byte
	err := b.update(ctx, func(txn *badger.Txn) error {
		val, live, err := liveEphemeral(txn, kind, id, b.now())
		if err != nil || !live {
			return cmp.Or(err, store.ErrNotFound) // an expired one: Badger's TTL removes it
		}
		out = val
		return txn.Delete(ephKey(kind, id))
	})
	if err != nil {
		return nil, fmt.Errorf("taking %s record: %w", kind, store.Redact(err, id))
	}
	return out, nil
}
