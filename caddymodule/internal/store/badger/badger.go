// Package badger is the store.Store on an embedded Badger database: one
// gateway's users, accounts, sessions and flow records in a directory (or in
// memory, for tests). It supplies Badger's transactions, retries and key
// layout; the rules of what changes are package store's (store.Rules).
package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Key layout. Values are the JSON of the records unless noted.
//
//	user/<id>                          store.User
//	eac/<id>                           store.ExternalAccount
//	sess/<id>                          store.Session (Badger TTL to ExpiresAt)
//	idx/identity/<issuer>\x00<subject> account id
//	idx/email/<lower-cased email>      user id (verified emails only)
//	idx/user_eac/<user id>/<eac id>    empty
//	idx/user_sess/<user id>/<sess id>  empty (same TTL as the session)
//	idx/user_created/<order>/<user id> empty; <order> is createdOrder(CreatedAt)
//	idx/user_terms/<order>/<user id>   the user's search terms (termSources)
//	idx/term/<term>\x00<order>/<uid>   empty: the search index (see search.go)
//	idx/user_email/<lower email>/<uid> createdOrder of the user (every address, verified or not)
//	audit/<user id>/<order><nonce>     audit.Entry about the user (see useraudit.go)
//	meta/user_count                    number of users, decimal
//	meta/sessions/<hour>/<stripe>      sessions expiring in that hour, decimal (see sessioncount.go)
//	meta/sessions_counted              "1" once the sessions are counted
//	meta/search_index                  the search index's version, decimal (see indexSearch)
//	meta/search_index_at               where indexSearch has got to: an idx/user_created key
//	meta/event_clock                   sequence number of the last event, decimal
//	evt/<event id>                     store.Event (without its id), see events.go
//	kv/<name>                          a meta value (Store.PutMeta), opaque bytes
//	eph/<kind>/<id>                    8-byte big-endian unix-nano expiry + opaque bytes
const (
	prefixUser      = "user/"
	prefixEAC       = "eac/"
	prefixSession   = "sess/"
	prefixIdentity  = "idx/identity/"
	prefixEmail     = "idx/email/"
	prefixUserEAC   = "idx/user_eac/"
	prefixUserSess  = "idx/user_sess/"
	prefixCreated   = "idx/user_created/"
	prefixUserMail  = "idx/user_email/"
	prefixTerm      = "idx/term/"
	prefixUserTerms = "idx/user_terms/"
	prefixEph       = "eph/"
	keyUserCount    = "meta/user_count"
)

const (
	// maxAttempts bounds the retries of a write transaction that lost a
	// conflict. Bursts conflict in clusters (50 sign-ups at once all bump the
	// user counter): with backoff capped at 64 ms, 100 tries span seconds.
	maxAttempts = 100
	// defaultGCInterval is how often the value log is garbage-collected.
	defaultGCInterval = 5 * time.Minute
)

// Options configures Open.
type Options struct {
	// Dir is the data directory. Required unless InMemory.
	Dir string
	// InMemory keeps everything in memory (unit tests).
	InMemory bool
	// EncryptionKey, when set, turns on Badger's encryption at rest. It must
	// be 16, 24 or 32 bytes (AES-128, -192 or -256).
	EncryptionKey []byte
	// Logger receives Badger's messages. Nil drops Info and Debug and writes
	// Warning and Error to stderr.
	Logger badger.Logger
	// Infof receives the store's own messages (the building of its search
	// index at Open: start, progress, end). Default: Logger's Infof when
	// Logger is set, else standard error.
	Infof func(format string, args ...any)
	// Now is the clock used for expiry checks and timestamps. Default time.Now.
	Now func() time.Time
	// BulkLoad turns off synchronous writes, for building a store offline
	// (migrations, load tests): a crash during it may lose the last writes.
	// Never for a serving gateway.
	BulkLoad bool

	gcInterval time.Duration // tests shorten it; zero means defaultGCInterval
}

