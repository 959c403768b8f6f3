package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// SignIn implements store.Store.SignIn in one transaction. Two concurrent
// first sign-ins of one identity both insert an account; the unique
// (issuer, subject) constraint lets one commit, and the other is retried
// and finds the winner's account. It records the events the Badger store
// does: user.created, external_account.created and user.updated.
func (s *Store) SignIn(ctx context.Context, in store.SignIn) (store.SignInResult, error) {
	a := in.Account
	if a.Issuer == "" || a.Subject == "" || strings.ContainsRune(a.Issuer, 0) || strings.ContainsRune(a.Subject, 0) {
		return store.SignInResult{}, fmt.Errorf("signing in with %s: the identity needs an issuer and a subject (without NUL)", a.Provider)
	}
	if err := a.Tokens.Check(); err != nil {
		return store.SignInResult{}, fmt.Errorf("signing in with %s: %w", a.Provider, err)
	}
	now := in.Now
	if now.IsZero() {
		now = s.now()
	}
	var res store.SignInResult
	err := s.writeWithEvents(ctx, func(tx pgx.Tx, out *store.Outbox) error {
		var err error
		res, err = s.signIn(ctx, tx, out, in, now)
		return err
	})
	if err != nil {
		return store.SignInResult{}, fmt.Errorf("signing in with %s: %w", a.Provider, err)
	}
	return res, nil
}

func (s *Store) signIn(ctx context.Context, tx pgx.Tx, out *store.Outbox, in store.SignIn, now time.Time) (store.SignInResult, error) {
	var eacID, userID string
	err := tx.QueryRow(ctx, `SELECT id, user_id FROM external_accounts WHERE issuer = $1 AND subject = $2`,
		in.Account.Issuer, in.Account.Subject).Scan(&eacID, &userID)
	switch {
	case err == nil:
		return s.signInKnown(ctx, tx, out, in, now, eacID, userID)
	case errors.Is(err, pgx.ErrNoRows):
		return s.signInNew(ctx, tx, out, in, now)
	default:
		return store.SignInResult{}, fmt.Errorf("looking up identity: %w", err)
	}
}

// signInKnown refreshes the account of a known identity and its user.
func (s *Store) signInKnown(ctx context.Context, tx pgx.Tx, out *store.Outbox, in store.SignIn, now time.Time, eacID, userID string) (store.SignInResult, error) {
	if in.LinkToUser != "" && in.LinkToUser != userID {
		return store.SignInResult{}, store.ErrIdentityTaken
	}
	u, err := lockUser(ctx, tx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return store.SignInResult{}, errRetry // deleted since the lookup
	}
	if err != nil {
		return store.SignInResult{}, err
	}
	acc, err := s.lockAccount(ctx, tx, eacID, userID)
	if errors.Is(err, store.ErrNotFound) {
		return store.SignInResult{}, errRetry // unlinked since the lookup
	}
	if err != nil {
		return store.SignInResult{}, err
	}
	acc.Refresh(&in.Account, now)
	emails := in.Emails(s.emails(ctx, tx, now), out, now)
	changed, err := store.AdoptAccount(emails, u, acc, now) // u is locked (lockUser)
	if err != nil {
		return store.SignInResult{}, err
	}
	if err := in.CheckAdmission(u, acc, func() ([]*store.ExternalAccount, error) { return s.accountsOf(ctx, tx, u.ID) }); err != nil {
		return store.SignInResult{}, err
	}
	if err := s.saveAccount(ctx, tx, acc); err != nil {
		return store.SignInResult{}, err
	}
	if err := saveUser(ctx, tx, u); err != nil {
		return store.SignInResult{}, err
	}
	if changed {
		if err := s.userEvent(ctx, tx, out, store.EventUserUpdated, u, now); err != nil {
			return store.SignInResult{}, err
		}
	}
	res := store.SignInResult{User: u, Account: acc}
	emails.Report(&res)
	return res, nil
}

// userEvent adds an event about u, with its accounts as tx sees them, to out.
func (s *Store) userEvent(ctx context.Context, tx pgx.Tx, out *store.Outbox, typ string, u *store.User, now time.Time) error {
	accs, err := s.accountsOf(ctx, tx, u.ID)
	if err != nil {
		return err
	}
	return out.Add(store.Event{Type: typ, CreatedAt: now, User: u, Accounts: accs})
}

