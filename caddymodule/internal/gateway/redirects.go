package gateway

import (
	"context"
	"fmt"
	"sync"

	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// redirectAllowlist keeps the native redirect allowlist compiled in memory.
// Each check reads only the store's RedirectURLsVersion, and the whole list
// again when it moved: a URL added or removed through any gateway on the
// same store applies from the next check on. A list with an invalid URL
// matches nothing (fail closed) until it changes.
type redirectAllowlist struct {
	mu      sync.Mutex
	loaded  bool
	version int64
	list    *redirect.Allowlist
	err     error // why the list of this version matches nothing
}

// get returns the allowlist of the store's current version. Concurrent
// callers after a change wait for one reload, so none of them matches a URL
// that was removed.
func (c *redirectAllowlist) get(ctx context.Context, st store.Store) (*redirect.Allowlist, error) {
	// The version is read before the list: a change in between makes the
	// list newer than its version, which only costs one more reload.
	v, err := st.RedirectURLsVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading redirect URLs: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded && c.version == v {
		return c.list, c.err
	}
	records, _, err := st.RedirectURLs(ctx, store.RedirectURLQuery{})
	if err != nil {
		return nil, fmt.Errorf("reading redirect URLs: %w", err)
	}
	urls := make([]string, 0, len(records))
	for _, ru := range records {
		urls = append(urls, ru.URL)
	}
	c.list, c.err = redirect.NewAllowlist(urls)
	if c.err != nil {
		c.err = fmt.Errorf("a stored redirect URL is invalid: %w", c.err)
	}
	c.loaded, c.version = true, v
	return c.list, c.err
}
