package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Check reads the whole store in one snapshot and returns every violation of
// the invariants that the schema's constraints cannot hold, one
// human-readable line each; none when healthy. Keys, uniqueness and
// references (an account's user, a session's user, one holder per address)
// are constraints; Check covers what lives inside the json records: that
// they decode and agree with their rows' columns, that each address of a
// user has its user_emails row and each row its address, that an address
// links (holder) only when verified, the vouching rules, and that every
// account's token set is whole (TokenSet.Check), and that user_terms
// holds exactly the users' and accounts' search terms (checkSearch). A
// session is named by its user.
func (s *Store) Check(ctx context.Context) ([]string, error) {
	c := checker{s: s, users: map[string]*store.User{}, accounts: map[string]*store.ExternalAccount{}, emails: map[string]bool{}}
	err := s.read(ctx, func(tx pgx.Tx) error {
		for _, load := range []func(context.Context, pgx.Tx) error{c.loadUsers, c.loadAccounts, c.loadEmails, c.checkHandles, c.checkSessions, c.checkRedirectURLs, c.checkSearch} {
			if err := load(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checking store: %w", err)
	}
	c.checkUsers()
	return c.problems, nil
}

type checker struct {
	s        *Store
	problems []string
	userIDs  []string // id order
	users    map[string]*store.User
	accounts map[string]*store.ExternalAccount
	emails   map[string]bool // "<email_lower>/<user id>" → holder
}

func (c *checker) reportf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// each runs fn on every row of sql.
func each(ctx context.Context, tx pgx.Tx, sql string, fn func(row pgx.CollectableRow) error) error {
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return err
	}
	_, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct{}, error) { return struct{}{}, fn(row) })
	return err
}

func (c *checker) loadUsers(ctx context.Context, tx pgx.Tx) error {
	return each(ctx, tx, `SELECT id, created_ns, record FROM users ORDER BY id`, func(row pgx.CollectableRow) error {
		var id string
		var created int64
		var record []byte
		if err := row.Scan(&id, &created, &record); err != nil {
			return err
		}
		var u store.User
		if err := json.Unmarshal(record, &u); err != nil {
			c.reportf("user %s: undecodable record: %v", id, err)
			return nil
		}
		if u.ID != id {
			c.reportf("user %s: the record says id %s", id, u.ID)
		}
		if u.CreatedAt.UnixNano() != created {
			c.reportf("user %s: created_ns %d but the record says %v", id, created, u.CreatedAt)
		}
		c.users[id] = &u
		c.userIDs = append(c.userIDs, id)
		return nil
	})
}

func (c *checker) loadAccounts(ctx context.Context, tx pgx.Tx) error {
	return each(ctx, tx, `SELECT id, user_id, issuer, subject, created_ns, record, tokens FROM external_accounts ORDER BY id`, func(row pgx.CollectableRow) error {
		var id, userID, issuer, subject string
		var created int64
		var record, tokens []byte
		if err := row.Scan(&id, &userID, &issuer, &subject, &created, &record, &tokens); err != nil {
			return err
		}
		a, err := c.s.decodeAccount(id, record, tokens)
		if err != nil {
			c.reportf("account %s: %v", id, err)
			return nil
		}
		if a.ID != id || a.UserID != userID || a.Issuer != issuer || a.Subject != subject {
			c.reportf("account %s: the record says id %s, user %s, issuer %q, subject %q; the row says user %s, issuer %q, subject %q",
				id, a.ID, a.UserID, a.Issuer, a.Subject, userID, issuer, subject)
		}
		if a.CreatedAt.UnixNano() != created {
			c.reportf("account %s: created_ns %d but the record says %v", id, created, a.CreatedAt)
		}
		if err := a.Tokens.Check(); err != nil {
			c.reportf("account %s: %v", id, err)
		}
		a.ID, a.UserID = id, userID // the columns are what the constraints hold
		c.accounts[id] = a
		return nil
	})
}

func (c *checker) loadEmails(ctx context.Context, tx pgx.Tx) error {
	return each(ctx, tx, `SELECT email_lower, user_id, holder FROM user_emails ORDER BY email_lower, user_id`, func(row pgx.CollectableRow) error {
		var email, userID string
		var holder bool
		if err := row.Scan(&email, &userID, &holder); err != nil {
			return err
		}
		key := email + "/" + userID
		c.emails[key] = holder
		u := c.users[userID]
		if u == nil {
			return nil // the user's record is undecodable: reported
		}
		i := slices.IndexFunc(u.Emails, func(e store.EmailAddress) bool { return store.NormalizeEmail(e.Email) == email })
		switch {
		case i < 0:
			c.reportf("user_emails row %q of user %s: the user has no such address", email, userID)
		case holder && !u.Emails[i].Verified:
			c.reportf("user_emails row %q of user %s: it links sign-ins but the address is not verified", email, userID)
		}
		return nil
	})
}

