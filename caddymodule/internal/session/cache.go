package session

import (
	"sync"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// maxCached bounds the cache; past it, the cache starts over.
const maxCached = 200_000

// cache keeps recently read sessions. A nil *cache caches nothing.
type cache struct {
	ttl     time.Duration
	mu      sync.RWMutex
	entries map[string]cached // by session id
	tokens  map[string]string // verified cookie value or token → session id
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

func (c *cache) put(s *store.Session, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if len(c.entries) >= maxCached {
		clear(c.entries)
	}
	c.entries[s.ID] = cached{s: s, at: now}
	c.mu.Unlock()
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
	delete(c.entries, id)
	c.mu.Unlock()
}
