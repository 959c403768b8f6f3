package ratelimit

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkAllow is one call per request on a limited endpoint:
//
//	go test ./caddymodule/internal/ratelimit -run '^$' -bench . -benchmem
func BenchmarkAllow(b *testing.B) {
	rules := map[string]Rule{"start": {Events: 30, Window: time.Minute}}
	b.Run("one client", func(b *testing.B) {
		l := New(Options{Rules: rules})
		b.ReportAllocs()
		for b.Loop() {
			l.Allow("start", "2001:db8::1")
		}
	})
	b.Run("many clients", func(b *testing.B) {
		l := New(Options{Rules: rules})
		clients := make([]string, 1<<16)
		for i := range clients {
			clients[i] = "2001:db8:" + strconv.FormatInt(int64(i), 16) + "::1"
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow("start", clients[i%len(clients)])
			i++
		}
	})
}

// BenchmarkAllow_Flood is a flood of distinct clients, twice what the table
// holds: every call adds a client and, once full, drops another.
func BenchmarkAllow_Flood(b *testing.B) {
	rules := map[string]Rule{"start": {Events: 30, Window: time.Minute}}
	clients := make([]string, 400_000)
	for i := range clients {
		clients[i] = "10." + strconv.Itoa(i>>16) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}
	l := New(Options{Rules: rules})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow("start", clients[i%len(clients)])
		i++
	}
}
