// Package pgserver starts a private, throwaway PostgreSQL server: initdb
// into a directory, then postgres as a child process listening on
// 127.0.0.1 on a free port, with fsync off because the data is thrown away.
// The store's tests (testkit.StartPostgres) and the load run
// (perf/loadrun) both use it.
//
// The server binaries are looked up under Debian's
// /usr/lib/postgresql/<version>/bin (newest version first), then on PATH.
// PostgreSQL refuses to run as root, so when the caller is root the server
// runs as the postgres user that Debian's postgresql package creates.
// The server gets SIGTERM when the process that started it dies, however
// it dies (the Linux parent-death signal; strictly it follows the OS thread
// that called Start, which Go keeps unless a goroutine locked to it exits),
// so a killed caller leaves no server behind.
//
// A typical use:
//
//	srv, err := pgserver.Start(pgserver.Options{Database: "app"})
//	if errors.Is(err, pgserver.ErrUnavailable) {
//		// PostgreSQL is not installed; err says what to install.
//	}
//	...
//	defer srv.Stop()
//	db, err := pgx.Connect(ctx, srv.DSN())
//
// Starting a private server is implemented for Linux only; elsewhere Start
// returns an error that wraps ErrUnavailable.
package pgserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrUnavailable means no private server can be started on this machine:
// the PostgreSQL binaries are not installed, the caller is root and there
// is no postgres user to run the server as, or the operating system is not
// supported. The wrapping error's text says which, and what to install.
var ErrUnavailable = errors.New("cannot start a private PostgreSQL server")

// DefaultStartTimeout is the StartTimeout of Options that leave it zero.
const DefaultStartTimeout = 2 * time.Minute

// stopTimeout is how long Stop waits for a fast shutdown before it kills
// the server.
const stopTimeout = 30 * time.Second

// Options configure Start. The zero value starts a server in a new
// temporary directory with the default settings.
type Options struct {
	// Dir is the directory of the server's files: the data directory
	// (Dir/data), the unix socket, the password file and the server's log
	// (Dir/postgres.log). Start creates it (mode 0700) when it does not
	// exist, and hands it to the postgres user when it runs the server as
	// that user; that user must be able to reach it, so every directory
	// above it must be searchable by others (initdb's error says which one
	// is not). The caller owns a directory it names: Stop leaves it in
	// place, with the log in it.
	//
	// When Dir is empty, Start creates a temporary directory, and Stop (or
	// a failed Start) removes it.
	Dir string

	// Settings are extra server settings, each "name=value", passed to
	// postgres as -c name=value after the ones Start always sets
	// (listen_addresses=127.0.0.1, the port, unix_socket_directories=Dir
	// and fsync=off); a later setting of the same name wins.
	Settings []string

	// Database, when set, is an empty database that Start creates once
	// the server accepts connections; Server.DSN connects to it.
	Database string

	// StartTimeout bounds initdb, the wait until the server accepts
	// connections and the creation of Database; zero means
	// DefaultStartTimeout.
	StartTimeout time.Duration
}

// Server is a running private server. Its superuser is postgres, with a
// random password; it accepts TCP connections on 127.0.0.1 only, with
// password (scram-sha-256) authentication.
type Server struct {
	dir       string
	removeDir bool   // Start created dir; Stop removes it
	admin     string // DSN of the postgres database as the superuser
	dsn       string // DSN of Options.Database, or admin
	logPath   string

	cmd  *exec.Cmd
	done chan struct{} // closed when the server process has exited
	err  error         // cmd.Wait's result, once done is closed

	stopOnce sync.Once
	stopErr  error
}

// Start runs initdb and postgres as described in the package comment and
// returns once the server accepts connections and Options.Database
// exists. On failure it leaves no process behind; the error includes
// initdb's output or the server's log when they say why, and wraps
// ErrUnavailable when PostgreSQL cannot be run here at all.
func Start(opts Options) (*Server, error) {
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	return start(opts)
}

// DSN is a URL DSN of Options.Database as the superuser; AdminDSN when
// Options left Database empty.
func (s *Server) DSN() string { return s.dsn }

// AdminDSN is a URL DSN of the server's postgres database as the
// superuser, for example to create roles or databases.
func (s *Server) AdminDSN() string { return s.admin }

// Dir is the directory of the server's files (Options.Dir, or the
// temporary directory Start created).
func (s *Server) Dir() string { return s.dir }

// LogPath is the file of the server's log.
func (s *Server) LogPath() string { return s.logPath }

// CreateDatabase creates an empty database name, owned by the superuser,
// and returns a URL DSN that connects to it.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		return "", fmt.Errorf("connecting to the private PostgreSQL server: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	u, err := url.Parse(s.admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Stop stops the server (a fast shutdown, SIGINT; SIGKILL if it has not
// exited within 30 seconds) and removes its directory if Start created it.
// It returns the server's exit error, if any. Stop on a nil Server does
// nothing; later calls return the first call's result.
func (s *Server) Stop() error {
	if s == nil {
		return nil
	}
	s.stopOnce.Do(func() {
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(stopTimeout):
			s.cmd.Process.Kill()
			<-s.done
		}
		if s.removeDir {
			os.RemoveAll(s.dir)
		}
		s.stopErr = s.err
		var ee *exec.ExitError
		if errors.As(s.stopErr, &ee) && ee.Success() {
			s.stopErr = nil
		}
	})
	return s.stopErr
}

// logTail is the end of the server's log, for error messages.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitReady polls until the server accepts connections, the server exits
// or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	for {
		conn, err := pgx.Connect(ctx, s.admin)
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited: %v", s.err)
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// binGlob is where Debian installs the server binaries, one directory per
// major version.
var binGlob = "/usr/lib/postgresql/*/bin"

// findBin returns the directory of initdb and postgres: Debian's
// /usr/lib/postgresql/<newest>/bin, else the one on PATH.
func findBin() (string, error) {
	dirs, _ := filepath.Glob(binGlob)
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && isFile(filepath.Join(filepath.Dir(p), "postgres")) {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("%w: PostgreSQL is not installed (no initdb and postgres under %s or on PATH); "+
		"install Debian's postgresql package: apt-get install -y postgresql", ErrUnavailable, binGlob)
}

// version is the major version in a path /usr/lib/postgresql/<version>/bin,
// or 0.
func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// adminDSN is the URL DSN of the postgres database as the superuser, over
// TCP on 127.0.0.1:port.
func adminDSN(password string, port int) string {
	return (&url.URL{Scheme: "postgres", User: url.UserPassword("postgres", password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/postgres", RawQuery: "sslmode=disable"}).String()
}
