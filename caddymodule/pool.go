package caddymodule

import (
	"context"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store/cache"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
)

// stores shares one open store per location across config reloads: Caddy
// starts the new config before cleaning up the old one, Badger locks its
// directory, and a database pool should not be opened twice. A PostgreSQL
// store is pooled under its DSN and every setting it was opened with, so
// that a reload changing one (the secrets, max_conns, connect_timeout)
// opens a store with the new settings instead of reusing the old one.
var stores = caddy.NewUsagePool()

// openStore is a pooled store, its cache and its keys.
type openStore struct {
	// Opened.Store is the store seen through cache with no TTL: what is
	// read through it comes from the store, and what is written through it
	// leaves every config's view of the cache (see config.Options.Gateway).
	// Every reader and writer goes through cache.
	*ops.Opened
	cache *cache.Cache
	key   string // in stores (and dispatchers)

	// identity holds the identity-token keys of every config on the
	// store, so a rotation reaches them all without a reload.
	identity *ops.Keys

	unwatch func() // stops the PostgreSQL store's listener

	// announced is the last ready line logged by a config on the store.
	announcedMu sync.Mutex
	announced   string
}

// newOpenStore puts an opened store behind its cache, once, where it is
// opened.
func newOpenStore(o *ops.Opened) *openStore {
	c := cache.New(o.Store, nil)
	o.Store = c.Store(0)
	return &openStore{Opened: o, cache: c}
}

// watch hears, through the PostgreSQL store's listener, the changes every
// gateway on the database commits, and drops what they make stale from the
// cache at once. While the listener is down, the cache falls back on its
// TTL (session_cache); when it listens again it starts over, since a
// change made meanwhile went unheard.
func (o *openStore) watch(st *postgres.Store, logger *zap.Logger) {
	var lost bool
	o.unwatch = st.Watch(postgres.Watcher{
		Changed: func(userIDs []string) {
			if userIDs == nil {
				o.cache.ForgetAll()
			}
			o.cache.ForgetUsers(userIDs...)
		},
		Listening: func() {
			o.cache.ForgetAll()
			if lost {
				logger.Info("listening again for changes made by other gateways")
			}
			lost = false
		},
		Lost: func(err error) {
			lost = true
			logger.Warn("not listening for changes made by other gateways: until the connection is back, sessions they end are refused here within session_cache", zap.Error(err))
		},
	})
}

// Destruct closes the store when the last config using it is cleaned up.
func (o *openStore) Destruct() error {
	if o.unwatch != nil {
		o.unwatch()
	}
	return o.Close()
}

// storeRef is one config's reference to a pooled store; release drops it once.
type storeRef struct {
	*openStore
	key  string
	once sync.Once
}

// acquire opens the store under key with open, or shares the one open there.
func acquire(key string, open func() (*openStore, error)) (*storeRef, error) {
	v, _, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		o, err := open()
		if err != nil {
			return nil, err
		}
		o.key = key
		if o.identity, err = ops.NewKeys(context.Background(), o.Opened); err != nil {
			o.Close()
			return nil, err
		}
		return o, nil
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
