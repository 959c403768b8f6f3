// Package postgres is the Store on PostgreSQL, for several gateways that
// share one user base. It keeps the guarantees of the embedded Badger store
// (store.Store's doc comments): one logical change is one transaction, two
// concurrent first sign-ins of one identity make one user, TakeEphemeral has
// a single winner, and UpdateExternalAccount is a compare-and-swap. The
// schema is created and migrated by Open from the SQL files embedded under
// migrations/.
//
// Concurrency: writes run at READ COMMITTED and take row locks, always a
// user's row before its accounts' rows, so they queue instead of failing; a
// transaction that loses a race on a unique constraint (an identity, a
// verified email), a serialization failure or a deadlock is retried whole.
//
// Secrets: provider tokens and ephemeral values are sealed with AES-256-GCM
// under Options.EncryptionKey before they leave the process, ephemeral ids
// (flow states and nonces, which are bearer secrets) and session ids are
// stored as their SHA-256, so a copy of the database names none of them.
// During a key rotation, Options.PreviousEncryptionKeys still open what they
// sealed, and Rekey seals it again under the new key.
package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Defaults of Options.
const (
	DefaultMaxConns        = 10
	DefaultConnectTimeout  = 5 * time.Second
	DefaultQueryTimeout    = 10 * time.Second
	DefaultCleanupInterval = time.Minute
)

const (
	// maxAttempts bounds the retries of a write transaction that lost a race.
	maxAttempts = 10
	// cleanupBatch is how many expired rows one cleanup statement deletes.
	cleanupBatch = 1000
)

// Options configures Open.
type Options struct {
	// DSN is the connection string, a URL (postgres://user@host/db?…) or
	// keyword/value pairs (host=… dbname=…). Required. Its search_path, when
	// set, chooses the schema the tables live in.
	DSN string
	// EncryptionKey seals provider tokens and ephemeral values. Required: 32
	// bytes (AES-256). Every gateway on one database needs the same key; Open
	// refuses keys of which none opens what the database holds
	// (ErrWrongKey).
	EncryptionKey []byte
	// PreviousEncryptionKeys are the keys EncryptionKey replaces during a
	// rotation: what they sealed still opens, new values are sealed under
	// EncryptionKey, and Rekey seals the rest again under it, after which
	// they can go. Default: none.
	PreviousEncryptionKeys [][]byte
	// MaxConns caps the connection pool. Default 10, at least 2: refreshes
	// and locks hold at most half of them (see RefreshExternalAccount).
	MaxConns int32
	// ConnectTimeout bounds establishing one connection. Default 5s.
	ConnectTimeout time.Duration
	// QueryTimeout bounds each store call whose context has no deadline of
	// its own. Default 10s.
	QueryTimeout time.Duration
	// CleanupInterval is how often expired sessions and ephemeral records are
	// deleted (they are never returned once expired, whether deleted or not).
	// Default 1m.
	CleanupInterval time.Duration
	// Now is the clock of expiry checks and timestamps. Default time.Now.
	Now func() time.Time
	// Infof receives the store's messages (the building of an index at
	// Open). Default: standard error.
	Infof func(format string, args ...any)
}

// Store is the store.Store on PostgreSQL. Safe for concurrent use by any
// number of goroutines and gateway processes. The methods that change
// users, accounts and sessions are store.Rules' over its transactions.
type Store struct {
	store.Rules

	pool         *pgxpool.Pool
	sealer       sealer
	now          func() time.Time
	queryTimeout time.Duration
	channel      string // of notifications (see notify.go)
	acks         acks   // changes waiting for the listeners' answers

	// lockSlots caps the connections that refreshes and locks hold for long
	// (RefreshExternalAccount, TryLock), at MaxConns/2, so that every other
	// query finds a free connection.
	lockSlots chan struct{}
	// locks are the TryLock locks this gateway holds.
	locks lockSet

	stop      chan struct{} // closed by Close to stop the cleanup
	done      chan struct{} // closed when the cleanup goroutine has returned
	closeOnce sync.Once
}

// Open connects to the database, creates or migrates the schema, checks the
// encryption key and starts the periodic cleanup of expired rows, which Close
// stops. While a store is open, the process holds a heap reserve of 16 MiB
// (see reserve).
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.DSN == "" {
		return nil, errors.New("opening postgres store: a DSN is required")
	}
	sl, err := newSealer(opts.EncryptionKey, opts.PreviousEncryptionKeys...)
	if err != nil {
		return nil, fmt.Errorf("opening postgres store: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(opts.DSN)
	if err != nil {
		// pgx quotes the DSN, password included, in some parse errors.
		return nil, errors.New("opening postgres store: the DSN is invalid")
	}
	cfg.MaxConns = opts.MaxConns
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConns < 2 {
		return nil, fmt.Errorf("opening postgres store: MaxConns %d is below 2", cfg.MaxConns)
	}
	cfg.ConnConfig.ConnectTimeout = cmp.Or(opts.ConnectTimeout, DefaultConnectTimeout)
	s := &Store{
		sealer:       sl,
		now:          opts.Now,
		queryTimeout: cmp.Or(opts.QueryTimeout, DefaultQueryTimeout),
		lockSlots:    make(chan struct{}, cfg.MaxConns/2),
		stop:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.Rules = store.Rules{Backend: backend{s}}
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening postgres store: %w", err)
	}
	parent := ctx
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("opening postgres store: %w", err)
	}
	if err := s.checkKey(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("opening postgres store: %w", err)
	}
	if err := s.pool.QueryRow(ctx, channelQuery).Scan(&s.channel); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("opening postgres store: naming the notification channel: %w", err)
	}
	infof := opts.Infof
	if infof == nil {
		infof = log.New(os.Stderr, "socialgate: ", log.LstdFlags).Printf
	}
	if err := s.indexSearch(parent, infof); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("opening postgres store: %w", err)
	}
	holdReserve()
	go store.Every(cmp.Or(opts.CleanupInterval, DefaultCleanupInterval), s.stop, s.done, s.cleanup)
	return s, nil
}

