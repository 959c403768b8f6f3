package caddymodule

import (
	"context"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
)

// stores shares one open store per location across config reloads: Caddy
// starts the new config before cleaning up the old one, Badger locks its
// directory, and a database pool should not be opened twice. A PostgreSQL
// store is pooled under its DSN and every setting it was opened with, so
// that a reload changing one (the secrets, max_conns, connect_timeout)
// opens a store with the new settings instead of reusing the old one.
var stores = caddy.NewUsagePool()

// openStore is a pooled store and its keys.
type openStore struct {
	*ops.Opened
	key string // in stores (and dispatchers)

	// identity holds the identity-token keys of every config on the
	// store, so a rotation reaches them all without a reload.
	identity *ops.Keys

	mu     sync.Mutex
	caches map[*storeRef]caches // of the configs using the store

	unwatch func() // stops the PostgreSQL store's listener
}

// caches are one config's in-memory copies of what is in the store (sessions,
// identity tokens, linked accounts). The admin API changes the store behind
// the gateway's back and tells them, and so does the PostgreSQL store's
// listener of the changes other gateways make, so that a revoked session is
// refused at once rather than when its cache entry expires.
type caches struct {
	SessionEnded    func(sessionID string)
	AccountsChanged func(userID string)
	// UserChanged drops everything cached of a user: its sessions and
	// linked accounts.
	UserChanged func(userID string)
	// Reset drops everything cached: changes may have gone unheard.
	Reset func()
}

// watch registers the caches of r's config until r is released.
func (r *storeRef) watch(c caches) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.caches == nil {
		r.caches = map[*storeRef]caches{}
	}
	r.caches[r] = c
}

// sessionEnded tells every config's caches that a session ended.
func (o *openStore) sessionEnded(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.caches {
		c.SessionEnded(id)
	}
}

// accountsChanged tells every config's caches that a user's linked accounts
// changed (or the user was deleted).
func (o *openStore) accountsChanged(userID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.caches {
		c.AccountsChanged(userID)
	}
}

// usersChanged tells every config's caches that other gateways changed
// these users (nil: any user).
func (o *openStore) usersChanged(ids []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range o.caches {
		if ids == nil {
			c.Reset()
		}
		for _, id := range ids {
			c.UserChanged(id)
		}
	}
}

// watch hears, through the PostgreSQL store's listener, the changes every
// gateway on the database commits, and drops what they make stale from the
// caches at once. While the listener is down, the caches fall back on their
// own TTL (session_cache); when it listens again they start over, since a
// change made meanwhile went unheard.
func (o *openStore) watch(st *postgres.Store, logger *zap.Logger) {
	var lost bool
	o.unwatch = st.Watch(postgres.Watcher{
		Changed: o.usersChanged,
		Listening: func() {
			o.usersChanged(nil)
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
	r.once.Do(func() {
		r.mu.Lock()
		delete(r.caches, r)
		r.mu.Unlock()
		stores.Delete(r.key)
	})
}

// badgerLogger sends Badger's messages to Caddy's log; its chatter at info
// level goes to debug.
type badgerLogger struct{ l *zap.SugaredLogger }

func (b badgerLogger) Errorf(f string, args ...any)   { b.l.Errorf(f, args...) }
func (b badgerLogger) Warningf(f string, args ...any) { b.l.Warnf(f, args...) }
func (b badgerLogger) Infof(f string, args ...any)    { b.l.Debugf(f, args...) }
func (b badgerLogger) Debugf(f string, args ...any)   { b.l.Debugf(f, args...) }
