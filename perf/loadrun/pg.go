package main

// A private PostgreSQL server for the row "authenticated pass-through
// (PostgreSQL store)": initdb into the run's temporary directory and
// postgres on 127.0.0.1, fsync off, as the store's tests do; both start it
// with internal/pgserver.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/socialgate/socialgate/internal/pgserver"
)

// pgServer is the private server: stop ends exactly the process started.
type pgServer struct {
	dsn string
	srv *pgserver.Server
}

// startPostgres runs initdb and postgres under dir/postgres and returns a
// DSN of a fresh database. The error says why when the binaries are
// missing. The server's files, log included, stay in dir (see -keep).
func startPostgres(dir string) (*pgServer, error) {
	if os.Geteuid() == 0 {
		// pgserver runs the server as the postgres user, and the run's
		// directory is private (0700): give that user a way through.
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, err
		}
	}
	// Durability settings are the server defaults except fsync, which is
	// off as in the tests: the data is thrown away, and the row measures
	// the gateway's request path, which reads sessions and does not write.
	srv, err := pgserver.Start(pgserver.Options{Dir: filepath.Join(dir, "postgres"), Database: "socialgate",
		Settings: []string{"max_connections=100"}, StartTimeout: time.Minute})
	if err != nil {
		return nil, err
	}
	return &pgServer{dsn: srv.DSN(), srv: srv}, nil
}

func (s *pgServer) stop() {
	if s != nil {
		s.srv.Stop()
	}
}

// gatewayPG is GATEWAY_PG: the PostgreSQL server, the Caddy process on it
// and a session cookie signed in through it.
type gatewayPG struct {
	pg     *pgServer
	caddy  *proc
	cookie string
}

func (g *gatewayPG) stop() {
	g.caddy.stop()
	g.pg.stop()
}

// startGatewayPG starts a PostgreSQL server, a gateway on it serving s,
// and signs in once through its dev provider.
func startGatewayPG(ctx context.Context, bin, dir, upstream string, adminPort, devPort int, s site, options []string) (*gatewayPG, error) {
	pg, err := startPostgres(dir)
	if err != nil {
		return nil, err
	}
	var sec [32]byte
	rand.Read(sec[:])
	storage := fmt.Sprintf("postgres {\n\t\t\tdsn %q\n\t\t\tsecret %s\n\t\t}", pg.dsn, hex.EncodeToString(sec[:]))
	gwDir := filepath.Join(dir, "gateway-pg")
	fmt.Fprintln(os.Stderr, "starting GATEWAY_PG …")
	gw, err := startCaddy("GATEWAY_PG", bin, gwDir, adminPort,
		caddyfileStorage(gwDir, storage, adminPort, devPort, upstream, []site{s}, options...), []site{s})
	if err != nil {
		pg.stop()
		return nil, fmt.Errorf("GATEWAY_PG did not start: %s", lastLine(err.Error()))
	}
	g := &gatewayPG{pg: pg, caddy: gw}
	b := newBrowser(http.DefaultTransport)
	if err := b.signIn(ctx, s.url(), fmt.Sprintf("http://127.0.0.1:%d", devPort), ada); err != nil {
		g.stop()
		return nil, fmt.Errorf("signing in through GATEWAY_PG: %v", err)
	}
	if g.cookie, err = b.cookieHeader(s.url()); err != nil {
		g.stop()
		return nil, err
	}
	return g, nil
}
