package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Every connection of the pool dies (the database restarted or a proxy cut
// them): the store reconnects by itself.
func TestOutage_StoreRecoversWhenConnectionsDie(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{})
	ctx := context.Background()
	res, err := s.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "p", Issuer: "https://i.example", Subject: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{UserID: res.User.ID, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	admin := openDSN(t, freshDSN(t), Options{})
	exec(t, admin, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query NOT LIKE '%pg_terminate_backend%'`)
	// A connection that died while idle fails the one call that finds it
	// dead (pgxpool pings only connections idle for over a second); the
	// pool then replaces it.
	for i := range 2 * DefaultMaxConns {
		_, err := s.Session(ctx, sess.ID)
		if err != nil && i >= DefaultMaxConns {
			t.Errorf("read %d after the outage: %v", i, err)
		}
	}
	if _, err := s.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "p", Issuer: "https://i.example", Subject: "a"}}); err != nil {
		t.Errorf("SignIn after the outage: %v", err)
	}
}
