package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// exporter and importer are the two sides of a migration (badger.Store and
// postgres.Store are both).
type exporter interface {
	Export(ctx context.Context, fn func(rec store.Record) error) error
}

type importer interface {
	Import(ctx context.Context, rec store.Record) (store.ImportResult, error)
}

// MigrateCounts are what a migration copied, and what it skipped because
// the target had it already.
type MigrateCounts struct {
	Users, UsersSkipped       int
	Accounts, AccountsSkipped int
	// RedirectURLs and RedirectURLsSkipped count the native redirect URLs.
	RedirectURLs, RedirectURLsSkipped int
	// SessionsLeft counts the live sessions left behind: sessions are never
	// migrated (their cookies are signed with the source's keys).
	SessionsLeft int
	// Conflicts are the records that clash with different records of the
	// target (an identity or a redirect URL recorded under another id),
	// one sentence each: they were not copied.
	Conflicts []string
}

// Migrate copies users with their linked accounts (provider tokens
// included) and the native redirect URLs from one store to another,
// keeping every id and timestamp. A record whose id the target holds
// already is skipped, so running it again finishes an interrupted
// migration. progress, when set, is called after each record with the
// counts so far.
func Migrate(ctx context.Context, from, to store.Store, progress func(MigrateCounts)) (MigrateCounts, error) {
	var c MigrateCounts
	src, ok1 := from.(exporter)
	dst, ok2 := to.(importer)
	if !ok1 || !ok2 {
		return c, fmt.Errorf("%w: these stores cannot be migrated", ErrUnsupported)
	}
	err := src.Export(ctx, func(rec store.Record) error {
		c.SessionsLeft += len(rec.Sessions)
		rec.Sessions = nil
		res, err := dst.Import(ctx, rec)
		switch {
		case errors.Is(err, store.ErrImportConflict):
			c.Conflicts = append(c.Conflicts, err.Error())
		case err != nil:
			return err
		case rec.RedirectURL != nil && res.Imported:
			c.RedirectURLs++
		case rec.RedirectURL != nil:
			c.RedirectURLsSkipped++
		case res.Imported:
			c.Users++
			c.Accounts += res.Accounts
		default:
			c.UsersSkipped++
			c.AccountsSkipped += len(rec.Accounts)
		}
		if progress != nil {
			progress(c)
		}
		return nil
	})
	return c, err
}
