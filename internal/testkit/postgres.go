package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/internal/pgserver"
)

// EnvPostgresDSN names the environment variable that points the tests at an
// existing PostgreSQL server instead of a private one. Its database must let
// the user create and drop schemas.
const EnvPostgresDSN = "SOCIALGATE_TEST_POSTGRES_DSN"

// ErrNoPostgres means no PostgreSQL server could be started: the server
// binaries are not installed (or the tests run as root and there is no
// postgres user, or not on Linux). The error's text says what to install.
var ErrNoPostgres = errors.New("no PostgreSQL server for the tests")

// PostgresServer is the PostgreSQL server of a test binary: the one named by
// SOCIALGATE_TEST_POSTGRES_DSN, or a private one that StartPostgres ran on
// loopback. Start it once in TestMain and Stop it after m.Run.
type PostgresServer struct {
	// DSN connects to the server's test database.
	DSN  string
	stop func() error
}

// StartPostgres returns the server named by SOCIALGATE_TEST_POSTGRES_DSN, or
// starts a private one with pgserver.Start: initdb into a temporary
// directory (as the postgres user when the tests run as root), postgres
// listening on 127.0.0.1 on a free port with its unix socket in that
// directory, durability off, and a database socialgate_test. The server
// dies with the test binary. The error wraps ErrNoPostgres when the
// binaries are missing.
func StartPostgres() (*PostgresServer, error) {
	if dsn := strings.TrimSpace(os.Getenv(EnvPostgresDSN)); dsn != "" {
		return &PostgresServer{DSN: dsn, stop: func() error { return nil }}, nil
	}
	return startPrivate()
}

// startPrivate starts the private server. Besides fsync (pgserver turns it
// off), commits do not wait for the log and pages are not written whole
// after checkpoints, since the data is thrown away; max_connections is 200
// rather than the default 100, and the log holds warnings and worse.
func startPrivate() (*PostgresServer, error) {
	srv, err := pgserver.Start(pgserver.Options{Database: "socialgate_test", Settings: []string{
		"synchronous_commit=off", "full_page_writes=off", "max_connections=200", "log_min_messages=warning"}})
	if errors.Is(err, pgserver.ErrUnavailable) {
		return nil, fmt.Errorf("%w: %w; or set %s", ErrNoPostgres, err, EnvPostgresDSN)
	}
	if err != nil {
		return nil, err
	}
	return &PostgresServer{DSN: srv.DSN(), stop: srv.Stop}, nil
}

// Stop stops a private server and removes its files; it leaves a server
// named by SOCIALGATE_TEST_POSTGRES_DSN running.
func (s *PostgresServer) Stop() error {
	if s == nil || s.stop == nil {
		return nil
	}
	return s.stop()
}

// FreshDSN creates an empty schema for t and returns a DSN whose
// search_path is that schema, so every test gets a database of its own on
// one server. The schema is dropped when t ends.
func (s *PostgresServer) FreshDSN(t testing.TB) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, s.DSN)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	dsn, err := withSearchPath(s.DSN, schema)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// withSearchPath adds search_path to a DSN in URL or keyword/value form.
func withSearchPath(dsn, schema string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parsing the test DSN: %w", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " search_path=" + schema, nil
}

// NeedPostgres stops t unless err, the result of StartPostgres, is nil:
// without PostgreSQL (err wraps ErrNoPostgres) t is skipped with err as the
// reason, except in CI, where it fails: CI installs PostgreSQL, and a test
// skipped there would pass unseen. Any other error fails t.
func NeedPostgres(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoPostgres) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// OwnPostgresServer starts a PostgreSQL server for t alone (StartPostgres,
// then NeedPostgres), stopped when t ends.
func OwnPostgresServer(t testing.TB) *PostgresServer {
	t.Helper()
	server, err := StartPostgres()
	NeedPostgres(t, err)
	t.Cleanup(func() { server.Stop() }) // after FreshDSN's cleanups drop their schemas
	return server
}

// OwnPostgres starts a PostgreSQL server for t alone, stopped when t ends,
// and returns the DSN of a fresh schema on it. Without PostgreSQL, t is
// skipped, except in CI, where it fails.
func OwnPostgres(t testing.TB) string {
	t.Helper()
	return OwnPostgresServer(t).FreshDSN(t)
}

// SharedPostgres is one PostgreSQL server for all the tests of a test
// binary that use it, started by the first. Declare it as a package
// variable and call Stop from TestMain after m.Run.
type SharedPostgres struct {
	once   sync.Once
	server *PostgresServer
	err    error
}

// DSN starts the server on its first call and returns the DSN of a fresh
// schema on it for t; without PostgreSQL, t is skipped (NeedPostgres).
func (p *SharedPostgres) DSN(t testing.TB) string {
	t.Helper()
	p.once.Do(func() { p.server, p.err = StartPostgres() })
	NeedPostgres(t, p.err)
	return p.server.FreshDSN(t)
}

// Stop stops the server if a test started it.
func (p *SharedPostgres) Stop() error { return p.server.Stop() }
