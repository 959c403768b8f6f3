// Package cache keeps what the gateway reads on every request in memory in
// front of a store.Store: sessions, and users with their linked accounts.
// It is the only cache of store records: the store is wrapped once where it
// is opened, every reader and writer goes through the wrapper, and the
// wrapper forgets what its own writes make stale. What other processes
// change is heard through Forget (the PostgreSQL store's listener calls it)
// or, while nothing is heard, outlives its TTL by at most the TTL.
//
// The rule is coarse on purpose: a write about a user forgets everything
// cached of that user (the user, its accounts, its sessions), and the end of
// a session forgets that session. Only session activity (TouchSessions) is
// applied to the cached copies instead, since it is written all the time.
package cache

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Bounds on what is kept; past one, its map starts over.
const (
	maxSessions = 200_000
	maxUsers    = 100_000
)

// Cache is the memory in front of one open store, shared by every view of
// it (Store). Safe for concurrent use.
type Cache struct {
	st  store.Store
	now func() time.Time

	mu       sync.RWMutex
	sessions map[string]entry[*store.Session] // by session id
	users    map[string]entry[*store.User]    // by user id
	accounts map[string]entry[[]*store.ExternalAccount]
	byUser   map[string][]string // user id → ids of its cached sessions
	// gen counts forgets: a record read from the store before one is not
	// cached after it, or a read that raced a revocation would cache the
	// revoked session once the revocation had been heard.
	gen atomic.Uint64
}

// entry is a cached record and when it was read from the store.
type entry[T any] struct {
	v  T
	at time.Time
}

// New returns the cache in front of st. now is the clock that ages entries
// and ends sessions (a session is never served past its ExpiresAt); nil is
// time.Now.
func New(st store.Store, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{st: st, now: now,
		sessions: map[string]entry[*store.Session]{}, users: map[string]entry[*store.User]{},
		accounts: map[string]entry[[]*store.ExternalAccount]{}, byUser: map[string][]string{}}
}

// ForgetUsers drops everything cached of these users: call it when another
// process changed them (the PostgreSQL store's listener).
func (c *Cache) ForgetUsers(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for _, id := range ids {
		c.forgetUser(id)
	}
}

// ForgetAll empties the cache: call it when changes made elsewhere may have
// gone unheard (the listener reconnected).
func (c *Cache) ForgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	clear(c.sessions)
	clear(c.users)
	clear(c.accounts)
	clear(c.byUser)
}

// forgetUser drops a user's records; c.mu is held.
func (c *Cache) forgetUser(id string) {
	for _, sid := range c.byUser[id] {
		delete(c.sessions, sid)
	}
	delete(c.byUser, id)
	delete(c.users, id)
	delete(c.accounts, id)
}

// forget drops the sessions and the users a write changed.
func (c *Cache) forget(sessionIDs, userIDs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for _, id := range sessionIDs {
		e, ok := c.sessions[id]
		if !ok {
			continue
		}
		delete(c.sessions, id)
		uid := e.v.UserID
		if ids := slices.DeleteFunc(c.byUser[uid], func(x string) bool { return x == id }); len(ids) > 0 {
			c.byUser[uid] = ids
		} else {
			delete(c.byUser, uid)
		}
	}
	for _, id := range userIDs {
		c.forgetUser(id)
	}
}

// touch gives the cached copies of the sessions the activity of touches,
// by the rule of store.Session.Touch, keeping each entry's age: the cache
// never serves a record longer than its TTL after the store was read.
func (c *Cache) touch(touches []store.SessionTouch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range touches {
		if e, ok := c.sessions[t.ID]; ok {
			s := *e.v
			if s.Touch(t) {
				c.sessions[t.ID] = entry[*store.Session]{v: &s, at: e.at}
			}
		}
	}
}

// session returns the cached session id when it was read less than ttl ago
// and has not expired.
func (c *Cache) session(id string, ttl time.Duration, now time.Time) (*store.Session, bool) {
	c.mu.RLock()
	e, ok := c.sessions[id]
	c.mu.RUnlock()
	if !ok || now.Sub(e.at) >= ttl || !now.Before(e.v.ExpiresAt) {
		return nil, false
	}
	return e.v, true
}

// putSession caches s, read at now since generation gen, unless something
// was forgotten meanwhile.
func (c *Cache) putSession(s *store.Session, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if len(c.sessions) >= maxSessions {
		clear(c.sessions)
		clear(c.byUser)
	}
	if _, ok := c.sessions[s.ID]; !ok {
		c.byUser[s.UserID] = append(c.byUser[s.UserID], s.ID)
	}
	c.sessions[s.ID] = entry[*store.Session]{v: s, at: now}
}

// get returns m's entry for id when it was read less than ttl ago.
func get[T any](c *Cache, m map[string]entry[T], id string, ttl time.Duration, now time.Time) (T, bool) {
	c.mu.RLock()
	e, ok := m[id]
	c.mu.RUnlock()
	if !ok || now.Sub(e.at) >= ttl {
		var zero T
		return zero, false
	}
	return e.v, true
}

// put caches v in m under the user id, read at now since generation gen,
// unless something was forgotten meanwhile.
func put[T any](c *Cache, m map[string]entry[T], id string, v T, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if len(m) >= maxUsers {
		clear(m)
	}
	m[id] = entry[T]{v: v, at: now}
}
