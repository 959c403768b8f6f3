package harness

// A private PostgreSQL server: initdb into the run's temporary directory
// and postgres on 127.0.0.1, fsync off, as the store's tests do; both start
// it with internal/pgserver.

import (
	"os"
	"path/filepath"
	"time"

	"github.com/socialgate/socialgate/internal/pgserver"
)

// StartPostgres runs initdb and postgres under dir/postgres and returns the
// server, whose DSN names a fresh database; Stop ends exactly the process
// started. The error says why when the binaries are missing. The server's
// files, log included, stay in dir.
func StartPostgres(dir string) (*pgserver.Server, error) {
	if os.Geteuid() == 0 {
		// pgserver runs the server as the postgres user, and the run's
		// directory is private (0700): give that user a way through.
		if err := os.Chmod(dir, 0o711); err != nil {
			return nil, err
		}
	}
	// Durability settings are the server defaults except fsync, which is
	// off as in the tests: the data is thrown away.
	return pgserver.Start(pgserver.Options{Dir: filepath.Join(dir, "postgres"), Database: "socialgate",
		Settings: []string{"max_connections=100"}, StartTimeout: time.Minute})
}
