package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
	"github.com/socialgate/socialgate/internal/testkit"
)

// A gateway process is killed (SIGKILL) while its refresh of an expired
// token waits for the account's row, which another writer holds. The
// provider rotates refresh tokens strictly (no reuse grace). After a restart
// the account must still refresh: the gateway takes the row before it calls
// the provider, so no rotation can happen while it waits. (It used to call
// the provider first and then wait to store the rotated refresh token: the
// kill lost it, and the account needed reauthorization.)
//
// It lives here rather than in test/crash because it needs the test
// provider, which is internal to caddymodule.
func TestTokens_KilledWhileWaitingForTheAccountLosesNoRotatedToken(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary; skipped with -short")
	}
	dsn := testkit.OwnPostgres(t)
	op := startOP(t, testop.Options{AccessTokenLifetime: 3 * time.Second, IssueRefreshToken: true})
	up := newUpstream(t)
	port := testkit.FreePort(t)
	config := fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	socialgate {
		storage postgres {
			dsn "%s"
			secret "a-shared-secret-of-the-cluster-0123456789"
		}
		token_refresh_skew 1s
		provider oidc corp {
			issuer %s
			client_id test-client
			client_secret test-secret
		}
	}
}
http://127.0.0.1:%d {
	socialgate {
		forward_token corp
	}
	reverse_proxy %s
}
`, dsn, op.URL(), port, up.Addr())
	gw := startProcess(t, config, port)
	br := newBrowser(t)
	if resp, body := signInCorp(br, &env{t: t, Base: gw.Base}); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	time.Sleep(3 * time.Second) // the access token expires

	// Another writer holds the account's row, for as long as it likes.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT 1 FROM external_accounts FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	calls := op.Calls("token")
	go func() { // answered by the kill
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gw.Base+"/before-the-kill", nil)
		req.Header.Set("Accept", "application/json")
		if resp, err := br.c.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	for waiting := 0; waiting == 0; {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted`).Scan(&waiting); err != nil {
			t.Fatalf("waiting for the gateway to wait for the row: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	calledBeforeTheKill := op.Calls("token") - calls
	gw.cmd.Process.Kill()
	gw.cmd.Wait()
	tx.Rollback(ctx)

	gw = startProcess(t, config, port)
	status, body := apiGet(t, br.c, gw.Base+"/after-the-restart", nil)
	t.Logf("%d call(s) to the token endpoint before the kill; after the restart: %d", calledBeforeTheKill, status)
	if status != http.StatusOK {
		t.Fatalf("after the kill and a restart the route answers %d %v, want 200: the rotated refresh token was lost", status, body)
	}
	if !userinfoWorks(t, op.UserinfoURL(), up.Last(t).Get("X-Auth-Token-Corp")) {
		t.Error("the token after the restart does not work at the provider")
	}
}
