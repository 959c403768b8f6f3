package store

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
)

// Paging bounds of Users (UserQuery.Page).
const (
	defaultUsersLimit = 10
	maxUsersLimit     = 500
	// sessionBatch is how many sessions DeleteUser ends per transaction when
	// a user has too many for one (see DeleteUser).
	sessionBatch = 1000
)

// createdOrder is the key segment that sorts users newest first: CreatedAt
// in unix nanoseconds with the sign bit flipped (so times before 1970 order
// too), then every bit inverted, as 16 hex digits.
func createdOrder(t time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ^(uint64(t.UnixNano()) ^ 1<<63))
	return hex.EncodeToString(b[:])
}

func createdKey(u *User) []byte {
	return []byte(prefixCreated + createdOrder(u.CreatedAt) + "/" + u.ID)
}

func userEmailKey(email, userID string) []byte {
	return []byte(prefixUserMail + normalizeEmail(email) + "/" + userID)
}

// addUser writes the indexes and the count of a user being created.
func addUser(txn *badger.Txn, u *User) error {
	if err := txn.Set(createdKey(u), nil); err != nil {
		return err
	}
	return addUserCount(txn, 1)
}

// userCount reads the user counter; a store without one has no users.
func userCount(txn *badger.Txn) (int, error) {
	s, err := getString(txn, []byte(keyUserCount))
	if errors.Is(err, ErrNotFound) {
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

// Users implements Store.Users. Without an email filter it walks the
// idx/user_created index key-only, skipping Offset keys, and takes the total
// from the user counter; with one it reads the idx/user_email entries of that
// address, whose values carry the users' creation order. Either way it loads
// only the users of the page, in one snapshot.
func (b *Badger) Users(ctx context.Context, q UserQuery) ([]*User, int, error) {
	limit, offset := q.Page()
	var users []*User
	var total int
	err := b.view(ctx, func(txn *badger.Txn) error {
		var ids []string
		var err error
		switch {
		case !q.Indexed() && q.Email == "":
			all, err := allUsers(txn)
			users, total = SelectUsers(all, q)
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
		users = make([]*User, 0, len(ids))
		for _, id := range ids {
			var u User
			err := getJSON(txn, userKey(id), &u)
			if errors.Is(err, ErrNotFound) {
				continue // a stale index entry; Check reports it
			}
			if err != nil {
				return fmt.Errorf("loading user %s: %w", id, err)
			}
			users = append(users, &u)
		}
		if !q.Indexed() {
			users, total = SelectUsers(users, q)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing users: %w", err)
	}
	return users, total, nil
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
	prefix := string(userEmailKey(email, ""))
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

// DeleteUser implements Store.DeleteUser in one transaction. The one
// exception is a user with thousands of sessions, more than one Badger
// transaction can hold (badger.ErrTxnTooBig): their sessions are then ended
// first in batches of whole sessions (record and index together), and the
// user with everything else goes in one transaction after. A crash between
// the two leaves a user with fewer sessions, which is still consistent.
//
// It records external_account.deleted for each account, then user.deleted;
// the sessions end without events of their own.
func (b *Badger) DeleteUser(ctx context.Context, id string) error {
	if !validID(id) {
		return fmt.Errorf("deleting user: %w", ErrNotFound)
	}
	del := func(txn *badger.Txn, out *Outbox) error { return deleteUser(txn, out, id, b.now()) }
	err := b.updateWithEvents(ctx, del)
	if errors.Is(err, badger.ErrTxnTooBig) {
		if err = b.deleteSessionsOf(ctx, id); err == nil {
			err = b.updateWithEvents(ctx, del)
		}
	}
	if err != nil {
		return fmt.Errorf("deleting user %s: %w", id, err)
	}
	return nil
}

func deleteUser(txn *badger.Txn, out *Outbox, id string, now time.Time) error {
	var u User
	if err := getJSON(txn, userKey(id), &u); err != nil {
		return err
	}
	var accounts []*ExternalAccount
	eacIDs, err := collectKeys(txn, prefixUserEAC+id+"/", 0)
	if err != nil {
		return err
	}
	for _, eid := range eacIDs {
		if err := txn.Delete(userEACKey(id, eid)); err != nil {
			return err
		}
		var a ExternalAccount
		err := getJSON(txn, eacKey(eid), &a)
		if errors.Is(err, ErrNotFound) || (err == nil && a.UserID != id) {
			continue // a stale index entry: only the entry was this user's
		}
		if err != nil {
			return fmt.Errorf("loading account %s: %w", eid, err)
		}
		if err := deleteAccountRecords(txn, &a); err != nil {
			return err
		}
		accounts = append(accounts, &a)
	}
	slices.SortFunc(accounts, func(x, y *ExternalAccount) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
	for _, a := range accounts {
		if err := out.Add(Event{Type: EventAccountDeleted, CreatedAt: now, Account: a}); err != nil {
			return err
		}
	}
	sessIDs, err := collectKeys(txn, prefixUserSess+id+"/", 0)
	if err != nil {
		return err
	}
	if _, err := deleteSessions(txn, id, sessIDs); err != nil {
		return err
	}
	for _, e := range u.Emails {
		if err := txn.Delete(userEmailKey(e.Email, id)); err != nil {
			return err
		}
		if err := releaseEmail(txn, e.Email, id); err != nil {
			return err
		}
	}
	for kind, v := range u.Handles() {
		if err := releaseHandle(txn, kind, v, id); err != nil {
			return err
		}
	}
	if err := txn.Delete(createdKey(&u)); err != nil {
		return err
	}
	if err := txn.Delete(userKey(id)); err != nil {
		return err
	}
	// The user is gone: its event names it and no more.
	if err := out.Add(Event{Type: EventUserDeleted, CreatedAt: now, User: &User{ID: id}}); err != nil {
		return err
	}
	return addUserCount(txn, -1)
}

// deleteSessionsOf ends the user's sessions, sessionBatch per transaction.
func (b *Badger) deleteSessionsOf(ctx context.Context, userID string) error {
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
// and returns the sessions it found.
func deleteSessions(txn *badger.Txn, userID string, ids []string) ([]*Session, error) {
	var deleted []*Session
	for _, sid := range ids {
		if err := txn.Delete(userSessKey(userID, sid)); err != nil {
			return nil, err
		}
		var s Session
		err := getJSON(txn, sessionKey(sid), &s)
		if errors.Is(err, ErrNotFound) || (err == nil && s.UserID != userID) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("loading a session: %w", redact(err, sid))
		}
		if err := txn.Delete(sessionKey(sid)); err != nil {
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