func (c *checker) checkSessions(ctx context.Context, tx pgx.Tx) error {
	return each(ctx, tx, `SELECT id_hash, id_sealed, user_id, expires_ns, record FROM sessions ORDER BY id_hash`, func(row pgx.CollectableRow) error {
		var hash, sealed, record []byte
		var userID string
		var expires int64
		if err := row.Scan(&hash, &sealed, &userID, &expires, &record); err != nil {
			return err
		}
		id, err := c.s.sealer.open(sealed, sessionAAD(hash))
		if err != nil {
			c.reportf("a session of user %s: its id: %v", userID, err)
		} else if !bytes.Equal(digest(string(id)), hash) {
			c.reportf("a session of user %s: its sealed id does not match its digest", userID)
		}
		var sess store.Session
		if err := json.Unmarshal(record, &sess); err != nil {
			c.reportf("a session of user %s: undecodable record: %v", userID, err)
			return nil
		}
		if sess.UserID != userID || sess.ExpiresAt.UnixNano() != expires {
			c.reportf("a session of user %s: the record says user %s, expiring at %v; the row says %d", userID, sess.UserID, sess.ExpiresAt, expires)
		}
		if u := c.users[userID]; u != nil && !u.Presents(&sess) {
			c.reportf("a session of user %s carries %q, which the user does not hold", userID, sess.Email)
		}
		return nil
	})
}

func (c *checker) checkRedirectURLs(ctx context.Context, tx pgx.Tx) error {
	return each(ctx, tx, `SELECT id, url, created_ns, record FROM redirect_urls ORDER BY id`, func(row pgx.CollectableRow) error {
		var id, url string
		var created int64
		var record []byte
		if err := row.Scan(&id, &url, &created, &record); err != nil {
			return err
		}
		var ru store.RedirectURL
		if err := json.Unmarshal(record, &ru); err != nil {
			c.reportf("redirect URL %s: undecodable record: %v", id, err)
			return nil
		}
		if ru.ID != id || ru.URL != url || ru.CreatedAt.UnixNano() != created {
			c.reportf("redirect URL %s: the record says id %s, URL %q, created at %v; the row says URL %q", id, ru.ID, ru.URL, ru.CreatedAt, url)
		}
		return nil
	})
}

// checkUsers checks each user's addresses against user_emails and the
// vouching rules: an address is verified exactly when some account vouches
// for it, and each voucher is an account of the user that asserts this
// address as verified now (a stale voucher would let the address link); a
// verified address is the user's who holds it, and no other's.
func (c *checker) checkUsers() {
	for _, id := range c.userIDs {
		u := c.users[id]
		for _, e := range u.Emails {
			if _, ok := c.emails[store.NormalizeEmail(e.Email)+"/"+id]; !ok {
				c.reportf("user %s: no user_emails row for %q", id, e.Email)
			}
			if e.Verified != (len(e.VerifiedBy) > 0) {
				c.reportf("user %s: email %q has verified %v and %d vouching accounts", id, e.Email, e.Verified, len(e.VerifiedBy))
			}
			if holder := c.emails[store.NormalizeEmail(e.Email)+"/"+id]; e.Verified && !holder {
				c.reportf("user %s: email %q is verified but another user, or no one, holds it", id, e.Email)
			}
			for _, aid := range e.VerifiedBy {
				switch a := c.accounts[aid]; {
				case aid == store.VouchedByAPI:
				case a == nil:
					c.reportf("user %s: email %q is vouched for by missing account %s", id, e.Email, aid)
				case a.UserID != id:
					c.reportf("user %s: email %q is vouched for by account %s of user %s", id, e.Email, aid, a.UserID)
				case !a.EmailVerified || store.NormalizeEmail(a.Email) != store.NormalizeEmail(e.Email):
					c.reportf("user %s: email %q is vouched for by account %s, which asserts %q (verified %v)", id, e.Email, aid, a.Email, a.EmailVerified)
				}
			}
		}
	}
}

// checkHandles checks user_handles against the users' usernames and
// external ids, both ways (after loadUsers).
func (c *checker) checkHandles(ctx context.Context, tx pgx.Tx) error {
	rows := map[string]string{}
	err := each(ctx, tx, `SELECT kind, value, user_id FROM user_handles`, func(row pgx.CollectableRow) error {
		var kind, value, uid string
		if err := row.Scan(&kind, &value, &uid); err != nil {
			return err
		}
		rows[kind+"/"+value] = uid
		if u := c.users[uid]; u == nil || u.Handles()[kind] != value {
			c.reportf("user_handles row %s/%s: user %s is missing or has another %s", kind, value, uid, kind)
		}
		return nil
	})
	for _, id := range c.userIDs {
		for kind, v := range c.users[id].Handles() {
			if rows[kind+"/"+v] != id {
				c.reportf("user %s: its %s %q has no user_handles row", id, kind, v)
			}
		}
	}
	return err
}
