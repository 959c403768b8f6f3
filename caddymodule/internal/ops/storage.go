package ops

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
)

// CheckReport is the outcome of Check.
type CheckReport struct {
	// Violations are the store's broken invariants, one sentence each;
	// none when it is consistent.
	Violations []string
	// Users is how many users the store holds.
	Users int
}

// Check reads the whole store in one snapshot and checks its invariants
// (both stores implement the check: badger.Store.Check,
// postgres.Store.Check).
func (s *Service) Check(ctx context.Context) (CheckReport, error) {
	c, ok := store.Unwrap(s.o.Store).(interface {
		Check(context.Context) ([]string, error)
	})
	if !ok {
		return CheckReport{}, fmt.Errorf("%w: this store has no invariant check", ErrUnsupported)
	}
	violations, err := c.Check(ctx)
	if err != nil {
		return CheckReport{}, err
	}
	_, users, err := s.o.Store.Users(ctx, store.UserQuery{Limit: 1})
	if err != nil {
		return CheckReport{}, fmt.Errorf("counting users: %w", err)
	}
	return CheckReport{Violations: violations, Users: users}, nil
}

// Backup writes a full backup of a Badger store to w, in Badger's own
// format, from one snapshot, while the store serves. It holds the records
// decrypted: keep it as secret as the keys.
func (s *Service) Backup(ctx context.Context, w io.Writer) error {
	b, ok := store.Unwrap(s.o.Store).(interface{ Backup(io.Writer) error })
	if !ok {
		return fmt.Errorf("%w: backup covers Badger stores only: back up PostgreSQL with pg_dump", ErrUnsupported)
	}
	return b.Backup(w)
}

// Restore loads a backup written by Backup into a new Badger store in dir,
// which must hold the backed-up store's keys.json and nothing else (so
// never a live store), and checks the restored store. Its errors before
// loading are *ParamError.
func Restore(ctx context.Context, dir string, r io.Reader) (CheckReport, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return CheckReport{}, &ParamError{Param: "storage", Message: fmt.Sprintf("storage %s: %v (create it and copy the backed-up store's %s there)", dir, err, keyring.FileName)}
	}
	hasKeys := false
	for _, e := range entries {
		if e.Name() != keyring.FileName {
			return CheckReport{}, &ParamError{Param: "storage", Message: fmt.Sprintf("storage %s is not empty (%s): restore only into a new directory holding nothing but %s", dir, e.Name(), keyring.FileName)}
		}
		hasKeys = true
	}
	if !hasKeys {
		return CheckReport{}, &ParamError{Param: "storage", Message: fmt.Sprintf("storage %s: %s is missing: copy the backed-up store's %s there first", dir, keyring.FileName, keyring.FileName)}
	}
	keys, err := keyring.LoadOrCreate(dir)
	if err != nil {
		return CheckReport{}, fmt.Errorf("storage %s: %w", dir, err)
	}
	if err := badger.Restore(dir, keys.StoreKey, r); err != nil {
		return CheckReport{}, fmt.Errorf("%w (remove everything but %s from %s before trying again)", inUse(err), keyring.FileName, filepath.Clean(dir))
	}
	opened, err := Open(ctx, Location{Dir: dir})
	if err != nil {
		return CheckReport{}, err
	}
	defer opened.Close()
	return New(Options{Store: opened.Store}).Check(ctx)
}