// signInNew links an unknown identity to LinkToUser, to the holder of its
// verified email (as in.EmailLink decides), or to a new user, and creates
// its account.
func (s *Store) signInNew(ctx context.Context, tx pgx.Tx, out *store.Outbox, in store.SignIn, now time.Time) (store.SignInResult, error) {
	a := in.Account
	var u *store.User
	link, holder := store.EmailLinkNone, ""
	switch {
	case in.LinkToUser != "":
		if !validID(in.LinkToUser) {
			return store.SignInResult{}, fmt.Errorf("loading user: %w", store.ErrNotFound)
		}
		var err error
		if u, err = lockUser(ctx, tx, in.LinkToUser); err != nil {
			return store.SignInResult{}, fmt.Errorf("loading user %s: %w", in.LinkToUser, err)
		}
	case in.LooksUpEmailHolder():
		var err error
		if link, holder, u, err = s.emailLinkOf(ctx, tx, &in, now); err != nil {
			return store.SignInResult{}, err
		}
	}
	userCreated := u == nil
	if userCreated {
		u = &store.User{ID: store.NewID("user"), CreatedAt: now, UpdatedAt: now}
		if err := insertUser(ctx, tx, u); err != nil {
			return store.SignInResult{}, err
		}
	}
	acc := a
	acc.ID = store.NewID("eac")
	acc.UserID = u.ID
	acc.Status = store.StatusVerified
	acc.CreatedAt = now
	acc.UpdatedAt = now
	if err := s.insertAccount(ctx, tx, &acc); err != nil {
		return store.SignInResult{}, err
	}
	emails := in.Emails(s.emails(ctx, tx, now), out, now)
	changed, err := store.AdoptAccount(emails, u, &acc, now)
	if err != nil {
		return store.SignInResult{}, err
	}
	if err := in.CheckAdmission(u, &acc, func() ([]*store.ExternalAccount, error) { return s.accountsOf(ctx, tx, u.ID) }); err != nil {
		return store.SignInResult{}, err
	}
	if in.LooksUpEmailHolder() && (holder == "" || link == store.EmailLinkTakeOver) {
		// The address was free (or freed) when we looked; if someone
		// committed it since, this identity must link to them: start over.
		holder, err := emailHolder(ctx, tx, a.Email)
		if err != nil {
			return store.SignInResult{}, err
		}
		if holder != u.ID {
			return store.SignInResult{}, errRetry
		}
	}
	if err := saveUser(ctx, tx, u); err != nil {
		return store.SignInResult{}, err
	}
	res := store.SignInResult{User: u, Account: &acc, UserCreated: userCreated, AccountCreated: true}
	emails.Report(&res)
	if userCreated {
		err = out.Add(store.Event{Type: store.EventUserCreated, CreatedAt: now, User: u, Accounts: []*store.ExternalAccount{&acc}})
	}
	if err == nil {
		err = out.Add(store.Event{Type: store.EventAccountCreated, CreatedAt: now, Account: &acc})
	}
	if err == nil && link == store.EmailLinkJoin {
		var revoked []*store.Session
		if revoked, err = s.revokeSessionsOf(ctx, tx, u.ID); err == nil {
			err = store.LinkedByEmail(out, &res, &acc, revoked, now)
		}
	}
	if err == nil && changed && !userCreated {
		err = s.userEvent(ctx, tx, out, store.EventUserUpdated, u, now)
	}
	if err != nil {
		return store.SignInResult{}, err
	}
	return res, nil
}

// emailLinkOf finds and locks the holder of in.Account's verified email and
// applies in.EmailLink to it: it returns the holder's id, and the holder
// itself for EmailLinkJoin; for EmailLinkRefuse it fails with ErrEmailHeld.
// A take-over is the new user's AdoptAccount's to carry out.
func (s *Store) emailLinkOf(ctx context.Context, tx pgx.Tx, in *store.SignIn, now time.Time) (store.EmailLink, string, *store.User, error) {
	none := store.EmailLinkNone
	x := s.emails(ctx, tx, now)
	holder, err := x.Holder(in.Account.Email)
	if err != nil || holder == "" {
		return none, "", nil, err
	}
	h, accounts, err := x.LockHolder(in.Account.Email, holder)
	if err != nil {
		return none, "", nil, err
	}
	switch link := in.EmailLink(h, accounts); link {
	case store.EmailLinkJoin:
		return link, holder, h, nil
	case store.EmailLinkRefuse:
		return link, holder, nil, store.ErrEmailHeld
	default:
		return link, holder, nil, nil
	}
}

