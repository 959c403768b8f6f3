package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// accountsCache keeps each user's linked accounts for the routes that
// require or forward a provider, so those requests need no store read. A
// change made through this gateway (link, unlink, refresh, reauthorization)
// drops the user's entry at once; one made by another gateway sharing the
// store is seen within the TTL, as for sessions, or at once when that
// gateway's change is heard (ForgetAccounts, ForgetAllAccounts). A nil cache
// caches nothing.
type accountsCache struct {
	ttl     time.Duration
	mu      sync.RWMutex
	entries map[string]cachedAccounts
	// gen counts forgets: accounts read before one are not cached after it.
	gen atomic.Uint64
}

type cachedAccounts struct {
	accounts []*store.ExternalAccount
	at       time.Time
}

func newAccountsCache(ttl time.Duration) *accountsCache {
	if ttl <= 0 {
		return nil
	}
	return &accountsCache{ttl: ttl, entries: map[string]cachedAccounts{}}
}

// accountsOf returns the user's accounts, from the cache when fresh.
func (g *Gateway) accountsOf(ctx context.Context, userID string) ([]*store.ExternalAccount, error) {
	c := g.accounts
	if c != nil {
		c.mu.RLock()
		e, ok := c.entries[userID]
		c.mu.RUnlock()
		if ok && time.Since(e.at) < c.ttl {
			return e.accounts, nil
		}
	}
	var gen uint64
	if c != nil {
		gen = c.gen.Load()
	}
	accounts, err := g.Store.ExternalAccounts(ctx, userID)
	if err != nil || c == nil {
		return accounts, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return accounts, nil
	}
	if len(c.entries) >= 100_000 {
		clear(c.entries)
	}
	c.entries[userID] = cachedAccounts{accounts: accounts, at: time.Now()}
	return accounts, nil
}

// ForgetAccounts drops a user's cached accounts after a change.
func (g *Gateway) ForgetAccounts(userID string) {
	if c := g.accounts; c != nil {
		c.mu.Lock()
		c.gen.Add(1)
		delete(c.entries, userID)
		c.mu.Unlock()
	}
}

// ForgetAllAccounts empties the cache: call it when changes made elsewhere
// may have gone unheard.
func (g *Gateway) ForgetAllAccounts() {
	if c := g.accounts; c != nil {
		c.mu.Lock()
		c.gen.Add(1)
		clear(c.entries)
		c.mu.Unlock()
	}
}
