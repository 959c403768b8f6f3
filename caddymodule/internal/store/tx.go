package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
)

// Tx is one read-write transaction of a Store implementation, as the rules
// of this package see it: the records and indexes they read and change.
// The rules (Rules) decide what changes; a Tx only reads and writes. Ids
// reach it checked (ValidID), and addresses as given: it normalizes them
// (NormalizeEmail) itself.
type Tx interface {
	EmailTx
	// Identity returns the account linked to the identity (issuer,
	// subject) and that account's user, or ErrNotFound.
	Identity(issuer, subject string) (accountID, userID string, err error)
	// LockUser reads the user id for a change in this transaction; a store
	// that locks rows locks it (every writer locks a user before its
	// accounts). A missing user is ErrNotFound.
	LockUser(id string) (*User, error)
	// Account reads the account id for a change. With userID set, the
	// caller has locked that user (LockUser) and an account of another user
	// is ErrNotFound; with userID "", a store that locks rows locks the
	// account's user first.
	Account(id, userID string) (*ExternalAccount, error)
	// Accounts returns the user's accounts, oldest first (then by id).
	Accounts(userID string) ([]*ExternalAccount, error)
	// InsertUser writes a new user, with its place in the listing indexes.
	InsertUser(u *User) error
	// DeleteUser removes u with everything it owns: accounts, sessions,
	// addresses and handles, and their indexes.
	DeleteUser(u *User) error
	// InsertAccount writes a new account with its identity and user
	// indexes.
	InsertAccount(a *ExternalAccount) error
	// SaveAccount writes an account back; its identity never changes.
	SaveAccount(a *ExternalAccount) error
	// DeleteAccount removes an account with its indexes.
	DeleteAccount(a *ExternalAccount) error
	// DeleteSessions deletes every session of the user, live or expired,
	// and returns them; no session of the user starts until the
	// transaction ends.
	DeleteSessions(userID string) ([]*Session, error)
	// HandleHolder returns the id of the live user holding the handle
	// (HandleUsername…) value, or "".
	HandleHolder(kind, value string) (string, error)
	// HoldHandle makes the handle value u's; the caller made sure no one
	// else holds it.
	HoldHandle(kind, value string, u *User) error
	// ReleaseHandle deletes the handle value if userID holds it.
	ReleaseHandle(kind, value, userID string) error
	// ShareUser reads the user a session is being created for, so that a
	// change to the user running alongside (a deletion, a ban, a withdrawn
	// address) sees the new session or is seen by it: a store that locks
	// rows takes a shared lock. A missing user is ErrNotFound.
	ShareUser(id string) (*User, error)
	// ShareAccount checks that the account id is one of userID's
	// (ErrNotFound otherwise) for a session starting through it, so that an
	// unlink of it running alongside sees the session or is seen by it.
	ShareAccount(id, userID string) error
	// InsertAudit writes an audit entry about the user e.UserID, which the
	// caller locked, and deletes the user's entries older than the newest
	// keep.
	InsertAudit(e audit.Entry, keep int) error
	// InsertSession writes a new session (s.ID is new: a taken one is an
	// error), which expires at s.ExpiresAt.
	InsertSession(s *Session) error
}

// Backend is what a Store implementation gives Rules: its transactions and
// its clock.
type Backend interface {
	// Update runs fn in one read-write transaction and stores the events fn
	// adds to out in that transaction. A transaction that lost a race to
	// another (a conflict, a unique index, ErrMoved where its transactions
	// see others' commits) runs again whole, so fn derives everything from
	// tx and may run more than once. fn's own error aborts the transaction
	// and is returned.
	Update(ctx context.Context, fn func(tx Tx, out *Outbox) error) error
	// Now is the store's clock.
	Now() time.Time
}

// Rules implements the Store methods that change users, their accounts and
// their sessions over a Backend's transactions: the rules of sign-in,
// linking and unlinking, email addresses, users the backend API creates and
// updates, deletions and imports, written once for every implementation.
// An implementation embeds it; it may wrap a method to add what its storage
// needs (Badger's per-account lock, its batching of huge deletions).
type Rules struct {
	Backend Backend
}

// ErrMoved means a record that a transaction reached through an index was
// gone, or had moved, when it read or locked it. A store whose transactions
// see others' commits (PostgreSQL at READ COMMITTED) runs the transaction
// again; in one whose transactions read one snapshot (Badger) the index is
// wrong: the store is inconsistent (see Check).
var ErrMoved = errors.New("a record moved while the transaction read it")

// moved describes a record that ErrMoved is about. It deliberately does not
// wrap ErrNotFound, which callers read as "no such user".
func moved(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMoved, fmt.Sprintf(format, args...))
}

// callerError carries an error of a caller's callback out of a transaction
// untouched: a Backend retries no error that carries it, as it does not
// unwrap.
type callerError struct{ err error }

func (e callerError) Error() string { return e.err.Error() }

// callerErr returns the callback's own error when err carries one, else nil.
func callerErr(err error) error {
	var ce callerError
	if errors.As(err, &ce) {
		return ce.err
	}
	return nil
}

// Every calls fn every interval until stop is closed, then closes done: a
// store's upkeep in the background (Badger's value-log collection,
// PostgreSQL's deletion of expired rows), which its Close stops and waits
// for.
func Every(interval time.Duration, stop <-chan struct{}, done chan<- struct{}, fn func()) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			fn()
		}
	}
}

// Backoff waits before the next attempt of a transaction that lost a race,
// its attempt-th: a random time up to 2^attempt ms, at most 64 ms, so that
// the racers spread out. It returns ctx's error when ctx ends first.
func Backoff(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6))))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
