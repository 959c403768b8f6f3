package badger

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// A store written before the session counters has its live sessions
// counted at Open; the counters of past hours go with the upkeep.
func TestSessionCounts_BuiltAtOpenAndPruned(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	clk := newClock()
	b := openTest(t, Options{Dir: dir, Now: clk.Now})
	h := newHealthyStore(t, b) // one session, an hour long
	for range 4 {
		if err := b.CreateSession(ctx, &store.Session{UserID: h.sam.User.ID, ExpiresAt: clk.Now().Add(48 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	err := b.db.Update(func(txn *badger.Txn) error {
		keys, err := collectKeys(txn, prefixSessionCount, 0)
		for _, k := range keys {
			if err == nil {
				err = txn.Delete([]byte(prefixSessionCount + k))
			}
		}
		if err != nil {
			return err
		}
		return txn.Delete([]byte(keySessionsCounted))
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := b.ActiveSessions(ctx); n != 0 {
		t.Fatalf("without counters: %d active sessions", n)
	}
	b.Close()
	b = openTest(t, Options{Dir: dir, Now: clk.Now})
	if n, err := b.ActiveSessions(ctx); n != 5 || err != nil {
		t.Errorf("ActiveSessions = %d, %v; want 5", n, err)
	}
	if problems, err := b.Check(ctx); err != nil || len(problems) > 0 {
		t.Errorf("Check = %q, %v", problems, err)
	}
	clk.Advance(3 * time.Hour) // the one-hour session has expired
	if err := b.pruneSessionCounts(ctx); err != nil {
		t.Fatal(err)
	}
	err = b.db.View(func(txn *badger.Txn) error {
		keys, err := collectKeys(txn, prefixSessionCount, 0)
		hour := string(sessionCountKey(store.ExpiryHour(clk.Now().Add(45*time.Hour)), 0))[len(prefixSessionCount):][:12]
		for _, k := range keys {
			if !strings.HasPrefix(k, hour) {
				t.Errorf("after pruning: counter %q, want only those of hour %s", k, hour)
			}
		}
		if len(keys) == 0 {
			t.Error("after pruning: no counter")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := b.ActiveSessions(ctx); n != 4 || err != nil {
		t.Errorf("ActiveSessions = %d, %v; want 4", n, err)
	}
}
