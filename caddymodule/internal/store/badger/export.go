package badger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Export calls fn with every user (oldest first, with its accounts and live
// sessions), then every redirect URL (oldest first), all read in one
// snapshot. An error of fn stops the export and is returned.
func (b *Store) Export(ctx context.Context, fn func(rec store.Record) error) error {
	var recs []store.Record
	err := b.view(ctx, func(txn *badger.Txn) error {
		now := b.now()
		var users []*store.User
		err := scan(txn, prefixUser, false, func(id string, val []byte) error {
			var u store.User
			if err := getJSON(txn, userKey(id), &u); err != nil {
				return fmt.Errorf("loading user %s: %w", id, err)
			}
			users = append(users, &u)
			return nil
		})
		if err != nil {
			return err
		}
		store.SortForExport(users)
		for _, u := range users {
			accs, err := accountsOf(txn, u.ID)
			if err != nil {
				return err
			}
			rec := store.Record{User: u, Accounts: accs}
			err = scanKeys(txn, prefixUserSess+u.ID+"/", func(sid string) error {
				var s store.Session
				err := getJSON(txn, sessionKey(sid), &s)
				if errors.Is(err, store.ErrNotFound) || (err == nil && (s.UserID != u.ID || !now.Before(s.ExpiresAt))) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("loading a session: %w", store.Redact(err, sid))
				}
				rec.Sessions = append(rec.Sessions, &s)
				return nil
			})
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		var rus []*store.RedirectURL
		err = scan(txn, prefixRedirect, false, func(id string, val []byte) error {
			var ru store.RedirectURL
			if err := getJSON(txn, []byte(prefixRedirect+id), &ru); err != nil {
				return err
			}
			rus = append(rus, &ru)
			return nil
		})
		slices.SortFunc(rus, func(x, y *store.RedirectURL) int {
			return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
		})
		for _, ru := range rus {
			recs = append(recs, store.Record{RedirectURL: ru})
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("exporting store: %w", err)
	}
	return store.EmitRecords(ctx, recs, fn)
}

// Import writes one exported record (see store.Rules.Import).
func (b *Store) Import(ctx context.Context, rec store.Record) (store.ImportResult, error) {
	return b.Rules.Import(ctx, rec, b.importRedirectURL)
}

// importRedirectURL writes ru with its URL index entry unless its id is
// recorded already.
func (b *Store) importRedirectURL(ctx context.Context, ru *store.RedirectURL) (bool, error) {
	imported := false
	err := b.update(ctx, func(txn *badger.Txn) error {
		imported = false
		if ok, err := exists(txn, []byte(prefixRedirect+ru.ID)); err != nil || ok {
			return err
		}
		id, err := getString(txn, []byte(prefixRedirectURL+ru.URL))
		if err == nil {
			return fmt.Errorf("%w: the URL is recorded as %s", store.ErrImportConflict, id)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := setJSON(txn, []byte(prefixRedirect+ru.ID), ru, 0); err != nil {
			return err
		}
		imported = true
		return txn.Set([]byte(prefixRedirectURL+ru.URL), []byte(ru.ID))
	})
	if imported && err == nil {
		b.redirectVersion.Add(1)
	}
	return imported && err == nil, err
}
