// Package ratelimit limits how often one client may call an endpoint: a
// token bucket per (class, client), refilled continuously. A client is an
// IPv4 address, or an IPv6 network (a /64 by default): one host is handed a
// whole /64, so per address it could take as many buckets as it likes.
// Memory is bounded: a bucket idle long enough to be full again is dropped,
// and past MaxClients buckets the least recently used one makes room, so a
// flood of new clients never resets the limits of those in use.
package ratelimit

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// Rule allows Events requests at once and Events per Window on average.
type Rule struct {
	Events int
	Window time.Duration
}

// Defaults of Options.
const (
	DefaultIPv6Prefix = 64
	DefaultMaxClients = 200_000
)

// Options configure a Limiter.
type Options struct {
	// Rules are the limits by class; a class without a rule, or with zero
	// events, is not limited.
	Rules map[string]Rule
	// IPv6Prefix is how many leading bits of an IPv6 address name one
	// client. Default: DefaultIPv6Prefix (64).
	IPv6Prefix int
	// MaxClients bounds the buckets held, all classes together. Default:
	// DefaultMaxClients.
	MaxClients int
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Limiter applies rules by class. Safe for concurrent use.
type Limiter struct {
	rules      map[string]Rule
	ipv6Prefix int
	maxClients int
	now        func() time.Time

	mu      sync.Mutex
	buckets map[key]*bucket
	// lru is the sentinel of a ring of the buckets, most recently used
	// first: lru.next is the newest, lru.prev the oldest.
	lru bucket
}

// key names a bucket: a class and a client network, or for a client that is
// no IP address (a Unix socket peer) its text.
type key struct {
	class string
	net   netip.Prefix
	raw   string
}

type bucket struct {
	key        key
	tokens     float64
	last       time.Time
	prev, next *bucket
}

// New returns a Limiter.
func New(o Options) *Limiter {
	if o.IPv6Prefix == 0 {
		o.IPv6Prefix = DefaultIPv6Prefix
	}
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxClients
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Limiter{rules: o.Rules, ipv6Prefix: o.IPv6Prefix, maxClients: o.MaxClients, now: o.Now, buckets: map[key]*bucket{}}
	l.lru.next, l.lru.prev = &l.lru, &l.lru
	return l
}

// Client is the network a client address is limited as: an IPv4 address
// (also when written IPv4-mapped, ::ffff:192.0.2.1) as itself, an IPv6
// address as its network of ipv6Prefix bits. ok is false when addr is not
// an IP address.
func Client(addr string, ipv6Prefix int) (network netip.Prefix, ok bool) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap().WithZone("")
	bits := ip.BitLen()
	if ip.Is6() {
		bits = min(ipv6Prefix, bits)
	}
	network, err = ip.Prefix(bits)
	return network, err == nil
}

// Allow takes a token for client (an IP address) in class. When none is
// left it returns false and how long until one is, rounded up to whole
// seconds (at least one), as Retry-After counts: a client that waits that
// long is let through.
func (l *Limiter) Allow(class, client string) (bool, time.Duration) {
	rule, ok := l.rules[class]
	if !ok || rule.Events <= 0 {
		return true, 0
	}
	k := key{class: class}
	if k.net, ok = Client(client, l.ipv6Prefix); !ok {
		k.raw = client
	}
	perSecond := float64(rule.Events) / rule.Window.Seconds()
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.expire(now)
	b := l.buckets[k]
	if b == nil {
		b = l.add(k, float64(rule.Events), now)
	} else {
		b.unlink()
		b.tokens = min(float64(rule.Events), b.tokens+now.Sub(b.last).Seconds()*perSecond)
		b.last = now
	}
	l.lru.push(b)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	seconds := math.Ceil((1 - b.tokens) / perSecond)
	return false, time.Duration(max(seconds, 1)) * time.Second
}

// add makes a bucket for k, full; at MaxClients it reuses the least
// recently used one.
func (l *Limiter) add(k key, tokens float64, now time.Time) *bucket {
	var b *bucket
	if len(l.buckets) >= l.maxClients {
		b = l.lru.prev
		b.unlink()
		delete(l.buckets, b.key)
	} else {
		b = new(bucket)
	}
	*b = bucket{key: k, tokens: tokens, last: now}
	l.buckets[k] = b
	return b
}

// expire drops, oldest first, up to two buckets idle for their full window
// (full again, so forgetting them changes nothing): two per call empties
// the table of a flood that has moved on as fast as it came.
func (l *Limiter) expire(now time.Time) {
	for range 2 {
		b := l.lru.prev
		if b == &l.lru || now.Sub(b.last) < l.rules[b.key.class].Window {
			return
		}
		b.unlink()
		delete(l.buckets, b.key)
	}
}

// push puts b first after the sentinel s.
func (s *bucket) push(b *bucket) {
	b.prev, b.next = s, s.next
	s.next.prev = b
	s.next = b
}

func (b *bucket) unlink() {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}
