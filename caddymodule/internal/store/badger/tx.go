package badger

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// backend gives store.Rules the Badger store's transactions.
type backend struct{ s *Store }

// Update runs fn in updateWithEvents, with a tx over its transaction. A
// Badger transaction reads one snapshot and conflicts with any commit that
// changed what it read, so it runs again only on a conflict: store.ErrMoved
// from fn means an index is wrong, and is returned.
func (b backend) Update(ctx context.Context, fn func(tx store.Tx, out *store.Outbox) error) error {
	return b.s.updateWithEvents(ctx, func(txn *badger.Txn, out *store.Outbox) error {
		return fn(tx{txn, b.s.now()}, out)
	})
}

// Now is the store's clock.
func (b backend) Now() time.Time { return b.s.now() }

// tx is the store.Tx over a Badger transaction: the records and indexes of
// the key layout (see badger.go). Reading a record makes the transaction
// conflict with any other that writes it before this one commits, which
// stands for the row locks of a store that locks.
type tx struct {
	txn *badger.Txn
	now time.Time // what "live" means for sessions
}

// Identity reads the identity index and the account it names.
func (x tx) Identity(issuer, subject string) (string, string, error) {
	accID, err := getString(x.txn, identityKey(issuer, subject))
	if err != nil {
		return "", "", err
	}
	var acc store.ExternalAccount
	if err := getJSON(x.txn, eacKey(accID), &acc); err != nil {
		return "", "", inconsistent(err, "the identity index points at account %s", accID)
	}
	return accID, acc.UserID, nil
}

