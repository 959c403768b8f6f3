package caddymodule

import (
	"fmt"
	"path/filepath"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// stores shares one open store per directory across config reloads: Caddy
// starts the new config before cleaning up the old one, and Badger locks its
// directory, so the two configs must use the same handle.
var stores = caddy.NewUsagePool()

// openStore is a pooled store and the keys kept beside it.
type openStore struct {
	store *store.Badger
	keys  *keyring.Keyring
}

// Destruct closes the store when the last config using it is cleaned up.
func (o *openStore) Destruct() error { return o.store.Close() }

// storeRef is one config's reference to a pooled store; release drops it once.
type storeRef struct {
	*openStore
	key  string
	once sync.Once
}

// acquireStore opens the store in dir, or shares the one already open there.
func acquireStore(dir string, logger *zap.Logger) (*storeRef, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", dir, err)
	}
	key := filepath.Clean(abs)
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		keys, err := keyring.LoadOrCreate(key)
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", key, err)
		}
		st, err := store.Open(store.Options{Dir: key, EncryptionKey: keys.StoreKey, Logger: badgerLogger{logger.Sugar()}})
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w (is another process, or `caddy validate`, using it?)", key, err)
		}
		return &openStore{store: st, keys: keys}, nil
	})
	if err != nil {
		return nil, err
	}
	return &storeRef{openStore: v.(*openStore), key: key}, nil
}

func (r *storeRef) release() {
	r.once.Do(func() { stores.Delete(r.key) })
}

// badgerLogger sends Badger's messages to Caddy's log; its chatter at info
// level goes to debug.
type badgerLogger struct{ l *zap.SugaredLogger }

func (b badgerLogger) Errorf(f string, args ...any)   { b.l.Errorf(f, args...) }
func (b badgerLogger) Warningf(f string, args ...any) { b.l.Warnf(f, args...) }
func (b badgerLogger) Infof(f string, args ...any)    { b.l.Debugf(f, args...) }
func (b badgerLogger) Debugf(f string, args ...any)   { b.l.Debugf(f, args...) }
