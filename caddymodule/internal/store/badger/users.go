package badger

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// sessionBatch is how many sessions DeleteUser ends per transaction when a
// user has too many for one (see DeleteUser).
const sessionBatch = 1000

// createdOrder is the key segment that sorts users newest first: CreatedAt
// in unix nanoseconds with the sign bit flipped (so times before 1970 order
// too), then every bit inverted, as 16 hex digits.
func createdOrder(t time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ^(uint64(t.UnixNano()) ^ 1<<63))
	return hex.EncodeToString(b[:])
}

func createdKey(u *store.User) []byte {
	return []byte(prefixCreated + createdOrder(u.CreatedAt) + "/" + u.ID)
}

func userEmailKey(email, userID string) []byte {
	return []byte(prefixUserMail + store.NormalizeEmail(email) + "/" + userID)
}

// userCount reads the user counter; a store without one has no users.
func userCount(txn *badger.Txn) (int, error) {
	s, err := getString(txn, []byte(keyUserCount))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("decoding the user count: %w", err)
	}
	return n, nil
}

// addUserCount adds delta to the user counter. Every transaction that
// creates or deletes a user reads and writes it, so they conflict and retry
// rather than lose a count.
func addUserCount(txn *badger.Txn, delta int) error {
	n, err := userCount(txn)
	if err != nil {
		return err
	}
	return txn.Set([]byte(keyUserCount), strconv.AppendInt(nil, int64(max(n+delta, 0)), 10))
}

// Users implements store.Store.Users. Without an email filter it walks the
// idx/user_created index key-only, skipping Offset keys, and takes the total
// from the user counter; with one it reads the idx/user_email entries of that
// address, whose values carry the users' creation order. Either way it loads
// only the users of the page, in one snapshot.
func (b *Store) Users(ctx context.Context, q store.UserQuery) ([]*store.User, int, error) {
	limit, offset := q.Page()
	var users []*store.User
	var total int
	err := b.view(ctx, func(txn *badger.Txn) error {
		var ids []string
		var err error
		switch {
		case !q.Indexed() && q.Email == "":
			all, err := allUsers(txn)
			users, total = store.SelectUsers(all, q)
			return err
		case !q.Indexed():
			ids, _, err = usersByEmail(txn, q.Email, 0, math.MaxInt)
		case q.Email != "":
			ids, total, err = usersByEmail(txn, q.Email, offset, limit)
		default:
			ids, total, err = usersByCreation(txn, offset, limit)
		}
		if err != nil {
			return err
		}
		if users, err = loadUsers(txn, ids); err != nil {
			return err
		}
		if !q.Indexed() {
			users, total = store.SelectUsers(users, q)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing users: %w", err)
	}
	return users, total, nil
}

// loadUsers reads the users ids, in that order, skipping those that are
// gone (a stale index entry, which Check reports).
func loadUsers(txn *badger.Txn, ids []string) ([]*store.User, error) {
	users := make([]*store.User, 0, len(ids))
	for _, id := range ids {
		var u store.User
		err := getJSON(txn, userKey(id), &u)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("loading user %s: %w", id, err)
		}
		users = append(users, &u)
	}
	return users, nil
}

// usersByCreation returns the ids of a page of all users, newest first.
func usersByCreation(txn *badger.Txn, offset, limit int) ([]string, int, error) {
	total, err := userCount(txn)
	if err != nil {
		return nil, 0, err
	}
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = []byte(prefixCreated)
	it := txn.NewIterator(opts)
	defer it.Close()
	var ids []string
	for it.Rewind(); it.Valid() && len(ids) < limit; it.Next() {
		if offset > 0 {
			offset--
			continue
		}
		_, id, _ := strings.Cut(string(it.Item().Key()[len(prefixCreated):]), "/")
		ids = append(ids, id)
	}
	return ids, total, nil
}

// usersByEmail returns the ids of a page of the users holding email, newest
// first, and how many hold it.
func usersByEmail(txn *badger.Txn, email string, offset, limit int) ([]string, int, error) {
	prefix := string(userEmailKey(store.LookupEmail(email), ""))
	type match struct{ order, id string }
	var all []match
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = []byte(prefix)
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		id := string(item.Key()[len(prefix):])
		if strings.Contains(id, "/") {
			continue // a longer address that starts with this one and a "/"
		}
		order, err := item.ValueCopy(nil)
		if err != nil {
			return nil, 0, err
		}
		all = append(all, match{string(order), id})
	}
	// The same order as idx/user_created: newest first, then by id.
	slices.SortFunc(all, func(x, y match) int {
		return cmp.Or(strings.Compare(x.order, y.order), strings.Compare(x.id, y.id))
	})
	var ids []string
	for _, m := range all[min(offset, len(all)):min(offset+limit, len(all))] {
		ids = append(ids, m.id)
	}
	return ids, len(all), nil
}

// DeleteUser implements store.Store.DeleteUser (store.Rules) in one
// transaction. The one exception is a user with thousands of sessions, more
// than one Badger transaction can hold (badger.ErrTxnTooBig): their sessions
// are then ended first in batches of whole sessions (record and index
// together), and the user with everything else goes in one transaction
// after. A crash between the two leaves a user with fewer sessions, which is
// still consistent.
func (b *Store) DeleteUser(ctx context.Context, id string) error {
	err := b.Rules.DeleteUser(ctx, id)
	if errors.Is(err, badger.ErrTxnTooBig) {
		if err = b.deleteSessionsOf(ctx, id); err != nil {
			return fmt.Errorf("deleting user %s: %w", id, err)
		}
		err = b.Rules.DeleteUser(ctx, id)
	}
	return err
}

// deleteSessionsOf ends the user's sessions, sessionBatch per transaction.
func (b *Store) deleteSessionsOf(ctx context.Context, userID string) error {
	for {
		var n int
		err := b.update(ctx, func(txn *badger.Txn) error {
			ids, err := collectKeys(txn, prefixUserSess+userID+"/", sessionBatch)
			n = len(ids)
			if err != nil {
				return err
			}
			_, err = deleteSessions(txn, userID, ids)
			return err
		})
		if err != nil || n < sessionBatch {
			return err
		}
	}
}

// deleteSessions removes the user's sessions ids with their index entries
// and counts, and returns the sessions it found.
func deleteSessions(txn *badger.Txn, userID string, ids []string) ([]*store.Session, error) {
	var deleted []*store.Session
	for _, sid := range ids {
		if err := txn.Delete(userSessKey(userID, sid)); err != nil {
			return nil, err
		}
		var s store.Session
		err := getJSON(txn, sessionKey(sid), &s)
		if errors.Is(err, store.ErrNotFound) || (err == nil && s.UserID != userID) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("loading a session: %w", store.Redact(err, sid))
		}
		if err := txn.Delete(sessionKey(sid)); err != nil {
			return nil, err
		}
		s.ID = sid
		if err := countSession(txn, &s, -1); err != nil {
			return nil, err
		}
		deleted = append(deleted, &s)
	}
	return deleted, nil
}

// errStopScan ends a scanKeys early; it never leaves the package.
var errStopScan = errors.New("stop scanning")

// collectKeys returns the rest of every key under prefix, at most limit of
// them when limit > 0. Callers delete after collecting, never while iterating.
func collectKeys(txn *badger.Txn, prefix string, limit int) ([]string, error) {
	var out []string
	err := scanKeys(txn, prefix, func(rest string) error {
		out = append(out, rest)
		if limit > 0 && len(out) == limit {
			return errStopScan
		}
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return out, err
}