// LockUser reads the user.
func (x tx) LockUser(id string) (*store.User, error) {
	var u store.User
	if err := getJSON(x.txn, userKey(id), &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// Account reads the account, of userID when set.
func (x tx) Account(id, userID string) (*store.ExternalAccount, error) {
	var acc store.ExternalAccount
	err := getJSON(x.txn, eacKey(id), &acc)
	if err == nil && userID != "" && acc.UserID != userID {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &acc, nil
}

// Accounts reads the user's accounts through idx/user_eac.
func (x tx) Accounts(userID string) ([]*store.ExternalAccount, error) {
	return accountsOf(x.txn, userID)
}

// InsertUser writes the user with its idx/user_created entry and search
// terms, and counts it.
func (x tx) InsertUser(u *store.User) error {
	if err := x.SaveUser(u); err != nil {
		return err
	}
	if err := x.txn.Set(createdKey(u), nil); err != nil {
		return err
	}
	return addUserCount(x.txn, 1)
}

// SaveUser writes u and its search terms.
func (x tx) SaveUser(u *store.User) error {
	if err := setJSON(x.txn, userKey(u.ID), u, 0); err != nil {
		return err
	}
	return setTerms(x.txn, u.ID, u.CreatedAt, "", store.UserTerms(u))
}

// DeleteUser deletes u, its accounts (and the stale idx/user_eac entries
// under it), its sessions, its address and handle entries, its search
// terms and audit entries, and uncounts it.
func (x tx) DeleteUser(u *store.User) error {
	eacIDs, err := collectKeys(x.txn, prefixUserEAC+u.ID+"/", 0)
	if err != nil {
		return err
	}
	for _, eid := range eacIDs {
		if err := x.txn.Delete(userEACKey(u.ID, eid)); err != nil {
			return err
		}
		acc, err := x.Account(eid, u.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue // a stale index entry: only the entry was this user's
		}
		if err != nil {
			return fmt.Errorf("loading account %s: %w", eid, err)
		}
		if err := x.DeleteAccount(acc); err != nil {
			return err
		}
	}
	if _, err := x.DeleteSessions(u.ID); err != nil {
		return err
	}
	for _, e := range u.Emails {
		if err := x.txn.Delete(userEmailKey(e.Email, u.ID)); err != nil {
			return err
		}
		if err := x.Release(e.Email, u.ID); err != nil {
			return err
		}
	}
	for kind, v := range u.Handles() {
		if err := x.ReleaseHandle(kind, v, u.ID); err != nil {
			return err
		}
	}
	if err := dropTerms(x.txn, u); err != nil {
		return err
	}
	if err := deleteAudit(x.txn, u.ID); err != nil {
		return err
	}
	if err := x.txn.Delete(createdKey(u)); err != nil {
		return err
	}
	if err := x.txn.Delete(userKey(u.ID)); err != nil {
		return err
	}
	return addUserCount(x.txn, -1)
}

// InsertAccount writes the account, its identity, its idx/user_eac entry
// and its search terms.
func (x tx) InsertAccount(a *store.ExternalAccount) error {
	if err := x.txn.Set(identityKey(a.Issuer, a.Subject), []byte(a.ID)); err != nil {
		return err
	}
	if err := x.txn.Set(userEACKey(a.UserID, a.ID), nil); err != nil {
		return err
	}
	if err := setAccountTerms(x.txn, a, false); err != nil {
		return err
	}
	return x.SaveAccount(a)
}

// SaveAccount writes the account.
func (x tx) SaveAccount(a *store.ExternalAccount) error { return setJSON(x.txn, eacKey(a.ID), a, 0) }

// DeleteAccount deletes the account, its idx/user_eac entry, its search
// terms and its identity entry (when that points at it).
func (x tx) DeleteAccount(a *store.ExternalAccount) error {
	if err := x.txn.Delete(eacKey(a.ID)); err != nil {
		return err
	}
	if err := setAccountTerms(x.txn, a, true); err != nil {
		return err
	}
	if err := x.txn.Delete(userEACKey(a.UserID, a.ID)); err != nil {
		return err
	}
	idKey := identityKey(a.Issuer, a.Subject)
	got, err := getString(x.txn, idKey)
	if errors.Is(err, store.ErrNotFound) || (err == nil && got != a.ID) {
		return nil
	}
	if err != nil {
		return err
	}
	return x.txn.Delete(idKey)
}

// DeleteSessions deletes every session under the user's idx/user_sess.
func (x tx) DeleteSessions(userID string) ([]*store.Session, error) {
	ids, err := collectKeys(x.txn, prefixUserSess+userID+"/", 0)
	if err != nil {
		return nil, err
	}
	return deleteSessions(x.txn, userID, ids)
}

// HandleHolder reads idx/handle; an entry whose user is gone counts as none.
func (x tx) HandleHolder(kind, value string) (string, error) {
	return liveHolder(x.txn, handleKey(kind, value))
}

// HoldHandle points idx/handle at u.
func (x tx) HoldHandle(kind, value string, u *store.User) error {
	return x.txn.Set(handleKey(kind, value), []byte(u.ID))
}

// ReleaseHandle deletes the idx/handle entry if it names userID.
func (x tx) ReleaseHandle(kind, value, userID string) error {
	return deleteIfNames(x.txn, handleKey(kind, value), userID)
}

// ShareUser reads the user and writes it back unchanged: a deletion, a ban
// or a change that withdraws an address, running alongside, read it, so one
// of the two conflicts and runs again. Without the write, they could miss
// the new session (it did not exist when they listed them).
func (x tx) ShareUser(id string) (*store.User, error) {
	item, err := x.txn.Get(userKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	raw, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	var u store.User
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, fmt.Errorf("decoding user %s: %w", id, err)
	}
	return &u, x.txn.Set(userKey(id), raw)
}

// ShareAccount reads the account: an unlink of it alongside conflicts.
func (x tx) ShareAccount(id, userID string) error {
	_, err := x.Account(id, userID)
	return err
}

// InsertSession writes the session and its idx/user_sess entry, both
// expiring with it, and counts it.
func (x tx) InsertSession(s *store.Session) error {
	// Ids are 128-bit random: a clash means a caller reused one.
	if ok, err := exists(x.txn, sessionKey(s.ID)); err != nil || ok {
		return cmp.Or(err, errors.New("the session id is taken"))
	}
	exp := badgerExpiry(s.ExpiresAt)
	if err := setJSON(x.txn, sessionKey(s.ID), s, exp); err != nil {
		return err
	}
	if err := countSession(x.txn, s, 1); err != nil {
		return err
	}
	return x.txn.SetEntry(&badger.Entry{Key: userSessKey(s.UserID, s.ID), ExpiresAt: exp})
}

// Record sets u's idx/user_email entry for email.
func (x tx) Record(email string, u *store.User) error {
	return x.txn.Set(userEmailKey(email, u.ID), []byte(createdOrder(u.CreatedAt)))
}

// Holder returns the live user idx/email names for email.
func (x tx) Holder(email string) (string, error) { return liveHolder(x.txn, emailKey(email)) }

// Hold points idx/email at u.
func (x tx) Hold(email string, u *store.User) error {
	return x.txn.Set(emailKey(email), []byte(u.ID))
}

// Release deletes the idx/email entry of email if it names userID.
func (x tx) Release(email, userID string) error {
	return deleteIfNames(x.txn, emailKey(email), userID)
}

// LockHolder loads the user id with its accounts; the transaction's
// conflict detection stands for a lock.
func (x tx) LockHolder(_, id string) (*store.User, []*store.ExternalAccount, error) {
	h, err := x.LockUser(id)
	if err != nil {
		return nil, nil, fmt.Errorf("loading user %s: %w", id, err)
	}
	accounts, err := accountsOf(x.txn, id)
	return h, accounts, err
}

// EndSessions deletes the user's live sessions that match reports, with
// their index entries.
func (x tx) EndSessions(userID string, match func(*store.Session) bool) ([]*store.Session, error) {
	live, err := liveSessionsOf(x.txn, userID, x.now)
	if err != nil {
		return nil, err
	}
	var matching []string
	for _, s := range live {
		if match(s) {
			matching = append(matching, s.ID)
		}
	}
	return deleteSessions(x.txn, userID, matching)
}

// RewriteSessions writes back the user's live sessions that change changed.
func (x tx) RewriteSessions(userID string, change func(*store.Session) bool) error {
	live, err := liveSessionsOf(x.txn, userID, x.now)
	if err != nil {
		return err
	}
	for _, s := range live {
		if change(s) {
			if err := setJSON(x.txn, sessionKey(s.ID), s, badgerExpiry(s.ExpiresAt)); err != nil {
				return err
			}
		}
	}
	return nil
}

// liveSessionsOf reads the user's sessions that are live at now.
func liveSessionsOf(txn *badger.Txn, userID string, now time.Time) ([]*store.Session, error) {
	ids, err := collectKeys(txn, prefixUserSess+userID+"/", 0)
	if err != nil {
		return nil, err
	}
	var live []*store.Session
	for _, sid := range ids {
		var s store.Session
		err := getJSON(txn, sessionKey(sid), &s)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (s.UserID != userID || !now.Before(s.ExpiresAt))) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("loading a session: %w", store.Redact(err, sid))
		}
		s.ID = sid
		live = append(live, &s)
	}
	return live, nil
}

// deleteIfNames deletes the index entry at key if it names userID.
func deleteIfNames(txn *badger.Txn, key []byte, userID string) error {
	holder, err := getString(txn, key)
	if errors.Is(err, store.ErrNotFound) || (err == nil && holder != userID) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up an index entry: %w", err)
	}
	return txn.Delete(key)
}

// liveHolder returns the user an index entry at key names, or "" when none
// does (an entry whose user is gone counts as none).
func liveHolder(txn *badger.Txn, key []byte) (string, error) {
	uid, err := getString(txn, key)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	ok, err := exists(txn, userKey(uid))
	if err != nil || !ok {
		return "", err
	}
	return uid, nil
}

// inconsistent describes a record an index promised but the store lacks. It
// deliberately does not wrap ErrNotFound, which callers read as "no such user".
func inconsistent(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("store is inconsistent: %s, which is missing", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}