// Store is the store.Store on an embedded Badger database. The methods
// that change users, accounts and sessions are store.Rules' over its
// transactions.
type Store struct {
	store.Rules

	db  *badger.DB
	now func() time.Time

	stop      chan struct{} // closed by Close to stop the value-log GC
	gcDone    chan struct{} // closed when the value-log GC goroutine has returned
	closeOnce sync.Once
	closeErr  error

	// accountLocks serialize UpdateExternalAccount per account (striped by
	// hash of the id): updaters of one account would otherwise all conflict
	// and could exhaust their retries. Badger locks its directory, so every
	// writer is in this process.
	accountLocks [64]chan struct{}
	lockSeed     maphash.Seed

	// eventMu orders event ids with commits (see updateWithEvents);
	// eventClock is the sequence number of the last event.
	eventMu    sync.Mutex
	eventClock int64

	// redirectVersion counts the changes to redirect URLs: every writer is
	// in this process, so a counter in memory is RedirectURLsVersion.
	redirectVersion atomic.Int64
}

// Open opens (or creates) the store described by opts and starts its
// value-log garbage collection, which Close stops.
func Open(opts Options) (*Store, error) {
	where := opts.Dir
	if opts.InMemory {
		where = "in memory"
	} else if opts.Dir == "" {
		return nil, errors.New("opening store: a directory is required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = stderrLogger{log.New(os.Stderr, "badger: ", log.LstdFlags)}
	}
	bo := badger.DefaultOptions(opts.Dir)
	if opts.InMemory {
		bo = badger.DefaultOptions("").WithInMemory(true)
	}
	// Badger's defaults are sized for big databases; ours holds users and sessions.
	bo = bo.WithSyncWrites(!opts.BulkLoad).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4).
		WithNumCompactors(2).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(16 << 20). // required with encryption
		WithValueLogFileSize(64 << 20).
		WithLogger(logger)
	if len(opts.EncryptionKey) > 0 {
		bo = bo.WithEncryptionKey(opts.EncryptionKey)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", where, err)
	}
	b := &Store{db: db, now: opts.Now, stop: make(chan struct{}), gcDone: make(chan struct{}), lockSeed: maphash.MakeSeed()}
	b.Rules = store.Rules{Backend: backend{b}}
	for i := range b.accountLocks {
		b.accountLocks[i] = make(chan struct{}, 1)
	}
	if b.now == nil {
		b.now = time.Now
	}
	if err := b.loadEventClock(); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening store %s: %w", where, err)
	}
	infof := opts.Infof
	switch {
	case infof != nil:
	case opts.Logger != nil:
		infof = opts.Logger.Infof
	default:
		infof = log.New(os.Stderr, "socialgate: ", log.LstdFlags).Printf
	}
	if err := b.countSessions(); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening store %s: %w", where, err)
	}
	if err := b.indexSearch(infof); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening store %s: %w", where, err)
	}
	if opts.InMemory {
		close(b.gcDone) // there is no value log to collect
	} else {
		interval := opts.gcInterval
		if interval <= 0 {
			interval = defaultGCInterval
		}
		go store.Every(interval, b.stop, b.gcDone, b.collectGarbage)
	}
	return b, nil
}

// Close stops the value-log GC, waits for it and closes the database. It is
// safe to call more than once; later calls return the first call's result.
func (b *Store) Close() error {
	b.closeOnce.Do(func() {
		close(b.stop)
		<-b.gcDone
		if err := b.db.Close(); err != nil {
			b.closeErr = fmt.Errorf("closing store: %w", err)
		}
	})
	return b.closeErr
}

// collectGarbage rewrites value-log files until Close stops it, after
// deleting the session counters of past hours.
func (b *Store) collectGarbage() {
	// An error waits for the next round: past counters are never read.
	_ = b.pruneSessionCounts(context.Background())
	// RunValueLogGC rewrites at most one file per call; nil means it did
	// and there may be more.
	for b.db.RunValueLogGC(0.5) == nil {
		select {
		case <-b.stop:
			return
		default:
		}
	}
}

