package main

// The row "authenticated pass-through (PostgreSQL store)" runs on a
// private PostgreSQL server (harness.StartPostgres).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/socialgate/socialgate/internal/pgserver"
	"github.com/socialgate/socialgate/internal/testkit"
	"github.com/socialgate/socialgate/perf/internal/harness"
)

// gatewayPG is GATEWAY_PG: the PostgreSQL server, the Caddy process on it
// and a session cookie signed in through it.
type gatewayPG struct {
	pg     *pgserver.Server
	caddy  *harness.Proc
	cookie string
}

func (g *gatewayPG) stop() {
	g.caddy.Stop()
	g.pg.Stop()
}

// startGatewayPG starts a PostgreSQL server, a gateway on it serving s,
// and signs in once through its dev provider.
func startGatewayPG(ctx context.Context, bin, dir, upstream string, adminPort, devPort int, s site, options []string) (*gatewayPG, error) {
	pg, err := harness.StartPostgres(dir)
	if err != nil {
		return nil, err
	}
	var sec [32]byte
	rand.Read(sec[:])
	storage := fmt.Sprintf("postgres {\n\t\t\tdsn %q\n\t\t\tsecret %s\n\t\t}", pg.DSN(), hex.EncodeToString(sec[:]))
	gwDir := filepath.Join(dir, "gateway-pg")
	fmt.Fprintln(os.Stderr, "starting GATEWAY_PG …")
	gw, err := harness.StartCaddy("GATEWAY_PG", bin, gwDir,
		caddyfileStorage(gwDir, storage, adminPort, devPort, upstream, []site{s}, options...), s.url())
	if err != nil {
		pg.Stop()
		return nil, fmt.Errorf("GATEWAY_PG did not start: %s", harness.LastLine(err.Error()))
	}
	g := &gatewayPG{pg: pg, caddy: gw}
	b := testkit.NewBrowser(http.DefaultTransport)
	if err := b.SignInDev(ctx, s.url(), fmt.Sprintf("http://127.0.0.1:%d", devPort), testkit.Ada); err != nil {
		g.stop()
		return nil, fmt.Errorf("signing in through GATEWAY_PG: %v", err)
	}
	if g.cookie, err = b.SessionHeader(s.url()); err != nil {
		g.stop()
		return nil, err
	}
	return g, nil
}
