package ops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	badgerstore "github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
)

// Errors of Open.
var (
	// ErrNoStore means the directory holds no store (no keys.json), and
	// Location.Create was not set.
	ErrNoStore = errors.New("no socialgate store here")
	// ErrStoreInUse means another process, normally the gateway, holds the
	// Badger store's directory lock.
	ErrStoreInUse = errors.New("the gateway is running and holds the store")
	// ErrWrongSecret means none of the secrets opens the PostgreSQL
	// database: it was created, or last re-keyed, with another secret.
	ErrWrongSecret = errors.New("the secret does not open this database")
)

// Location is where a store is: a Badger directory, or a PostgreSQL
// database when DSN is set.
type Location struct {
	// Dir is the Badger store's directory; its keys (keys.json) are kept
	// beside its data.
	Dir string
	// Create makes a new Badger store, with new keys, where there is none;
	// without it a directory without keys.json is ErrNoStore.
	Create bool
	// Logger receives Badger's messages. Default: warnings and errors on
	// standard error.
	Logger badger.Logger
	// Infof receives either store's own messages: the building of its
	// search index at open, which on a large store written by an older
	// version takes minutes. Default: Logger's Infof when Logger is set,
	// else standard error.
	Infof func(format string, args ...any)

	// DSN is the PostgreSQL connection string.
	DSN string
	// Secrets are the PostgreSQL store's secrets, the current one first:
	// every key derives from them (see keyring.FromSecret).
	Secrets [][]byte
	// MaxConns and ConnectTimeout size the connection pool; zero values
	// are postgres.Options' defaults.
	MaxConns       int32
	ConnectTimeout time.Duration
}

// Opened is an open store with its keys.
type Opened struct {
	Store store.Store
	Keys  *keyring.Keyring
	// Dir is the Badger store's absolute directory; "" for PostgreSQL.
	Dir string
	// Name says which store it is, without secrets: "Badger store
	// /var/lib/socialgate", "PostgreSQL database auth on db.internal:5432".
	Name string
}

// Close closes the store.
func (o *Opened) Close() error { return o.Store.Close() }

// Open opens the store at l. It is the one opener of the gateway and of
// the commands.
func Open(ctx context.Context, l Location) (*Opened, error) {
	if l.DSN != "" {
		return openPostgres(ctx, l)
	}
	dir, err := filepath.Abs(l.Dir)
	if err != nil || l.Dir == "" {
		return nil, fmt.Errorf("storage %q: not a directory", l.Dir)
	}
	if _, err := os.Stat(filepath.Join(dir, keyring.FileName)); errors.Is(err, fs.ErrNotExist) && !l.Create {
		return nil, fmt.Errorf("storage %s: %w (%s is missing)", dir, ErrNoStore, keyring.FileName)
	}
	keys, err := keyring.LoadOrCreate(dir)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", dir, err)
	}
	st, err := badgerstore.Open(badgerstore.Options{Dir: dir, EncryptionKey: keys.StoreKey, Logger: l.Logger, Infof: l.Infof})
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", dir, inUse(err))
	}
	return &Opened{Store: st, Keys: keys, Dir: dir, Name: "Badger store " + dir}, nil
}

// inUse recognizes a Badger directory lock held by another process: Badger
// flattens the flock error into its message, so the text is all there is.
func inUse(err error) error {
	if strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return ErrStoreInUse
	}
	return err
}

func openPostgres(ctx context.Context, l Location) (*Opened, error) {
	if len(l.Secrets) == 0 {
		return nil, errors.New("storage postgres: a secret is required")
	}
	keys, err := keyring.FromSecret(l.Secrets[0], l.Secrets[1:]...)
	if err != nil {
		return nil, fmt.Errorf("storage postgres: %w", err)
	}
	opts := postgres.Options{DSN: l.DSN, EncryptionKey: keys.StoreKey,
		PreviousEncryptionKeys: keys.PreviousStoreKeys, MaxConns: l.MaxConns, ConnectTimeout: l.ConnectTimeout}
	if opts.Infof = l.Infof; opts.Infof == nil && l.Logger != nil {
		opts.Infof = l.Logger.Infof
	}
	st, err := postgres.Open(ctx, opts)
	if errors.Is(err, postgres.ErrWrongKey) {
		return nil, fmt.Errorf("storage postgres: %w: it was created, or last re-keyed, with another secret. To change the secret, "+
			"keep the old one after the new one (secret <new> <old>) and run socialgate secret-rotate, which says when the old "+
			"one can go (docs/secret-rotation.md)", ErrWrongSecret)
	}
	if err != nil {
		return nil, fmt.Errorf("storage postgres: %w", err)
	}
	return &Opened{Store: st, Keys: keys, Name: postgresName(l.DSN)}, nil
}

// postgresName names the database of a DSN without its password.
func postgresName(dsn string) string {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "PostgreSQL database"
	}
	return fmt.Sprintf("PostgreSQL database %s on %s", cfg.Database, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
}
