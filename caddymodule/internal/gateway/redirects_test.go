package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
)

// countingStore counts the reads of the whole redirect URL list.
type countingStore struct {
	store.Store
	lists atomic.Int32
}

func (c *countingStore) RedirectURLs(ctx context.Context, q store.RedirectURLQuery) ([]*store.RedirectURL, int, error) {
	c.lists.Add(1)
	return c.Store.RedirectURLs(ctx, q)
}

func openMemoryStore(tb testing.TB) *badger.Store {
	tb.Helper()
	st, err := badger.Open(badger.Options{InMemory: true, Logger: quietBadger{}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// Every native start checked its redirect URL by reading and parsing every
// allowlisted URL (678 ms with 20,000). The allowlist now stays compiled
// until the store's list changes, and a change applies to the next check.
func TestNativeAllowed_CompilesTheListOncePerChange(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: openMemoryStore(t)}
	gw := newTestGW(t, func(c *Config) { c.Store = st })
	create := func(u string) string {
		t.Helper()
		ru, err := st.CreateRedirectURL(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		return ru.ID
	}
	create("myapp://cb")
	loopback := create("http://127.0.0.1:4000/native-cb")
	steps := []struct {
		name   string
		change func()
		url    string
		want   bool
		lists  int32 // reads of the whole list so far
	}{
		{name: "an allowlisted URL", url: "myapp://cb", want: true, lists: 1},
		{name: "the same again", url: "myapp://cb", want: true, lists: 1},
		{name: "loopback on another port", url: "http://127.0.0.1:51234/native-cb", want: true, lists: 1},
		{name: "a prefix of an allowlisted path", url: "myapp://cbx", want: false, lists: 1},
		{name: "a URL added meanwhile", change: func() { create("other://cb") }, url: "other://cb", want: true, lists: 2},
		{name: "a URL removed meanwhile", change: func() {
			if err := st.DeleteRedirectURL(ctx, loopback); err != nil {
				t.Fatal(err)
			}
		}, url: "http://127.0.0.1:4000/native-cb", want: false, lists: 3},
		{name: "the others still match", url: "myapp://cb", want: true, lists: 3},
	}
	for _, s := range steps {
		if s.change != nil {
			s.change()
		}
		for range 50 {
			if got := gw.nativeAllowed(ctx, s.url); got != s.want {
				t.Fatalf("%s: nativeAllowed(%s) = %v, want %v", s.name, s.url, got, s.want)
			}
		}
		if n := st.lists.Load(); n != s.lists {
			t.Fatalf("%s: the list was read %d times, want %d", s.name, n, s.lists)
		}
	}
}

// A stored URL that is not a valid redirect URL (imported from an older
// gateway) fails the whole check closed, as before, until it is removed.
func TestNativeAllowed_AnInvalidStoredURLFailsClosed(t *testing.T) {
	ctx := context.Background()
	st := openMemoryStore(t)
	gw := newTestGW(t, func(c *Config) { c.Store = st })
	if _, err := st.CreateRedirectURL(ctx, "myapp://cb"); err != nil {
		t.Fatal(err)
	}
	bad, err := st.CreateRedirectURL(ctx, "javascript:alert(1)")
	if err != nil {
		t.Fatal(err)
	}
	if gw.nativeAllowed(ctx, "myapp://cb") {
		t.Fatal("a list with an invalid URL matched")
	}
	if err := st.DeleteRedirectURL(ctx, bad.ID); err != nil {
		t.Fatal(err)
	}
	if !gw.nativeAllowed(ctx, "myapp://cb") {
		t.Fatal("the list still matches nothing after the invalid URL was removed")
	}
}

// BenchmarkNativeAllowed is the redirect URL check of a native sign-in start
// with 20,000 allowlisted URLs of 1.5 KB, on the in-memory store: the check
// itself, and a check right after the list changed (one compile).
//
//	go test ./caddymodule/internal/gateway -run '^$' -bench NativeAllowed -benchmem
func BenchmarkNativeAllowed(b *testing.B) {
	ctx := context.Background()
	st := openMemoryStore(b)
	pad := strings.Repeat("p", 1500)
	for i := range 20000 {
		if _, err := st.CreateRedirectURL(ctx, fmt.Sprintf("app%d://cb/%s", i, pad)); err != nil {
			b.Fatal(err)
		}
	}
	gw := newTestGW(b, func(c *Config) { c.Store = st })
	target := fmt.Sprintf("app%d://cb/%s", 12345, pad)
	b.Run("check", func(b *testing.B) {
		gw.nativeAllowed(ctx, target) // compiled once
		b.ReportAllocs()
		for b.Loop() {
			if !gw.nativeAllowed(ctx, target) {
				b.Fatal("no match")
			}
		}
	})
	b.Run("after a change", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ru, err := st.CreateRedirectURL(ctx, "changed://cb")
			if err != nil {
				b.Fatal(err)
			}
			if !gw.nativeAllowed(ctx, target) {
				b.Fatal("no match")
			}
			b.StopTimer()
			st.DeleteRedirectURL(ctx, ru.ID)
			b.StartTimer()
		}
	})
}
