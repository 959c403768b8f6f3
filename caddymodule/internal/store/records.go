package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// User implements Store.User.
func (b *Badger) User(ctx context.Context, id string) (*User, error) {
	if !validID(id) {
		return nil, fmt.Errorf("loading user: %w", ErrNotFound)
	}
	var u User
	err := b.view(ctx, func(txn *badger.Txn) error { return getJSON(txn, userKey(id), &u) })
	if err != nil {
		return nil, fmt.Errorf("loading user %s: %w", id, err)
	}
	return &u, nil
}

// ExternalAccounts implements Store.ExternalAccounts: the user's accounts,
// oldest first.
func (b *Badger) ExternalAccounts(ctx context.Context, userID string) ([]*ExternalAccount, error) {
	if !validID(userID) {
		return nil, nil
	}
	var accs []*ExternalAccount
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

// CreateSession implements Store.CreateSession. The user must exist
// (ErrNotFound otherwise). An empty s.ID is set to a new sess_ id and a zero
// s.CreatedAt to now; s.ExpiresAt must be in the future. It records
// session.created.
func (b *Badger) CreateSession(ctx context.Context, s *Session) error {
	if s == nil {
		return errors.New("creating session: nil session")
	}
	now := b.now()
	if s.ID == "" {
		s.ID = NewID("sess")
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	switch {
	case !validID(s.ID):
		return errors.New("creating session: invalid session id")
	case !validID(s.UserID):
		return fmt.Errorf("creating session: user: %w", ErrNotFound)
	case !s.ExpiresAt.After(now):
		return errors.New("creating session: it expires in the past")
	}
	exp := badgerExpiry(s.ExpiresAt)
	err := b.updateWithEvents(ctx, func(txn *badger.Txn, out *Outbox) error {
		item, err := txn.Get(userKey(s.UserID))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("user %s: %w", s.UserID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		// Rewrite the user unchanged: a DeleteUser, a ban or a change that
		// withdraws the address the session carries, running alongside,
		// read it, so one of the two now conflicts and retries. Without the
		// write, they could miss this session (it did not exist when they
		// listed them) and a deleted or banned user would stay signed in.
		user, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		var u User
		if err := json.Unmarshal(user, &u); err != nil {
			return fmt.Errorf("decoding user %s: %w", s.UserID, err)
		}
		if err := u.CanSignIn(); err != nil {
			return err
		}
		if err := txn.Set(userKey(s.UserID), user); err != nil {
			return err
		}
		u.DropUnheldEmail(s)
		// Reading the account makes an unlink of it alongside conflict: a
		// session never starts through an account its user no longer has.
		if s.AccountID != "" {
			var acc ExternalAccount
			if err := getJSON(txn, eacKey(s.AccountID), &acc); err != nil || acc.UserID != s.UserID {
				return fmt.Errorf("its account %s: %w", s.AccountID, cmp.Or(err, ErrNotFound))
			}
		}
		// Ids are 128-bit random: a clash means a caller reused one.
		if ok, err := exists(txn, sessionKey(s.ID)); err != nil || ok {
			return cmp.Or(err, errors.New("the session id is taken"))
		}
		if err := setJSON(txn, sessionKey(s.ID), s, exp); err != nil {
			return err
		}
		if err := txn.SetEntry(&badger.Entry{Key: userSessKey(s.UserID, s.ID), ExpiresAt: exp}); err != nil {
			return err
		}
		return out.Add(Event{Type: EventSessionCreated, CreatedAt: now, Session: s})
	})
	if err != nil {
		return fmt.Errorf("creating session: %w", redact(err, s.ID))
	}
	return nil
}

// Session implements Store.Session. Errors never carry the session id: it is
// the bearer secret a cookie stands for.
func (b *Badger) Session(ctx context.Context, id string) (*Session, error) {
	if !validID(id) {
		return nil, fmt.Errorf("loading session: %w", ErrNotFound)
	}
	var s Session
	err := b.view(ctx, func(txn *badger.Txn) error { return getJSON(txn, sessionKey(id), &s) })
	if err == nil && !b.now().Before(s.ExpiresAt) {
		err = ErrNotFound // Badger drops it at the next second; the clock decides now
	}
	if err != nil {
		return nil, fmt.Errorf("loading session: %w", redact(err, id))
	}
	return &s, nil
}

// DeleteSession implements Store.DeleteSession: the session and its user
// index entry go together.
func (b *Badger) DeleteSession(ctx context.Context, id string) error {
	if err := b.endSession(ctx, id, EventSessionEnded); err != nil {
		return fmt.Errorf("deleting session: %w", redact(err, id))
	}
	return nil
}

// RevokeSession implements Store.RevokeSession.
func (b *Badger) RevokeSession(ctx context.Context, id string) error {
	if err := b.endSession(ctx, id, EventSessionRevoked); err != nil {
		return fmt.Errorf("revoking session: %w", redact(err, id))
	}
	return nil
}

// touchBatch bounds the touches of one Badger transaction.
const touchBatch = 256

// TouchSessions implements Store.TouchSessions: the session and its user
// index entry get the new expiry together.
func (b *Badger) TouchSessions(ctx context.Context, touches []SessionTouch) error {
	for batch := range slices.Chunk(touches, touchBatch) {
		err := b.update(ctx, func(txn *badger.Txn) error {
			now := b.now()
			for _, t := range batch {
				if !validID(t.ID) {
					continue
				}
				var s Session
				err := getJSON(txn, sessionKey(t.ID), &s)
				if errors.Is(err, ErrNotFound) || (err == nil && (!now.Before(s.ExpiresAt) || !validID(s.UserID))) {
					continue
				}
				if err != nil {
					return fmt.Errorf("loading a session: %w", redact(err, t.ID))
				}
				if !s.Touch(t) {
					continue
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
func (b *Badger) endSession(ctx context.Context, id, typ string) error {
	if !validID(id) {
		return nil
	}
	return b.updateWithEvents(ctx, func(txn *badger.Txn, out *Outbox) error {
		var s Session
		err := getJSON(txn, sessionKey(id), &s)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := txn.Delete(sessionKey(id)); err != nil {
			return err
		}
		if now := b.now(); now.Before(s.ExpiresAt) {
			if err := out.Add(Event{Type: typ, CreatedAt: now, Session: &s}); err != nil {
				return err
			}
		}
		if !validID(s.UserID) {
			return nil // a bad record can have no valid index entry
		}
		return txn.Delete(userSessKey(s.UserID, id))
	})
}

// Sessions implements Store.Sessions: the user's live sessions, oldest first.
func (b *Badger) Sessions(ctx context.Context, userID string) ([]*Session, error) {
	if !validID(userID) {
		return nil, nil
	}
	now := b.now()
	var out []*Session
	err := b.view(ctx, func(txn *badger.Txn) error {
		return scanKeys(txn, prefixUserSess+userID+"/", func(sessID string) error {
			var s Session
			err := getJSON(txn, sessionKey(sessID), &s)
			if errors.Is(err, ErrNotFound) || (err == nil && (s.UserID != userID || !now.Before(s.ExpiresAt))) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("loading a session: %w", redact(err, sessID))
			}
			out = append(out, &s)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing sessions of user %s: %w", userID, err)
	}
	slices.SortFunc(out, func(x, y *Session) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
	return out, nil
}

// PutEphemeral implements Store.PutEphemeral. kind is a fixed name without
// "/"; id is opaque (it may come from a query string).
func (b *Badger) PutEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration) error {
	return b.putEphemeral(ctx, kind, id, value, ttl, false)
}

// CreateEphemeral implements Store.CreateEphemeral: the read and the write
// are one transaction, so of concurrent creators all but one lose the
// conflict, retry, and find the record.
func (b *Badger) CreateEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration) error {
	return b.putEphemeral(ctx, kind, id, value, ttl, true)
}

func (b *Badger) putEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration, create bool) error {
	switch {
	case !validKind(kind):
		return fmt.Errorf("storing %q record: invalid kind", kind)
	case id == "" || len(id) > maxIDLen:
		return fmt.Errorf("storing %s record: invalid id", kind)
	case ttl <= 0:
		return fmt.Errorf("storing %s record: ttl %v is not positive", kind, ttl)
	}
	err := b.update(ctx, func(txn *badger.Txn) error {
		now := b.now()
		if create {
			if _, live, err := liveEphemeral(txn, kind, id, now); err != nil || live {
				return cmp.Or(err, ErrExists)
			}
		}
		exp := now.Add(ttl)
		val := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(value)), uint64(exp.UnixNano()))
		val = append(val, value...)
		return txn.SetEntry(&badger.Entry{Key: ephKey(kind, id), Value: val, ExpiresAt: badgerExpiry(exp)})
	})
	if err != nil {
		return fmt.Errorf("storing %s record: %w", kind, redact(err, id))
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

// TakeEphemeral implements Store.TakeEphemeral. The read and the delete are
// one transaction, so of concurrent takers all but one lose the conflict,
// retry, and find nothing.
func (b *Badger) TakeEphemeral(ctx context.Context, kind, id string) ([]byte, error) {
	if !validKind(kind) {
		return nil, fmt.Errorf("taking %q record: invalid kind", kind)
	}
	if id == "" || len(id) > maxIDLen {
		return nil, fmt.Errorf("taking %s record: %w", kind, ErrNotFound)
	}
	var out []byte
	err := b.update(ctx, func(txn *badger.Txn) error {
		val, live, err := liveEphemeral(txn, kind, id, b.now())
		if err != nil || !live {
			return cmp.Or(err, ErrNotFound) // an expired one: Badger's TTL removes it
		}
		out = val
		return txn.Delete(ephKey(kind, id))
	})
	if err != nil {
		return nil, fmt.Errorf("taking %s record: %w", kind, redact(err, id))
	}
	return out, nil
}

func validKind(kind string) bool {
	return kind != "" && len(kind) <= 64 && !strings.ContainsAny(kind, "/\x00")
}

// redact removes secret (a session or flow-state id) from err's text, keeping
// err for errors.Is: Badger quotes the key when a read fails.
func redact(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	msg := err.Error()
	quoted := strconv.Quote(secret)
	red := strings.ReplaceAll(strings.ReplaceAll(msg, secret, "[redacted]"), quoted[1:len(quoted)-1], "[redacted]")
	if red == msg {
		return err
	}
	return redactedError{msg: red, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
