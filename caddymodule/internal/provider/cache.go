package provider

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cachePolicy bounds how long a document fetched from a provider (its JWKS,
// its discovery document) is used before it is fetched again. The provider's
// own caching headers decide within these bounds (docs/security.md, "ID
// tokens": cached JWKS expire, removed keys stop verifying).
type cachePolicy struct {
	// fallback is the lifetime of a response that says nothing about
	// caching (no Cache-Control max-age, no Expires).
	fallback time.Duration
	// min and max bound the lifetime the headers give; no-store, no-cache,
	// max-age=0 or an Expires in the past give min.
	min, max time.Duration
	// maxStale is how long past its lifetime a document is still used
	// while every refetch fails; after that the provider counts as down.
	maxStale time.Duration
	// early is how often a caller may ask for a refetch before the
	// lifetime ends (an ID token naming a key the set does not have): at
	// most once per early, unless the last one found what it was for, so
	// made-up key ids cost one call per interval.
	early time.Duration
}

// After a failed fetch the next one waits retryFirst, then twice as long
// after each further failure, up to retryMax: a provider that is down costs
// one call per interval, one that is back is noticed soon.
const (
	retryFirst = time.Second
	retryMax   = time.Minute
)

// cached is a document fetched from a provider, shared by every caller.
// Concurrent callers share one fetch; a failed fetch keeps the last good
// document in use (up to policy.maxStale past its lifetime) and is retried
// with backoff.
type cached[T any] struct {
	fetch  func(context.Context) (T, http.Header, error)
	policy cachePolicy
	now    func() time.Time

	mu       sync.Mutex
	val      T             // the last document fetched successfully
	expires  time.Time     // end of val's lifetime; zero before the first success
	gen      uint64        // counts finished fetches, good or bad
	err      error         // the last fetch's error; nil after a success
	failures int           // failed fetches since the last success
	retryAt  time.Time     // after a failure, no fetch before this
	earlyAt  time.Time     // when the last early fetch started
	startAt  time.Time     // when the last fetch started
	fetching chan struct{} // closed when the fetch under way ends
}

func newCached[T any](policy cachePolicy, fetch func(context.Context) (T, http.Header, error)) *cached[T] {
	return &cached[T]{fetch: fetch, policy: policy, now: time.Now}
}

// generation is the number of fetches that ended so far.
func (c *cached[T]) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// peek returns the document without fetching it.
func (c *cached[T]) peek() T {
	c.mu.Lock()
	defer c.mu.Unlock()
	val, _, _ := c.result(c.now())
	return val
}

// get returns the document, the number of fetches ended so far and the last
// fetch's error (nil after a success). It first fetches the document when it
// is due: when its lifetime ended (or it was never fetched), or, with early,
// when no fetch ended since the generation seen and the last early fetch is
// policy.early old. After a failure nothing is due before the backoff ends.
// A caller that finds a fetch under way waits for it (or for ctx). The
// document is the zero T when there is none, or when it is more than
// policy.maxStale past its lifetime.
func (c *cached[T]) get(ctx context.Context, seen uint64, early bool) (T, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.fetching == nil {
			now := c.now()
			due := !now.Before(c.expires)
			if early {
				due = c.gen == seen && !now.Before(c.earlyAt.Add(c.policy.early))
			}
			if !due || (c.err != nil && now.Before(c.retryAt)) {
				return c.result(now)
			}
			if early {
				c.earlyAt = now
			}
			c.startAt = now
			done := make(chan struct{})
			c.fetching = done
			c.mu.Unlock()
			// A caller that gives up must not turn the shared fetch into a
			// failure for everyone: the fetch has its own deadline.
			val, header, err := c.fetch(context.WithoutCancel(ctx))
			c.mu.Lock()
			c.record(val, header, err)
			c.fetching = nil
			close(done)
			continue
		}
		wait := c.fetching
		c.mu.Unlock()
		select {
		case <-wait:
			c.mu.Lock()
		case <-ctx.Done():
			c.mu.Lock()
			val, gen, _ := c.result(c.now())
			return val, gen, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
		}
	}
}

// fetchedWithin reports whether a fetch started less than d ago.
func (c *cached[T]) fetchedWithin(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.startAt.IsZero() && c.now().Sub(c.startAt) < d
}

// earlyFound tells that an early fetch found what it was for (a key the
// provider had just published): such fetches do not count against
// policy.early, which limits the fetches for what is not there.
func (c *cached[T]) earlyFound() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.earlyAt = time.Time{}
}

// record keeps the outcome of a fetch; c.mu is held.
func (c *cached[T]) record(val T, header http.Header, err error) {
	now := c.now()
	c.gen++
	if err != nil {
		c.err = err
		c.failures++
		c.retryAt = now.Add(min(retryFirst<<min(c.failures-1, 10), retryMax))
		return
	}
	c.val, c.err, c.failures = val, nil, 0
	c.expires = now.Add(c.policy.lifetime(header, now))
}

// errNoDocument is the error of a document that was never fetched or is
// too stale to use, when no fetch failed (a caller gave up waiting).
var errNoDocument = fmt.Errorf("%w: nothing fetched yet", ErrUnavailable)

// result is what get returns: the document unless there is none or it is
// too stale to use, with an error whenever it is not there; c.mu is held.
func (c *cached[T]) result(now time.Time) (T, uint64, error) {
	if c.expires.IsZero() || now.After(c.expires.Add(c.policy.maxStale)) {
		var zero T
		return zero, c.gen, cmp.Or(c.err, errNoDocument)
	}
	return c.val, c.gen, c.err
}

// lifetime is how long a response may be used, from its headers (RFC 9111):
// Cache-Control max-age less Age, else Expires less Date (or now); no-store
// and no-cache ask for the shortest. Without any of them it is fallback. The
// result lies within [min, max].
func (p cachePolicy) lifetime(h http.Header, now time.Time) time.Duration {
	d, ok := maxAge(h.Values("Cache-Control"))
	if !ok {
		d, ok = fromExpires(h, now)
	}
	if !ok {
		d = p.fallback
	} else if age, err := strconv.ParseInt(h.Get("Age"), 10, 64); err == nil && age > 0 {
		d -= time.Duration(min(age, 1<<32)) * time.Second // already this old at a cache on the way
	}
	return min(max(d, p.min), p.max)
}

// maxAge reads the max-age of Cache-Control; no-store and no-cache count as
// max-age=0.
func maxAge(values []string) (time.Duration, bool) {
	age, found := time.Duration(0), false
	for _, v := range values {
		for _, directive := range strings.Split(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				if n, err := strconv.ParseInt(strings.Trim(arg, `"`), 10, 64); err == nil && n >= 0 && !found {
					age, found = time.Duration(min(n, 1<<32))*time.Second, true
				}
			}
		}
	}
	return age, found
}

// fromExpires is the lifetime Expires gives, counted from Date (the
// server's clock) or else from now; an Expires that does not parse has
// already passed (RFC 9111 5.3).
func fromExpires(h http.Header, now time.Time) (time.Duration, bool) {
	v := h.Get("Expires")
	if v == "" {
		return 0, false
	}
	exp, err := http.ParseTime(v)
	if err != nil {
		return 0, true
	}
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		now = date
	}
	return exp.Sub(now), true
}
