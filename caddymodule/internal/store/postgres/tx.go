package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// backend gives store.Rules the PostgreSQL store's transactions.
type backend struct{ s *Store }

// Update runs fn in writeWithEvents, with a pgTx over its transaction.
func (b backend) Update(ctx context.Context, fn func(tx store.Tx, out *store.Outbox) error) error {
	return b.s.writeWithEvents(ctx, func(tx pgx.Tx, out *store.Outbox) error {
		return fn(pgTx{ctx, tx, b.s, b.s.now()}, out)
	})
}

// Now is the store's clock.
func (b backend) Now() time.Time { return b.s.now() }

// pgTx is the store.Tx over a PostgreSQL transaction at READ COMMITTED:
// a read for a change locks its row (a user's before its accounts'), and
// a record gone between an index lookup and its lock is store.ErrMoved,
// which runs the transaction again. A user_emails row records an address a
// user has, and holder marks the user a verified one links to.
type pgTx struct {
	ctx context.Context
	tx  pgx.Tx
	s   *Store
	now time.Time
}

// Identity looks the identity up in external_accounts.
func (x pgTx) Identity(issuer, subject string) (string, string, error) {
	var accID, userID string
	err := x.tx.QueryRow(x.ctx, `SELECT id, user_id FROM external_accounts WHERE issuer = $1 AND subject = $2`,
		issuer, subject).Scan(&accID, &userID)
	return accID, userID, notFound(err)
}

// LockUser reads and row-locks the user (FOR NO KEY UPDATE, which lets
// sessions referencing it be inserted meanwhile).
func (x pgTx) LockUser(id string) (*store.User, error) { return lockUser(x.ctx, x.tx, id) }

// Account reads and row-locks the account, after its user's row when the
// caller has not locked it.
func (x pgTx) Account(id, userID string) (*store.ExternalAccount, error) {
	if userID == "" {
		if err := x.tx.QueryRow(x.ctx, `SELECT user_id FROM external_accounts WHERE id = $1`, id).Scan(&userID); err != nil {
			return nil, notFound(err)
		}
		// The user first: every writer locks a user before its accounts.
		if _, err := lockUser(x.ctx, x.tx, userID); err != nil {
			return nil, err // a missing user took the account with it: ErrNotFound
		}
	}
	return x.s.lockAccount(x.ctx, x.tx, id, userID)
}

// Accounts reads the user's accounts.
func (x pgTx) Accounts(userID string) ([]*store.ExternalAccount, error) {
	return x.s.accountsOf(x.ctx, x.tx, userID)
}

// InsertUser inserts the user's row and its search terms.
func (x pgTx) InsertUser(u *store.User) error {
	if err := insertUser(x.ctx, x.tx, u); err != nil {
		return err
	}
	return setTerms(x.ctx, x.tx, u.ID, u.CreatedAt, "", store.UserTerms(u))
}

// DeleteUser deletes the user's row, whose cascades remove its accounts,
// sessions, addresses and handles with it.
func (x pgTx) DeleteUser(u *store.User) error {
	_, err := x.tx.Exec(x.ctx, `DELETE FROM users WHERE id = $1`, u.ID)
	return err
}

// InsertAccount inserts the account's row; two first sign-ins of one
// identity at once: the unique (issuer, subject) fails one, which runs
// again and finds the other's account.
func (x pgTx) InsertAccount(a *store.ExternalAccount) error {
	if err := x.s.insertAccount(x.ctx, x.tx, a); err != nil {
		return err
	}
	return setAccountTerms(x.ctx, x.tx, a)
}

// SaveAccount writes the account's record and tokens.
func (x pgTx) SaveAccount(a *store.ExternalAccount) error { return x.s.saveAccount(x.ctx, x.tx, a) }

// DeleteAccount deletes the account's row and its search terms.
func (x pgTx) DeleteAccount(a *store.ExternalAccount) error {
	_, err := x.tx.Exec(x.ctx, `WITH terms AS (DELETE FROM user_terms WHERE user_id = $2 AND source = $1)
		DELETE FROM external_accounts WHERE id = $1`, a.ID, a.UserID)
	return err
}

