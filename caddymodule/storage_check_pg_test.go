package caddymodule_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/internal/testkit"
)

// TestStorageCheck_PostgresThroughTheAdminAPI runs storage-check against a
// gateway serving a PostgreSQL store, through its admin API: the store's
// own invariant check runs (the route used to answer 501, so a soak or an
// operator could not check a PostgreSQL store at all), passes on a healthy
// store and reports a violation made behind the gateway's back.
func TestStorageCheck_PostgresThroughTheAdminAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway binary on PostgreSQL; skipped with -short")
	}
	dsn := testkit.OwnPostgres(t)
	g := newServingGateway(t)
	g.start(pgStorage(dsn, pgSecret))
	newBrowser(t).signInDev(g.site, "/", ada)
	g.bin.run(t, "storage-check", "--admin", g.admin).want(t, 0, "store is consistent: 1 user")

	// Ada's verified address loses its index row: the check must say so.
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DELETE FROM user_emails"); err != nil {
		t.Fatal(err)
	}
	r := g.bin.run(t, "storage-check", "--admin", g.admin)
	r.wantError(t, 1, "invariant violations")
	if !strings.Contains(r.stdout, "ada@example.com") {
		t.Errorf("storage-check does not name the address without its row:\n%s", r.stdout)
	}
}
