package ratelimit

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestAllow_BurstThenRefill(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(Options{Rules: map[string]Rule{"start": {Events: 3, Window: time.Minute}}, Now: func() time.Time { return now }})
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("start", "1.2.3.4"); !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	ok, wait := l.Allow("start", "1.2.3.4")
	if ok || wait < time.Second || wait > 20*time.Second {
		t.Fatalf("4th request: ok=%v wait=%v, want refused with about 20s", ok, wait)
	}
	if ok, _ := l.Allow("start", "5.6.7.8"); !ok {
		t.Error("another client was limited")
	}
	if ok, _ := l.Allow("api", "1.2.3.4"); !ok {
		t.Error("a class without a rule was limited")
	}
	now = now.Add(20 * time.Second)
	if ok, _ := l.Allow("start", "1.2.3.4"); !ok {
		t.Error("no token after a refill period")
	}
}

// The wait a refused client is told is the time until its bucket holds a
// token again, rounded up to whole seconds and at least one: waiting it
// out is always enough.
func TestAllow_WaitIsTheTimeUntilATokenRoundedUp(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rule   Rule
		before time.Duration // between the burst and the refused request
		want   time.Duration
	}{
		{"a whole number of seconds", Rule{Events: 3, Window: time.Minute}, 0, 20 * time.Second},
		{"a fraction below one half", Rule{Events: 3, Window: time.Minute}, 5800 * time.Millisecond, 15 * time.Second},
		{"a fraction above one half", Rule{Events: 3, Window: time.Minute}, 5200 * time.Millisecond, 15 * time.Second},
		{"under a second", Rule{Events: 1, Window: 1400 * time.Millisecond}, 900 * time.Millisecond, time.Second},
		{"just over a second", Rule{Events: 1, Window: 1400 * time.Millisecond}, 100 * time.Millisecond, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1000, 0)
			l := New(Options{Rules: map[string]Rule{"c": tc.rule}, Now: func() time.Time { return now }})
			for range tc.rule.Events {
				l.Allow("c", "192.0.2.1")
			}
			now = now.Add(tc.before)
			ok, wait := l.Allow("c", "192.0.2.1")
			if ok || wait != tc.want {
				t.Fatalf("ok=%v wait=%v, want refused for %v", ok, wait, tc.want)
			}
			now = now.Add(wait)
			if ok, wait := l.Allow("c", "192.0.2.1"); !ok {
				t.Errorf("refused again (wait %v) after waiting what it was told", wait)
			}
		})
	}
}

func TestClient_AggregatesIPv6ByPrefixAndUnmapsIPv4(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		prefix int
		want   string // "" for no IP
	}{
		{"192.0.2.1", 64, "192.0.2.1/32"},
		{"192.0.2.1", 48, "192.0.2.1/32"},
		{"::ffff:192.0.2.1", 64, "192.0.2.1/32"},
		{"::ffff:c000:201", 64, "192.0.2.1/32"},
		{"2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", 64, "2001:db8:1:2::/64"},
		{"2001:DB8:1:2::1", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", 56, "2001:db8:1::/56"},
		{"2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6/128"},
		{"2001:db8:1:2:3:4:5:6", 200, "2001:db8:1:2:3:4:5:6/128"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"fe80::1%eth1", 64, "fe80::/64"},
		{"::1", 64, "::/64"},
		{"::", 64, "::/64"},
		{"127.0.0.1", 64, "127.0.0.1/32"},
		{"", 64, ""},
		{"@", 64, ""},
		{"192.0.2.1:443", 64, ""},
		{"[2001:db8::1]", 64, ""},
		{"not an address", 64, ""},
	} {
		got, ok := Client(tc.addr, tc.prefix)
		if tc.want == "" {
			if ok {
				t.Errorf("Client(%q, %d) = %s, want no IP", tc.addr, tc.prefix, got)
			}
			continue
		}
		if !ok || got != netip.MustParsePrefix(tc.want) {
			t.Errorf("Client(%q, %d) = %s, %v, want %s", tc.addr, tc.prefix, got, ok, tc.want)
		}
	}
}