// DeleteSessions deletes every session of the user and returns them.
// FOR UPDATE on the user blocks the key-share lock that inserting a
// session takes, so no session of the user appears before the commit.
func (x pgTx) DeleteSessions(userID string) ([]*store.Session, error) {
	if _, err := x.tx.Exec(x.ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
		return nil, err
	}
	rows, err := x.tx.Query(x.ctx, `DELETE FROM sessions WHERE user_id = $1 RETURNING id_hash, id_sealed, record`, userID)
	if err != nil {
		return nil, err
	}
	revoked, err := pgx.CollectRows(rows, x.s.scanSession)
	if err != nil {
		return nil, fmt.Errorf("revoking sessions of user %s: %w", userID, err)
	}
	return revoked, nil
}

// HandleHolder reads user_handles.
func (x pgTx) HandleHolder(kind, value string) (string, error) {
	var holder string
	err := x.tx.QueryRow(x.ctx, `SELECT user_id FROM user_handles WHERE kind = $1 AND value = $2`, kind, value).Scan(&holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return holder, err
}

// HoldHandle inserts u's user_handles row. A concurrent claim of the same
// value fails the primary key; the transaction runs again and finds the
// winner's row.
func (x pgTx) HoldHandle(kind, value string, u *store.User) error {
	_, err := x.tx.Exec(x.ctx, `INSERT INTO user_handles (kind, value, user_id) VALUES ($1, $2, $3)`, kind, value, u.ID)
	return err
}

// ReleaseHandle deletes userID's user_handles row for the value.
func (x pgTx) ReleaseHandle(kind, value, userID string) error {
	_, err := x.tx.Exec(x.ctx, `DELETE FROM user_handles WHERE kind = $1 AND value = $2 AND user_id = $3`, kind, value, userID)
	return err
}

// ShareUser reads the user FOR SHARE: it waits for a ban of the user in
// flight, or a change of its addresses (both lock it FOR NO KEY UPDATE),
// and then sees it.
func (x pgTx) ShareUser(id string) (*store.User, error) {
	var record []byte
	if err := x.tx.QueryRow(x.ctx, `SELECT record FROM users WHERE id = $1 FOR SHARE`, id).Scan(&record); err != nil {
		return nil, notFound(err)
	}
	return decodeUser(record)
}

// ShareAccount reads the account FOR KEY SHARE, which makes an unlink of
// it wait, or wait for it: a session never escapes the unlink's end of
// the sessions started through the account.
func (x pgTx) ShareAccount(id, userID string) error {
	var one int
	err := x.tx.QueryRow(x.ctx, `SELECT 1 FROM external_accounts WHERE id = $1 AND user_id = $2 FOR KEY SHARE`, id, userID).Scan(&one)
	return notFound(err)
}

// InsertSession inserts the session's row: the id's digest and the id
// sealed, never the id itself.
func (x pgTx) InsertSession(sess *store.Session) error {
	bare := *sess
	bare.ID = ""
	record, err := json.Marshal(&bare)
	if err != nil {
		return err
	}
	hash := digest(sess.ID)
	_, err = x.tx.Exec(x.ctx, `INSERT INTO sessions (id_hash, id_sealed, user_id, expires_ns, record) VALUES ($1, $2, $3, $4, $5)`,
		hash, x.s.sealer.seal([]byte(sess.ID), sessionAAD(hash)), sess.UserID, sess.ExpiresAt.UnixNano(), record)
	switch pgCode(err) {
	case "23503": // foreign_key_violation: the user was deleted meanwhile
		return fmt.Errorf("user %s: %w", sess.UserID, store.ErrNotFound)
	case "23505": // ids are 128-bit random: a clash means a caller reused one
		return errors.New("the session id is taken")
	}
	return err
}

// Record inserts u's user_emails row for email, if it is missing.
func (x pgTx) Record(email string, u *store.User) error {
	if _, err := x.tx.Exec(x.ctx, `INSERT INTO user_emails (email_lower, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		store.NormalizeEmail(email), u.ID); err != nil {
		return fmt.Errorf("recording an email: %w", err)
	}
	return nil
}

// Holder returns the user whose row holds email.
func (x pgTx) Holder(email string) (string, error) { return emailHolder(x.ctx, x.tx, email) }

// Hold makes u's row for email the holder.
func (x pgTx) Hold(email string, u *store.User) error {
	// Two users taking one free address at once: the unique index
	// user_emails_one_holder fails one, whose transaction is retried.
	if _, err := x.tx.Exec(x.ctx, `UPDATE user_emails SET holder = true WHERE email_lower = $1 AND user_id = $2`,
		store.NormalizeEmail(email), u.ID); err != nil {
		return fmt.Errorf("indexing an email: %w", err)
	}
	return nil
}

// Release clears holder on userID's row for email.
func (x pgTx) Release(email, userID string) error {
	if _, err := x.tx.Exec(x.ctx, `UPDATE user_emails SET holder = false WHERE email_lower = $1 AND user_id = $2 AND holder`,
		store.NormalizeEmail(email), userID); err != nil {
		return fmt.Errorf("releasing an email: %w", err)
	}
	return nil
}

// LockHolder locks and loads the user id, with its accounts, and starts the
// transaction over when id no longer holds email once locked.
func (x pgTx) LockHolder(email, id string) (*store.User, []*store.ExternalAccount, error) {
	h, err := lockUser(x.ctx, x.tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, store.ErrMoved // deleted since the lookup
	}
	if err != nil {
		return nil, nil, err
	}
	// The holder may have given the address up before we locked it.
	if again, err := emailHolder(x.ctx, x.tx, email); err != nil || again != id {
		return nil, nil, cmp.Or(err, store.ErrMoved)
	}
	accounts, err := x.s.accountsOf(x.ctx, x.tx, id)
	return h, accounts, err
}

// SaveUser writes a user LockHolder locked.
func (x pgTx) SaveUser(u *store.User) error {
	if err := saveUser(x.ctx, x.tx, u); err != nil {
		return err
	}
	return setTerms(x.ctx, x.tx, u.ID, u.CreatedAt, "", store.UserTerms(u))
}

// EndSessions deletes the user's live sessions that match reports. A
// session being created meanwhile waits for the user's lock (CreateSession
// reads the user FOR SHARE when it carries an address) and then sees the
// change.
func (x pgTx) EndSessions(userID string, match func(*store.Session) bool) ([]*store.Session, error) {
	live, err := x.liveSessions(userID)
	if err != nil {
		return nil, err
	}
	var matching [][]byte
	for _, l := range live {
		if match(l.sess) {
			matching = append(matching, l.hash)
		}
	}
	if len(matching) == 0 {
		return nil, nil
	}
	rows, err := x.tx.Query(x.ctx, `DELETE FROM sessions WHERE id_hash = ANY($1) RETURNING id_hash, id_sealed, record`, matching)
	if err != nil {
		return nil, err
	}
	ended, err := pgx.CollectRows(rows, x.s.scanSession)
	if err != nil {
		return nil, fmt.Errorf("ending sessions of user %s: %w", userID, err)
	}
	return ended, nil
}

// RewriteSessions writes back the user's live sessions that change changed.
func (x pgTx) RewriteSessions(userID string, change func(*store.Session) bool) error {
	live, err := x.liveSessions(userID)
	if err != nil {
		return err
	}
	for _, l := range live {
		if !change(l.sess) {
			continue
		}
		record, err := json.Marshal(l.sess)
		if err != nil {
			return err
		}
		if _, err := x.tx.Exec(x.ctx, `UPDATE sessions SET record = $2 WHERE id_hash = $1`, l.hash, record); err != nil {
			return fmt.Errorf("rewriting a session of user %s: %w", userID, err)
		}
	}
	return nil
}

// liveSession is a session row: its digest and its record (without its id).
type liveSession struct {
	hash []byte
	sess *store.Session
}

// liveSessions reads and locks the user's live sessions, in the order of
// their digests as TouchSessions locks them (no deadlock between the two).
func (x pgTx) liveSessions(userID string) ([]liveSession, error) {
	rows, err := x.tx.Query(x.ctx, `SELECT id_hash, record FROM sessions WHERE user_id = $1 AND expires_ns > $2
		ORDER BY id_hash FOR UPDATE`, userID, x.now.UnixNano())
	if err != nil {
		return nil, err
	}
	live, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (liveSession, error) {
		var l liveSession
		var record []byte
		if err := row.Scan(&l.hash, &record); err != nil {
			return l, err
		}
		l.sess = new(store.Session)
		if err := json.Unmarshal(record, l.sess); err != nil {
			return l, fmt.Errorf("decoding a session: %w", err)
		}
		return l, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading sessions of user %s: %w", userID, err)
	}
	return live, nil
}

// emailHolder returns the user a verified email links to, or "".
func emailHolder(ctx context.Context, tx pgx.Tx, email string) (string, error) {
	var uid string
	err := tx.QueryRow(ctx, `SELECT user_id FROM user_emails WHERE email_lower = $1 AND holder`, store.NormalizeEmail(email)).Scan(&uid)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("looking up email: %w", err)
	}
	return uid, nil
}
