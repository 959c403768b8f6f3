package main

// A private PostgreSQL server for the row "authenticated pass-through
// (PostgreSQL store)": initdb into the run's temporary directory and
// postgres on 127.0.0.1, as the store's tests do (storetest.StartPostgres,
// which lives in an internal package and takes a testing.TB, so its start
// logic is repeated here in brief).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgServer is the private server: stop ends exactly the process started.
type pgServer struct {
	dsn  string
	proc *proc
}

// startPostgres runs initdb and postgres under dir and returns a DSN of a
// fresh database. The error says why when the binaries are missing.
func startPostgres(dir string) (*pgServer, error) {
	bin, err := findPostgresBin()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 { // initdb and postgres refuse root
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, and there is no postgres user to run the server as: %v", err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
	}
	pgDir := filepath.Join(dir, "postgres")
	if err := os.MkdirAll(pgDir, 0o700); err != nil {
		return nil, err
	}
	var pw [16]byte
	rand.Read(pw[:])
	password := hex.EncodeToString(pw[:])
	pwfile := filepath.Join(pgDir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if cred != nil {
		// The run's directory is private (0700): give the postgres user a way in.
		for _, p := range []string{dir, pgDir, pwfile} {
			if p == dir {
				if err := os.Chmod(dir, 0o711); err != nil {
					return nil, err
				}
				continue
			}
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("handing %s to the postgres user: %w", p, err)
			}
		}
	}
	data := filepath.Join(pgDir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// Durability settings are the server defaults except fsync, which is
	// off as in the tests: the data is thrown away, and the row measures
	// the gateway's request path, which reads sessions and does not write.
	srv := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port), "-c", "unix_socket_directories="+pgDir,
		"-c", "fsync=off", "-c", "max_connections=100")
	// The server ends with this runner, however it ends.
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGTERM}
	p, err := launch("postgres", filepath.Join(pgDir, "postgres.log"), srv)
	if err != nil {
		return nil, err
	}
	admin := (&url.URL{Scheme: "postgres", User: url.UserPassword("postgres", password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/postgres", RawQuery: "sslmode=disable"}).String()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, admin)
		if err == nil {
			_, err = conn.Exec(ctx, "CREATE DATABASE socialgate")
			conn.Close(ctx)
			if err != nil {
				p.stop()
				return nil, err
			}
			break
		}
		if p.exited() || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("postgres did not start: %v\n%s", err, p.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	u, _ := url.Parse(admin)
	u.Path = "/socialgate"
	return &pgServer{dsn: u.String(), proc: p}, nil
}

func (s *pgServer) stop() {
	if s != nil {
		s.proc.stop()
	}
}

// findPostgresBin returns the directory of initdb and postgres: Debian's
// /usr/lib/postgresql/<newest>/bin, else the one on PATH.
func findPostgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) int { n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d))); return n }
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && isFile(filepath.Join(filepath.Dir(p), "postgres")) {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL is not installed (no initdb and postgres under /usr/lib/postgresql/*/bin or on PATH; " +
		"apt-get install -y postgresql)")
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
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