// The measurements, as a table: one IPv6 host with a /64 to itself
// is one client however many addresses it uses; its neighbours in other
// /64s are not charged for it; IPv4 stays per address.
func TestAllow_OneNetworkIsOneClient(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name    string
		prefix  int
		clients func(i int) string
		events  int
		calls   int
		refused int
	}{
		{"80 starts from one IPv6 address", 0, func(int) string { return "2001:db8:1:2::1" }, 30, 80, 50},
		{"80 starts from 80 addresses of one /64", 0, func(i int) string { return fmt.Sprintf("2001:db8:1:2:%x::1", i) }, 30, 80, 50},
		{"700 API calls from 700 addresses of one /64", 0, func(i int) string { return fmt.Sprintf("2001:db8:1:2::%x", i) }, 600, 700, 100},
		{"80 starts from 80 /64s", 0, func(i int) string { return fmt.Sprintf("2001:db8:1:%x::1", i) }, 30, 80, 0},
		{"80 starts from 80 /64s of one /56, prefix 56", 56, func(i int) string { return fmt.Sprintf("2001:db8:1:%x::1", i) }, 30, 80, 50},
		{"80 starts from 80 addresses, prefix 128", 128, func(i int) string { return fmt.Sprintf("2001:db8:1:2::%x", i) }, 30, 80, 0},
		{"80 starts from 80 IPv4 addresses of one /24", 0, func(i int) string { return fmt.Sprintf("198.51.100.%d", i) }, 30, 80, 0},
		{"80 starts from one IPv4 address, mapped or not", 0, func(i int) string {
			return []string{"198.51.100.7", "::ffff:198.51.100.7"}[i%2]
		}, 30, 80, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New(Options{Rules: map[string]Rule{"c": {Events: tc.events, Window: time.Minute}}, IPv6Prefix: tc.prefix,
				Now: func() time.Time { return now }})
			refused := 0
			for i := 0; i < tc.calls; i++ {
				if ok, _ := l.Allow("c", tc.clients(i)); !ok {
					refused++
				}
			}
			if refused != tc.refused {
				t.Errorf("%d of %d refused, want %d", refused, tc.calls, tc.refused)
			}
		})
	}
}

// A flood of new clients past MaxClients drops the least recently used
// buckets one at a time: a client in use keeps its limit, where the old
// limiter forgot everyone at once.
func TestAllow_AFloodNeverResetsAClientInUse(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(Options{Rules: map[string]Rule{"c": {Events: 3, Window: time.Minute}}, MaxClients: 100,
		Now: func() time.Time { return now }})
	const attacker = "2001:db8:bad::1"
	for i := 0; i < 3; i++ {
		l.Allow("c", attacker)
	}
	for i := 0; i < 10_000; i++ {
		now = now.Add(time.Millisecond)
		// Every address of another /64: each is a new client.
		l.Allow("c", fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff))
		if i%50 == 0 {
			if ok, _ := l.Allow("c", attacker); ok {
				t.Fatalf("after %d new clients, the limited client got a token back", i+1)
			}
		}
	}
	if n := len(l.buckets); n > 100 {
		t.Errorf("%d buckets held, want at most 100", n)
	}
	// The least recently used went first: the newest clients are still held.
	if _, ok := l.buckets[key{class: "c", net: netip.MustParsePrefix("2001:db8:0:270f::/64")}]; !ok {
		t.Error("the newest client was dropped")
	}
	if _, ok := l.buckets[key{class: "c", net: netip.MustParsePrefix("2001:db8::/64")}]; ok {
		t.Error("the oldest client is still held")
	}
}

// Buckets idle for their whole window are full again: they go, oldest
// first, as new requests come.
func TestAllow_DropsIdleClients(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(Options{Rules: map[string]Rule{"a": {Events: 1, Window: time.Minute}}, Now: func() time.Time { return now }})
	for i := 0; i < 100; i++ {
		l.Allow("a", fmt.Sprintf("192.0.2.%d", i))
	}
	now = now.Add(2 * time.Minute)
	for i := 0; i < 60; i++ {
		l.Allow("a", "198.51.100.1")
	}
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d buckets after the idle ones expired, want 1", n)
	}
	// Forgetting a full bucket changes nothing: the client still has its burst.
	if ok, _ := l.Allow("a", "192.0.2.1"); !ok {
		t.Error("an expired client was refused")
	}
}

func TestAllow_ClientsThatAreNoIPAreLimitedByTheirText(t *testing.T) {
	l := New(Options{Rules: map[string]Rule{"a": {Events: 1, Window: time.Minute}}})
	if ok, _ := l.Allow("a", "@"); !ok {
		t.Fatal("first request refused")
	}
	if ok, _ := l.Allow("a", "@"); ok {
		t.Error("second request from the same peer allowed")
	}
	if ok, _ := l.Allow("a", ""); !ok {
		t.Error("another peer was charged")
	}
}
