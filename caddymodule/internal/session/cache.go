package session

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// maxCached bounds the cache; past it, the cache starts over.
const maxCached = 200_000

// cache keeps recently read sessions. A nil *cache caches nothing.
type cache struct {
	ttl     time.Duration
	mu      sync.RWMutex
	entries map[string]cached   // by session id
	byUser  map[string][]string // user id → ids of its entries
	tokens  map[string]string   // verified cookie value or token → session id
	// gen counts forgets: a session read from the store before one is not
	// cached after it, or a read that raced a revocation would cache the
	// revoked session once the revocation had been heard.
	gen atomic.Uint64
}

type cached struct {
	s  *store.Session
	at time.Time
}

func (c *cache) get(id string, now time.Time) *store.Session {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if !ok || now.Sub(e.at) >= c.ttl || !now.Before(e.s.ExpiresAt) {
		return nil
	}
	return e.s
}

// generation is what put needs of a store read that starts now.
func (c *cache) generation() uint64 {
	if c == nil {
		return 0
	}
	return c.gen.Load()
}

// put caches s, read from the store since generation gen, unless something
// was forgotten meanwhile.
func (c *cache) put(s *store.Session, now time.Time, gen uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return
	}
	if len(c.entries) >= maxCached {
		clear(c.entries)
		clear(c.byUser)
	}
	if _, ok := c.entries[s.ID]; !ok {
		c.byUser[s.UserID] = append(c.byUser[s.UserID], s.ID)
	}
	c.entries[s.ID] = cached{s: s, at: now}
}

// touch gives the cached copy of a session the activity and expiry of t,
// keeping the entry's age: the cache never serves a session longer than its
// TTL after the store was read.
func (c *cache) touch(t store.SessionTouch) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if e, ok := c.entries[t.ID]; ok {
		s := *e.s
		if s.Touch(t) {
			c.entries[t.ID] = cached{s: &s, at: e.at}
		}
	}
	c.mu.Unlock()
}

// verified returns the session id of a cookie value or token verified before.
func (c *cache) verified(value string) (string, bool) {
	if c == nil {
		return "", false
	}
	c.mu.RLock()
	id, ok := c.tokens[value]
	c.mu.RUnlock()
	return id, ok
}

func (c *cache) remember(value, id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if len(c.tokens) >= maxCached {
		clear(c.tokens)
	}
	c.tokens[value] = id
	c.mu.Unlock()
}

func (c *cache) forget(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	e, ok := c.entries[id]
	if !ok {
		return
	}
	delete(c.entries, id)
	ids := slices.DeleteFunc(c.byUser[e.s.UserID], func(x string) bool { return x == id })
	if len(ids) == 0 {
		delete(c.byUser, e.s.UserID)
	} else {
		c.byUser[e.s.UserID] = ids
	}
}

// forgetUser drops every cached session of a user.
func (c *cache) forgetUser(userID string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	for _, id := range c.byUser[userID] {
		delete(c.entries, id)
	}
	delete(c.byUser, userID)
}

// forgetAll empties the cache of sessions (verified cookies stay: a cookie
// names a session, it does not vouch for it).
func (c *cache) forgetAll() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	clear(c.entries)
	clear(c.byUser)
}

// endedSessions remembers the ids of sessions that have ended (the store
// no longer has them, or this gateway deleted them): a session never comes
// back, so a cookie of one needs no store read after the first. It is kept
// whether or not sessions are cached, and bounded like the cache: past
// maxCached ids it starts over.
type endedSessions struct {
	mu  sync.RWMutex
	ids map[string]struct{}
}

func newEndedSessions() *endedSessions {
	return &endedSessions{ids: map[string]struct{}{}}
}

func (e *endedSessions) has(id string) bool {
	e.mu.RLock()
	_, ok := e.ids[id]
	e.mu.RUnlock()
	return ok
}

func (e *endedSessions) add(id string) {
	e.mu.Lock()
	if len(e.ids) >= maxCached {
		clear(e.ids)
	}
	e.ids[id] = struct{}{}
	e.mu.Unlock()
}
