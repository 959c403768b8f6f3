package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Environment variables storage-migrate and secret-rotate read when --dsn,
// --secret or --previous-secret is not given, so that none has to appear
// on a command line (and in ps).
const (
	envDSN            = "DATABASE_URL"
	envSecret         = "SOCIALGATE_SECRET"
	envPreviousSecret = "SOCIALGATE_PREVIOUS_SECRET"
)

// migrateOptions are storage-migrate's arguments.
type migrateOptions struct {
	From, To    string // "postgres" or "badger:<dir>"
	DSN, Secret string
}

func runStorageMigrate(ctx context.Context, c *call) error {
	if err := c.noArgs(); err != nil {
		return err
	}
	from, _ := c.flags.GetString("from")
	to, _ := c.flags.GetString("to")
	dsn, secret := c.postgresFlags()
	return migrateStorage(ctx, migrateOptions{From: from, To: to, DSN: dsn, Secret: secret}, c.Stdout, c.progress())
}

// postgresFlags reads --dsn and --secret, or their environment variables.
func (c *call) postgresFlags() (dsn, secret string) {
	dsn, _ = c.flags.GetString("dsn")
	secret, _ = c.flags.GetString("secret")
	return cmp.Or(dsn, c.Getenv(envDSN)), cmp.Or(secret, c.Getenv(envSecret))
}

// migrateStorage runs a migration and prints its counts to w, its progress
// to p.
func migrateStorage(ctx context.Context, opts migrateOptions, w io.Writer, p *progress) error {
	fromDir, fromBadger, err := parseStoreSpec("--from", opts.From)
	if err != nil {
		return err
	}
	toDir, toBadger, err := parseStoreSpec("--to", opts.To)
	if err != nil {
		return err
	}
	switch {
	case fromBadger == toBadger:
		return errors.New("--from and --to must be one Badger store and PostgreSQL")
	case opts.DSN == "":
		return fmt.Errorf("the PostgreSQL side needs --dsn (or $%s)", envDSN)
	}
	// Checked before anything is opened (ops.Open derives the keys again).
	if _, err := keyring.FromSecret([]byte(opts.Secret)); err != nil {
		return fmt.Errorf("--secret (or $%s): %w", envSecret, err)
	}
	bdg, err := ops.Open(ctx, ops.Location{Dir: cmp.Or(fromDir, toDir), Create: !fromBadger})
	if err != nil {
		return err
	}
	defer bdg.Close()
	pg, err := ops.Open(ctx, ops.Location{DSN: opts.DSN, Secrets: [][]byte{[]byte(opts.Secret)}, MaxConns: 4})
	if err != nil {
		return err
	}
	defer pg.Close()
	src, dst := pg, bdg
	if fromBadger {
		src, dst = bdg, pg
	}
	fmt.Fprintf(p.w, "from: %s\nto:   %s\n", src.Name, dst.Name)
	_, total, err := src.Store.Users(ctx, store.UserQuery{Limit: 1})
	if err != nil {
		return err
	}
	counts, err := ops.Migrate(ctx, src.Store, dst.Store, func(c ops.MigrateCounts) {
		p.show("migrating: %d of %s", c.Users+c.UsersSkipped, plural(total, "user"))
	})
	p.end()
	for _, conflict := range counts.Conflicts {
		fmt.Fprintln(w, "conflict:", conflict)
	}
	fmt.Fprintf(w, "%s -> %s\n", opts.From, opts.To)
	fmt.Fprintf(w, "users:           %d migrated, %d skipped (already there)\n", counts.Users, counts.UsersSkipped)
	fmt.Fprintf(w, "accounts:        %d migrated with their tokens, %d skipped\n", counts.Accounts, counts.AccountsSkipped)
	fmt.Fprintf(w, "redirect URLs:   %d migrated, %d skipped\n", counts.RedirectURLs, counts.RedirectURLsSkipped)
	fmt.Fprintf(w, "sessions:        not migrated (%s left behind: users sign in again)\n", plural(counts.SessionsLeft, "live session"))
	if err != nil {
		return fmt.Errorf("migration stopped (run it again to finish; copied records are skipped): %w", err)
	}
	if n := len(counts.Conflicts); n > 0 {
		return problemf("%s conflict with the target and were not copied", plural(n, "record"))
	}
	return nil
}

// parseStoreSpec reads "postgres" or "badger:<dir>".
func parseStoreSpec(flag, spec string) (dir string, isBadger bool, err error) {
	if spec == "postgres" {
		return "", false, nil
	}
	if dir, ok := strings.CutPrefix(spec, "badger:"); ok && dir != "" {
		return dir, true, nil
	}
	return "", false, fmt.Errorf("%s must be postgres or badger:<dir>, not %q", flag, spec)
}
