package caddymodule_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
	"github.com/socialgate/socialgate/caddymodule/internal/testop"
	"github.com/socialgate/socialgate/internal/testkit"
)

// TestPostgres_RevocationReachesEveryGatewayAtOnce runs two gateway
// processes on one PostgreSQL database with an hour of session_cache: a
// session revoked, signed out, deleted, disconnected from the account it
// signed in through, or logged out by the provider (back-channel) on
// gateway A is refused by gateway B on the very next
// request, also after B's listener lost its connection and made a new one.
func TestPostgres_RevocationReachesEveryGatewayAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary; skipped with -short")
	}
	dsn := testkit.OwnPostgres(t)
	op := startOP(t, testop.Options{})
	up := newUpstream(t)
	config := func(port int) string { return clusterConfig(dsn, op, up, port, "session_cache 1h", "") }
	portA, portB := testkit.FreePort(t), testkit.FreePort(t)
	a := startProcess(t, config(portA), portA)
	b := startProcess(t, config(portB), portB)
	onA, onB := &env{t: t, Base: a.Base}, &env{t: t, Base: b.Base}

	// signIn signs a browser in on A and has B cache its session; it
	// returns the browser, its session cookie and the session's user and id.
	signIn := func() (*browser, string, map[string]any) {
		t.Helper()
		br, status := signInWith(t, onA, "corp")
		if status != http.StatusOK {
			t.Fatalf("sign-in on A: status %d", status)
		}
		me := br.me(onB) // read, and cached, by B
		return br, br.cookie(a.Base, "socialgate_session"), me
	}
	// refusedOnB makes the very next request on B with the cookie.
	refusedOnB := func(cookie, what string) {
		t.Helper()
		header := http.Header{"Cookie": {"socialgate_session=" + cookie}}
		if status, _ := apiGet(t, http.DefaultClient, b.Base+"/inbox", header); status != http.StatusUnauthorized {
			t.Errorf("%s on A: B's next request got %d, want 401", what, status)
		}
	}
	revokeOnA := func(me map[string]any) {
		t.Helper()
		if status, _, body := apiCall(t, onA, http.MethodPost, "/sessions/"+me["session_id"].(string)+"/revoke"); status != http.StatusOK {
			t.Fatalf("revoking on A: status %d %v", status, body)
		}
	}

	_, cookie, me := signIn()
	revokeOnA(me)
	refusedOnB(cookie, "a revocation")

	br, cookie, _ := signIn()
	_, page := br.get(a.Base + "/_auth/sign-out")
	csrf := html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))
	if resp, _ := br.post(a.Base+"/_auth/sign-out", url.Values{"csrf_token": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out on A: %d", resp.StatusCode)
	}
	refusedOnB(cookie, "a sign-out")

	_, cookie, me = signIn()
	if status, _, body := apiCall(t, onA, http.MethodDelete, "/users/"+me["id"].(string)); status != http.StatusOK {
		t.Fatalf("deleting the user on A: status %d %v", status, body)
	}
	refusedOnB(cookie, "deleting the user")

	_, cookie, me = signIn()
	if status, _, body := apiCall(t, onA, http.MethodDelete, "/users/"+me["id"].(string)+"/external_accounts/"+accountID(me, "oauth_custom_corp")); status != http.StatusOK {
		t.Fatalf("disconnecting the account on A: status %d %v", status, body)
	}
	refusedOnB(cookie, "disconnecting the account it signed in through")

	_, cookie, _ = signIn()
	if status, _, body := backChannel(t, onA, "corp", logoutForm(op.LogoutToken("user-1", "", nil))); status != http.StatusOK {
		t.Fatalf("back-channel logout on A: status %d %v", status, body)
	}
	refusedOnB(cookie, "a back-channel logout")

	// B's listener loses its connection: B, once listening again, still
	// hears the next revocation at once.
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	before := listeners(t, conn, false)
	if len(before) != 2 {
		t.Fatalf("%d listeners on the database, want one per gateway", len(before))
	}
	if _, err := conn.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1 || '%'`, postgres.ListenerName); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		now := listeners(t, conn, true)
		if len(now) == 2 && !slices.ContainsFunc(now, func(pid uint32) bool { return slices.Contains(before, pid) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listeners did not come back within 15s: %v, were %v", now, before)
		}
	}
	_, cookie, me = signIn()
	revokeOnA(me)
	refusedOnB(cookie, "a revocation after B's listener reconnected")
}

// listeners returns the backend pids of the gateways' listeners; with
// fresh, only of those whose last statement is LISTEN: they listen and
// have heard nothing yet.
func listeners(t *testing.T, conn *pgx.Conn, fresh bool) []uint32 {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT pid FROM pg_stat_activity
		WHERE application_name LIKE $1 || '%' AND (NOT $2 OR query LIKE 'LISTEN %')`, postgres.ListenerName, fresh)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}
