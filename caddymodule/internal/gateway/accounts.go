package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/flow"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// accountsCache keeps each user's linked accounts for the routes that
// require or forward a provider, and the user with them for the routes
// that admit by address, so those requests need no store read. A
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
	user     *store.User // nil until a reader needed it (linkedOf)
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
	e, err := g.linked(ctx, userID, false)
	return e.accounts, err
}

// linkedOf returns the user and its accounts, from the cache when fresh.
func (g *Gateway) linkedOf(ctx context.Context, userID string) (*store.User, []*store.ExternalAccount, error) {
	e, err := g.linked(ctx, userID, true)
	return e.user, e.accounts, err
}

// linked returns the cache entry of the user's accounts, and of the user
// when withUser, reading the store for what is missing or stale.
func (g *Gateway) linked(ctx context.Context, userID string, withUser bool) (cachedAccounts, error) {
	c := g.accounts
	if c != nil {
		c.mu.RLock()
		e, ok := c.entries[userID]
		c.mu.RUnlock()
		if ok && time.Since(e.at) < c.ttl && (e.user != nil || !withUser) {
			return e, nil
		}
	}
	var gen uint64
	if c != nil {
		gen = c.gen.Load()
	}
	var e cachedAccounts
	var err error
	if withUser {
		if e.user, err = g.Store.User(ctx, userID); err != nil {
			return e, err
		}
	}
	if e.accounts, err = g.Store.ExternalAccounts(ctx, userID); err != nil || c == nil {
		return e, err
	}
	e.at = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen {
		return e, nil
	}
	if len(c.entries) >= 100_000 {
		clear(c.entries)
	}
	c.entries[userID] = e
	return e, nil
}

// forgetSignedIn drops what is cached of the users a sign-in changed: its
// own, and those it took an address from.
func (g *Gateway) forgetSignedIn(out *flow.Outcome) {
	g.ForgetUser(out.User.ID)
	for _, id := range out.Relieved {
		g.ForgetUser(id)
	}
}

// ForgetUser drops what is cached of a user after a change: its linked
// accounts and its sessions (a change of its addresses rewrites them).
func (g *Gateway) ForgetUser(userID string) {
	g.ForgetAccounts(userID)
	g.Sessions.ForgetUser(userID)
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
