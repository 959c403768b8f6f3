package caddymodule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
)

// Environment variables storage-migrate reads when --dsn or --secret is not
// given, so that neither has to appear on a command line (and in ps).
const (
	envMigrateDSN    = "DATABASE_URL"
	envMigrateSecret = "SOCIALGATE_SECRET"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "storage-migrate",
		Usage: "--from badger:<dir>|postgres --to postgres|badger:<dir> [--dsn <dsn>] [--secret <secret>]",
		Short: "Copies the socialgate users between the Badger and PostgreSQL stores",
		Long: `
Copies users with their linked accounts (provider tokens included) and the
native redirect URLs from one store to the other, keeping every id and
timestamp, so API clients that stored user ids keep working:

  socialgate storage-migrate --from badger:/var/lib/socialgate --to postgres \
      --dsn postgres://… --secret …
  socialgate storage-migrate --from postgres --to badger:/var/lib/socialgate-new \
      --dsn postgres://… --secret …

Sessions are NOT migrated, and everyone signs in again after the switch: a
Badger store's cookie and identity-token keys live in its keys.json, the
PostgreSQL store's derive from the secret (storage postgres { secret … }),
so a session cookie of one cannot be read by the other. Pending sign-in
flows, the webhook outbox and delivery state are not migrated either.

--dsn and --secret are the storage postgres options (default: the
DATABASE_URL and SOCIALGATE_SECRET environment variables); the secret must
be the one the gateways will run with, since provider tokens are encrypted
under a key derived from it. A Badger target directory is created with a
new keys.json when it does not exist.

The Badger store must not be in use: stop the gateway first (Badger locks
its directory, and the command then fails with exit code 2). The PostgreSQL
side may stay in use.

Re-running is safe: a user or redirect URL whose id exists in the target is
skipped, so an interrupted migration is finished by running it again. The
counts of migrated and skipped records are printed.

Exit code 0: everything was copied or was there already; 1: some records
conflict with different records of the target (an identity or a redirect
URL recorded under another id; each is printed and the rest is copied);
2: the migration could not run or stopped (bad arguments, store in use,
database unreachable, wrong secret) — run it again once fixed.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("from", "", "The source store: badger:<dir> or postgres")
			cmd.Flags().String("to", "", "The target store: postgres or badger:<dir>")
			cmd.Flags().String("dsn", "", "The PostgreSQL connection string (default: $"+envMigrateDSN+")")
			cmd.Flags().String("secret", "", "The storage postgres secret, at least 32 characters (default: $"+envMigrateSecret+")")
			flagErrorsExitTwo(cmd)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdStorageMigrate)
		},
	})
}

// migrateOptions are storage-migrate's arguments.
type migrateOptions struct {
	From, To    string // "postgres" or "badger:<dir>"
	DSN, Secret string
}

func cmdStorageMigrate(fl caddycmd.Flags) (int, error) {
	if fl.NArg() != 0 {
		return exitFailed, errors.New("storage-migrate takes no arguments, only flags")
	}
	opts := migrateOptions{
		From:   fl.String("from"),
		To:     fl.String("to"),
		DSN:    cmp.Or(fl.String("dsn"), os.Getenv(envMigrateDSN)),
		Secret: cmp.Or(fl.String("secret"), os.Getenv(envMigrateSecret)),
	}
	return migrateStorage(context.Background(), opts, os.Stdout)
}

// migrationSource and migrationTarget are the export and import sides of
// the two stores.
type migrationSource interface {
	Export(ctx context.Context, fn func(rec store.Record) error) error
}

type migrationTarget interface {
	Import(ctx context.Context, rec store.Record) (store.ImportResult, error)
}

// migrateStorage runs a migration and prints its counts to w; it returns
// the command's exit code.
func migrateStorage(ctx context.Context, opts migrateOptions, w io.Writer) (int, error) {
	fromDir, fromBadger, err := parseStoreSpec("--from", opts.From)
	if err != nil {
		return exitFailed, err
	}
	toDir, toBadger, err := parseStoreSpec("--to", opts.To)
	if err != nil {
		return exitFailed, err
	}
	if fromBadger == toBadger {
		return exitFailed, errors.New("--from and --to must be one Badger store and PostgreSQL")
	}
	if opts.DSN == "" {
		return exitFailed, fmt.Errorf("the PostgreSQL side needs --dsn (or $%s)", envMigrateDSN)
	}
	keys, err := keyring.FromSecret([]byte(opts.Secret))
	if err != nil {
		return exitFailed, fmt.Errorf("--secret (or $%s): %w", envMigrateSecret, err)
	}
	var bdg *store.Badger
	if fromBadger {
		bdg, err = openBadgerDir(fromDir, false)
	} else {
		bdg, err = openBadgerDir(toDir, true)
	}
	if err != nil {
		return exitFailed, err
	}
	defer bdg.Close()
	pg, err := postgres.Open(ctx, postgres.Options{DSN: opts.DSN, EncryptionKey: keys.StoreKey, MaxConns: 4})
	if err != nil {
		return exitFailed, err
	}
	defer pg.Close()

	var src migrationSource = pg
	var dst migrationTarget = bdg
	if fromBadger {
		src, dst = bdg, pg
	}
	var c migrationCounts
	var conflicts []string
	err = src.Export(ctx, func(rec store.Record) error {
		c.sessions += len(rec.Sessions)
		rec.Sessions = nil // keys differ between the stores: see the help
		res, err := dst.Import(ctx, rec)
		if errors.Is(err, store.ErrImportConflict) {
			conflicts = append(conflicts, err.Error())
			fmt.Fprintln(w, "conflict:", err)
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case rec.RedirectURL != nil && res.Imported:
			c.redirects++
		case rec.RedirectURL != nil:
			c.redirectsSkipped++
		case res.Imported:
			c.users++
			c.accounts += res.Accounts
		default:
			c.usersSkipped++
			c.accountsSkipped += len(rec.Accounts)
		}
		return nil
	})
	c.print(w, opts.From, opts.To)
	if err != nil {
		return exitFailed, fmt.Errorf("migration stopped (run it again to finish; copied records are skipped): %w", err)
	}
	if len(conflicts) > 0 {
		return exitProblem, fmt.Errorf("%d records conflict with the target and were not copied", len(conflicts))
	}
	return exitOK, nil
}

type migrationCounts struct {
	users, usersSkipped, accounts, accountsSkipped int
	redirects, redirectsSkipped, sessions          int
}

func (c migrationCounts) print(w io.Writer, from, to string) {
	fmt.Fprintf(w, "%s -> %s\n", from, to)
	fmt.Fprintf(w, "users:           %d migrated, %d skipped (already there)\n", c.users, c.usersSkipped)
	fmt.Fprintf(w, "accounts:        %d migrated with their tokens, %d skipped\n", c.accounts, c.accountsSkipped)
	fmt.Fprintf(w, "redirect URLs:   %d migrated, %d skipped\n", c.redirects, c.redirectsSkipped)
	fmt.Fprintf(w, "sessions:        not migrated (%d live sessions left behind: users sign in again)\n", c.sessions)
}

// parseStoreSpec reads "postgres" or "badger:<dir>".
func parseStoreSpec(flag, spec string) (dir string, isBadger bool, err error) {
	switch {
	case spec == "postgres":
		return "", false, nil
	case strings.HasPrefix(spec, "badger:") && len(spec) > len("badger:"):
		return spec[len("badger:"):], true, nil
	}
	return "", false, fmt.Errorf("%s must be postgres or badger:<dir>, not %q", flag, spec)
}