// update runs fn in a read-write transaction, retrying the whole transaction
// with jittered backoff when it loses a conflict. fn must derive everything
// from txn: it may run several times.
func (b *Store) update(ctx context.Context, fn func(txn *badger.Txn) error) error {
	return b.retry(ctx, func() error { return b.db.Update(fn) })
}

// retry runs commit until it does not lose a conflict, with jittered backoff.
func (b *Store) retry(ctx context.Context, commit func() error) error {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := commit()
		if !errors.Is(err, badger.ErrConflict) || attempt == maxAttempts {
			return err
		}
		if err := store.Backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// view runs fn in a read-only transaction.
func (b *Store) view(ctx context.Context, fn func(txn *badger.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(fn)
}

func userKey(id string) []byte    { return []byte(prefixUser + id) }
func eacKey(id string) []byte     { return []byte(prefixEAC + id) }
func sessionKey(id string) []byte { return []byte(prefixSession + id) }
func emailKey(email string) []byte {
	return []byte(prefixEmail + store.NormalizeEmail(email))
}
func identityKey(issuer, subject string) []byte {
	return []byte(prefixIdentity + issuer + "\x00" + subject)
}
func userEACKey(userID, eacID string) []byte   { return []byte(prefixUserEAC + userID + "/" + eacID) }
func userSessKey(userID, sessID string) []byte { return []byte(prefixUserSess + userID + "/" + sessID) }
func ephKey(kind, id string) []byte            { return []byte(prefixEph + kind + "/" + id) }

// badgerExpiry converts t to Badger's expiry (unix seconds), rounded up so
// Badger never drops a record before t; the reader checks t itself.
func badgerExpiry(t time.Time) uint64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return uint64(max(s, 1)) // zero would mean "never expires"
}

// getJSON decodes the record at key into v; a missing key is store.ErrNotFound.
func getJSON(txn *badger.Txn, key []byte, v any) error {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(val []byte) error {
		if err := json.Unmarshal(val, v); err != nil {
			return fmt.Errorf("decoding record: %w", err)
		}
		return nil
	})
}

// getString returns the value at key as a string; a missing key is store.ErrNotFound.
func getString(txn *badger.Txn, key []byte) (string, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", store.ErrNotFound
	}
	if err != nil {
		return "", err
	}
	val, err := item.ValueCopy(nil)
	return string(val), err
}

// exists reports whether key holds a live record.
func exists(txn *badger.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// setJSON stores v at key; expiresAt is Badger's expiry, 0 for none.
func setJSON(txn *badger.Txn, key []byte, v any, expiresAt uint64) error {
	val, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding record: %w", err)
	}
	e := badger.NewEntry(key, val)
	e.ExpiresAt = expiresAt
	return txn.SetEntry(e)
}

// scanKeys calls fn with the part after prefix of every live key under prefix,
// in key order, without reading values.
func scanKeys(txn *badger.Txn, prefix string, fn func(rest string) error) error {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = []byte(prefix)
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := fn(string(it.Item().Key()[len(prefix):])); err != nil {
			return err
		}
	}
	return nil
}

// stderrLogger is the default Badger logger: warnings and errors to stderr,
// the chatty info and debug messages dropped.
type stderrLogger struct{ l *log.Logger }

func (s stderrLogger) Errorf(f string, args ...any)   { s.l.Printf("ERROR: "+f, args...) }
func (s stderrLogger) Warningf(f string, args ...any) { s.l.Printf("WARNING: "+f, args...) }
func (stderrLogger) Infof(string, ...any)             {}
func (stderrLogger) Debugf(string, ...any)            {}

var _ store.Store = (*Store)(nil)
