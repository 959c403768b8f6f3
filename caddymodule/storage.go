package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/config"
	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
)

// acquireStore opens the configured store: PostgreSQL, or Badger in Storage.
func (a *App) acquireStore(expand config.Expand) (*storeRef, error) {
	if pg := a.Postgres; pg != nil {
		dsn, secrets, err := pg.Expand(expand)
		if err != nil {
			return nil, err
		}
		return acquirePostgres(pg, dsn, secrets, a.logger)
	}
	dir := a.Storage
	if dir == "" {
		dir = filepath.Join(caddy.AppDataDir(), "socialgate")
	}
	return acquireBadger(dir, a.logger)
}

// acquireBadger opens the Badger store in dir, with the keys kept beside it.
func acquireBadger(dir string, logger *zap.Logger) (*storeRef, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", dir, err)
	}
	key := filepath.Clean(abs)
	ref, err := acquire("badger:"+key, func() (*openStore, error) {
		o, err := ops.Open(context.Background(), ops.Location{Dir: key, Create: true, Logger: badgerLogger{logger.Sugar()},
			Infof: logger.Sugar().Infof})
		if errors.Is(err, ops.ErrStoreInUse) {
			err = fmt.Errorf("%w (is another process, or `caddy validate`, using it?)", err)
		}
		if err != nil {
			return nil, err
		}
		return newOpenStore(o), nil
	})
	if err != nil {
		return nil, err
	}
	return ref, checkKeyring(ref)
}

// checkKeyring refuses a keys.json whose store key or cookie secret changed
// since the store was opened: the open store keeps its keys until a restart,
// which the changed file would then break or sign everyone out with, so a
// reload that ignored it would only hide the change. Its identity keys may
// change: they are re-read (identity-key-rotate).
func checkKeyring(ref *storeRef) error {
	if ref.Dir == "" {
		return nil
	}
	fresh, err := keyring.LoadOrCreate(ref.Dir)
	if err == nil && (string(fresh.StoreKey) != string(ref.Keys.StoreKey) || string(fresh.CookieSecret) != string(ref.Keys.CookieSecret)) {
		err = errors.New("its store key or cookie secret changed since the store was opened; the running store keeps the old ones until a restart: put the old keys.json back, or restart the gateway to use the new one (a store key that differs from the store's own does not open it)")
	}
	if err != nil {
		ref.release()
		return fmt.Errorf("storage %s: %s: %w", ref.Dir, keyring.FileName, err)
	}
	return nil
}

// acquirePostgres connects to the database and listens for the changes of
// other gateways; every key derives from the shared secrets, so every
// gateway on the database agrees on them.
func acquirePostgres(cfg *config.PostgresStorage, dsn string, secrets [][]byte, logger *zap.Logger) (*storeRef, error) {
	// The key names the settings without showing the secrets.
	h := sha256.New()
	for _, s := range secrets {
		fmt.Fprintf(h, "%d:%s\x00", len(s), s)
	}
	fmt.Fprintf(h, "%d\x00%d", cfg.MaxConns, cfg.ConnectTimeout)
	return acquire("postgres:"+dsn+"#"+hex.EncodeToString(h.Sum(nil)[:12]), func() (*openStore, error) {
		o, err := ops.Open(context.Background(), ops.Location{DSN: dsn, Secrets: secrets, MaxConns: cfg.MaxConns,
			ConnectTimeout: time.Duration(cfg.ConnectTimeout), Infof: logger.Sugar().Infof})
		if err != nil {
			return nil, err
		}
		pg := o.Store.(*postgres.Store)
		st := newOpenStore(o)
		st.watch(pg, logger)
		return st, nil
	})
}

// parseStorage reads the storage option:
//
//	storage <dir> | postgres {
//		dsn             <dsn>
//		secret          <secret> [<previous secret>...]
//		max_conns       <n>
//		connect_timeout <duration>
//	}
func parseStorage(d *caddyfile.Dispenser, a *App) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	if d.Val() != "postgres" {
		a.Storage = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
		return nil
	}
	pg := new(config.PostgresStorage)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "dsn":
			err = oneArg(d, &pg.DSN)
		case "secret":
			var secrets []string
			if secrets, err = someArgs(d); err == nil {
				pg.Secret, pg.PreviousSecrets = secrets[0], secrets[1:]
			}
		case "max_conns":
			var s string
			if err = oneArg(d, &s); err == nil {
				n, perr := strconv.Atoi(s)
				if perr != nil || n < 2 {
					return d.Errf("max_conns: %q is not a number of connections (at least 2)", s)
				}
				pg.MaxConns = int32(n)
			}
		case "connect_timeout":
			err = durationArg(d, &pg.ConnectTimeout)
		default:
			return unknownOption(d, postgresOptions, "unrecognized storage postgres option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	a.Postgres = pg
	return nil
}
