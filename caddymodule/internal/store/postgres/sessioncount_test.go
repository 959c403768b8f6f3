package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/storetest"
)

// A database migrated to the session counts has its live sessions counted
// by the migration; the cleanup deletes the counts of past hours along
// with the expired sessions.
func TestSessionCounts_MigratedAndPruned(t *testing.T) {
	dsn := freshDSN(t)
	clk := storetest.NewClock()
	ctx := context.Background()
	s := openDSN(t, dsn, Options{Now: clk.Now})
	res, err := s.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "p", Issuer: "https://i.example", Subject: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{time.Hour, 48 * time.Hour, 48 * time.Hour} {
		if err := s.CreateSession(ctx, &store.Session{UserID: res.User.ID, ExpiresAt: clk.Now().Add(ttl)}); err != nil {
			t.Fatal(err)
		}
	}
	// The database as it was before migration 0006 (and those after it).
	exec(t, s, `DROP TABLE session_counts; DROP TRIGGER sessions_counted ON sessions;
		DROP FUNCTION sessions_counted(); DROP FUNCTION count_session(bigint, bytea, bigint);
		DROP TABLE user_audit; DELETE FROM schema_migrations WHERE version >= 6`)
	s.Close()
	s = openDSN(t, dsn, Options{Now: clk.Now, CleanupInterval: 10 * time.Millisecond})
	if n, err := s.ActiveSessions(ctx); n != 3 || err != nil {
		t.Errorf("after the migration: ActiveSessions = %d, %v; want 3", n, err)
	}
	clk.Advance(3 * time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var sessions, past int
		err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM session_counts WHERE hour < $1)`,
			store.ExpiryHour(clk.Now())).Scan(&sessions, &past)
		if err != nil {
			t.Fatal(err)
		}
		if sessions == 2 && past == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after expiry: %d sessions and %d counts of past hours, want 2 and 0", sessions, past)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n, err := s.ActiveSessions(ctx); n != 2 || err != nil {
		t.Errorf("three hours on: ActiveSessions = %d, %v; want 2", n, err)
	}
}