// revokeSessionsOf deletes every session of the user and returns them.
// FOR UPDATE on the user blocks the key-share lock that inserting a
// session takes, so no session of the user appears before the commit.
func (s *Store) revokeSessionsOf(ctx context.Context, tx pgx.Tx, userID string) ([]*store.Session, error) {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `DELETE FROM sessions WHERE user_id = $1 RETURNING id_hash, id_sealed, record`, userID)
	if err != nil {
		return nil, err
	}
	revoked, err := pgx.CollectRows(rows, s.scanSession)
	if err != nil {
		return nil, fmt.Errorf("revoking sessions of user %s: %w", userID, err)
	}
	return revoked, nil
}

// pgEmails is the PostgreSQL store.EmailTx: a user_emails row records an
// address a user has, and holder marks the user a verified one links to.
type pgEmails struct {
	ctx context.Context
	tx  pgx.Tx
	s   *Store
	now time.Time
}

func (s *Store) emails(ctx context.Context, tx pgx.Tx, now time.Time) pgEmails {
	return pgEmails{ctx, tx, s, now}
}

// Record inserts u's user_emails row for email, if it is missing.
func (x pgEmails) Record(email string, u *store.User) error {
	if _, err := x.tx.Exec(x.ctx, `INSERT INTO user_emails (email_lower, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		normalizeEmail(email), u.ID); err != nil {
		return fmt.Errorf("recording an email: %w", err)
	}
	return nil
}

// Holder returns the user whose row holds email.
func (x pgEmails) Holder(email string) (string, error) { return emailHolder(x.ctx, x.tx, email) }

// Hold makes u's row for email the holder.
func (x pgEmails) Hold(email string, u *store.User) error {
	// Two users taking one free address at once: the unique index
	// user_emails_one_holder fails one, whose transaction is retried.
	if _, err := x.tx.Exec(x.ctx, `UPDATE user_emails SET holder = true WHERE email_lower = $1 AND user_id = $2`,
		normalizeEmail(email), u.ID); err != nil {
		return fmt.Errorf("indexing an email: %w", err)
	}
	return nil
}

// Release clears holder on userID's row for email.
func (x pgEmails) Release(email, userID string) error {
	if _, err := x.tx.Exec(x.ctx, `UPDATE user_emails SET holder = false WHERE email_lower = $1 AND user_id = $2 AND holder`,
		normalizeEmail(email), userID); err != nil {
		return fmt.Errorf("releasing an email: %w", err)
	}
	return nil
}

// LockHolder locks and loads the user id, with its accounts, and starts the
// transaction over when id no longer holds email once locked.
func (x pgEmails) LockHolder(email, id string) (*store.User, []*store.ExternalAccount, error) {
	h, err := lockUser(x.ctx, x.tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, errRetry // deleted since the lookup
	}
	if err != nil {
		return nil, nil, err
	}
	// The holder may have given the address up before we locked it.
	if again, err := emailHolder(x.ctx, x.tx, email); err != nil || again != id {
		return nil, nil, cmp.Or(err, errRetry)
	}
	accounts, err := x.s.accountsOf(x.ctx, x.tx, id)
	return h, accounts, err
}

// SaveUser writes a user LockHolder locked.
func (x pgEmails) SaveUser(u *store.User) error { return saveUser(x.ctx, x.tx, u) }

// EndSessions deletes the user's live sessions that match reports. A
// session being created meanwhile waits for the user's lock (CreateSession
// reads the user FOR SHARE when it carries an address) and then sees the
// change.
func (x pgEmails) EndSessions(userID string, match func(*store.Session) bool) ([]*store.Session, error) {
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
func (x pgEmails) RewriteSessions(userID string, change func(*store.Session) bool) error {
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
func (x pgEmails) liveSessions(userID string) ([]liveSession, error) {
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
	err := tx.QueryRow(ctx, `SELECT user_id FROM user_emails WHERE email_lower = $1 AND holder`, normalizeEmail(email)).Scan(&uid)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("looking up email: %w", err)
	}
	return uid, nil
}
