package pgserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// startForTest starts a server, skipping t where PostgreSQL is unavailable
// (except in CI, which installs it).
func startForTest(t *testing.T, opts Options) *Server {
	t.Helper()
	srv, err := Start(opts)
	if errors.Is(err, ErrUnavailable) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestTempDir(t *testing.T) {
	srv := startForTest(t, Options{Database: "app", Settings: []string{"max_connections=20"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := srv.CreateDatabase(ctx, "second"); err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, srv.DSN())
	if err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	var db, fsync, maxConns string
	err = conn.QueryRow(ctx, "SELECT current_database(), current_setting('fsync'), current_setting('max_connections')").
		Scan(&db, &fsync, &maxConns)
	conn.Close(ctx)
	if err != nil {
		srv.Stop()
		t.Fatal(err)
	}
	if db != "app" || fsync != "off" || maxConns != "20" {
		t.Errorf("database %q, fsync %q, max_connections %q; want app, off, 20", db, fsync, maxConns)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(srv.Dir()); !os.IsNotExist(err) {
		t.Errorf("Stop left the temporary directory %s: %v", srv.Dir(), err)
	}
}

func TestCallersDir(t *testing.T) {
	parent, err := os.MkdirTemp("", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if os.Geteuid() == 0 {
		// The server runs as the postgres user, which must get through.
		if err := os.Chmod(parent, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(parent, "postgres")
	srv := startForTest(t, Options{Dir: dir})
	if srv.DSN() != srv.AdminDSN() {
		t.Errorf("DSN %s without Options.Database, want AdminDSN %s", srv.DSN(), srv.AdminDSN())
	}
	if srv.Dir() != dir || srv.LogPath() != filepath.Join(dir, "postgres.log") {
		t.Errorf("Dir %s, LogPath %s", srv.Dir(), srv.LogPath())
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if _, err := os.Stat(srv.LogPath()); err != nil {
		t.Errorf("Stop removed the caller's directory: %v", err)
	}
}

func TestNotInstalled(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	defer func(g string) { binGlob = g }(binGlob)
	binGlob = filepath.Join(t.TempDir(), "*", "bin")
	t.Setenv("PATH", t.TempDir())
	_, err := Start(Options{})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not installed") {
		t.Fatalf("Start without PostgreSQL: %v; want ErrUnavailable saying it is not installed", err)
	}
	t.Log(err)
}

func TestBadSetting(t *testing.T) {
	_, err := Start(Options{Settings: []string{"no_such_setting=1"}, StartTimeout: 30 * time.Second})
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err == nil || !strings.Contains(err.Error(), "server log:") {
		t.Fatalf("Start with a bad setting: %v; want an error with the server's log", err)
	}
	t.Log(err)
}
