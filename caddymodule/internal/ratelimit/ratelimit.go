// Package ratelimit limits how often one client may call an endpoint: a
// token bucket per (class, client), refilled continuously. Memory is bounded:
// buckets idle long enough to be full again are dropped.
package ratelimit

import (
	"sync"
	"time"
)

// Rule allows Burst requests at once and Events per Window on average.
type Rule struct {
	Events int
	Window time.Duration
}

// Limiter applies rules by class. Safe for concurrent use.
type Limiter struct {
	rules map[string]Rule
	now   func() time.Time

	mu      sync.Mutex
	buckets map[key]*bucket
	swept   time.Time
}

type key struct{ class, client string }

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds memory under a flood of distinct clients: past it, the
// limiter forgets everyone (a flood gets at worst one burst each).
const maxBuckets = 200_000

// New returns a Limiter; a class without a rule is not limited.
func New(rules map[string]Rule, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{rules: rules, now: now, buckets: map[key]*bucket{}}
}

// Allow takes a token for client in class. When none is left it returns
// false and how long until one is.
func (l *Limiter) Allow(class, client string) (bool, time.Duration) {
	rule, ok := l.rules[class]
	if !ok || rule.Events <= 0 {
		return true, 0
	}
	perSecond := float64(rule.Events) / rule.Window.Seconds()
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	k := key{class, client}
	b := l.buckets[k]
	if b == nil {
		b = &bucket{tokens: float64(rule.Events), last: now}
		l.buckets[k] = b
	}
	b.tokens = min(float64(rule.Events), b.tokens+now.Sub(b.last).Seconds()*perSecond)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / perSecond * float64(time.Second))
	return false, max(wait, time.Second)
}

// sweep drops buckets that have been idle for a full window (they would be
// full again) once a minute, and everything past maxBuckets.
func (l *Limiter) sweep(now time.Time) {
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
		return
	}
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	for k, b := range l.buckets {
		if now.Sub(b.last) >= l.rules[k.class].Window {
			delete(l.buckets, k)
		}
	}
}