// Close stops the cleanup and closes the pool, waiting for connections in
// use to be released. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.pool.Close()
		releaseReserve()
	})
	return nil
}

// ErrWrongKey means that none of the encryption keys given to Open opens
// the database's key check: it was created, or last re-keyed, under
// another key.
var ErrWrongKey = errors.New("the encryption key is not the one this database was created with")

// The key check is a constant sealed into meta on first use; every Open
// checks that one of its keys opens it, and Rekey seals it again under the
// current key once nothing else needs a previous one.
const keyCheckName, keyCheckAAD, keyCheckPlain = "key_check", "meta/key_check", "socialgate"

// checkKey stores the key check on first use and checks it.
func (s *Store) checkKey(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		keyCheckName, s.sealer.seal([]byte(keyCheckPlain), keyCheckAAD))
	if err != nil {
		return fmt.Errorf("storing the key check: %w", err)
	}
	var sealed []byte
	if err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE name = $1`, keyCheckName).Scan(&sealed); err != nil {
		return fmt.Errorf("reading the key check: %w", err)
	}
	if got, err := s.sealer.open(sealed, keyCheckAAD); err != nil || string(got) != keyCheckPlain {
		return ErrWrongKey
	}
	return nil
}

// cleanup deletes expired sessions and ephemeral records. Several
// gateways may run it at once: each deletes what it finds, and none finds an
// expired row it must keep.
func (s *Store) cleanup() {
	for _, table := range []string{"sessions", "ephemeral"} {
		s.deleteExpired(table)
	}
	s.pruneSessionCounts()
}

// deleteExpired deletes table's expired rows, cleanupBatch per statement.
// Errors wait for the next round: reads never return expired rows anyway.
func (s *Store) deleteExpired(table string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.queryTimeout)
	defer cancel()
	go func() {
		select { // Close must not wait for a slow database
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	q := `DELETE FROM ` + table + ` WHERE ctid = ANY (ARRAY(SELECT ctid FROM ` + table +
		` WHERE expires_ns <= $1 LIMIT ` + fmt.Sprint(cleanupBatch) + `))`
	for {
		tag, err := s.pool.Exec(ctx, q, s.now().UnixNano())
		if err != nil || tag.RowsAffected() < cleanupBatch {
			return
		}
	}
}

// bound gives ctx the store's query timeout unless it has a deadline.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.queryTimeout)
}

// write runs fn in a READ COMMITTED transaction, retrying the whole
// transaction with jittered backoff when it lost a race (see retryable).
// fn must derive everything from tx: it may run several times.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.writeWithEvents(ctx, func(tx pgx.Tx, _ *store.Outbox) error { return fn(tx) })
}

// writeWithEvents is write for a change that records events: fn adds them
// to the outbox it is given, and they are stored at the end of its
// transaction (see writeEvents), which also notifies every gateway's
// listener of the users they are about (see notify.go). While this store's
// own listener listens, it returns once every listener answered that it
// forgot them, so that no gateway serves what the caller (a sign-out, a
// revocation) just ended.
func (s *Store) writeWithEvents(ctx context.Context, fn func(tx pgx.Tx, out *store.Outbox) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	acks := s.acks.expect()
	defer acks.forget()
	for attempt := 1; ; attempt++ {
		listeners := 0
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var out store.Outbox
			if err := fn(tx, &out); err != nil {
				return err
			}
			var err error
			if listeners, err = s.notify(ctx, tx, out.Pending(), acks); err != nil {
				return err
			}
			return s.writeEvents(ctx, tx, out.Pending())
		})
		if err == nil {
			acks.wait(ctx, listeners)
		}
		if !retryable(err) || attempt == maxAttempts {
			if errors.Is(err, store.ErrMoved) {
				err = errors.New("the records kept changing; gave up")
			}
			return err
		}
		if err := store.Backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// read runs fn in a read-only snapshot (REPEATABLE READ).
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// retryable reports whether a transaction failed only because another one
// won a race: a serialization failure, a deadlock, or a unique violation of
// a constraint that two first sign-ins can both reach (the next attempt sees
// the winner's row).
func retryable(err error) bool {
	if errors.Is(err, store.ErrMoved) {
		return true
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return true
	case "23505": // unique_violation
		return pe.ConstraintName == "external_accounts_identity" || pe.ConstraintName == "user_emails_one_holder" ||
			pe.ConstraintName == "user_handles_pkey"
	}
	return false
}

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// notFound maps "no row" to store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// Interface guards: gateways sharing the database take turns through its
// locks (token refreshes, webhook deliveries).
var (
	_ store.Store  = (*Store)(nil)
	_ store.Shared = (*Store)(nil)
)
