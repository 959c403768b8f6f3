package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Export calls fn with every user (oldest first, with its accounts, tokens
// opened, and live sessions), then every redirect URL (oldest first), all
// read in one snapshot. An error of fn stops the export and is returned.
func (s *Store) Export(ctx context.Context, fn func(rec store.Record) error) error {
	var recs []store.Record
	// A long export must not be cut by the per-call query timeout.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT record FROM users ORDER BY created_ns, id`)
		if err != nil {
			return err
		}
		users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.User, error) {
			var record []byte
			if err := row.Scan(&record); err != nil {
				return nil, err
			}
			return decodeUser(record)
		})
		if err != nil {
			return fmt.Errorf("listing users: %w", err)
		}
		store.SortForExport(users)
		now := s.now().UnixNano()
		for _, u := range users {
			accs, err := s.accountsOf(ctx, tx, u.ID)
			if err != nil {
				return fmt.Errorf("accounts of user %s: %w", u.ID, err)
			}
			rows, err := tx.Query(ctx, `SELECT id_hash, id_sealed, record FROM sessions
				WHERE user_id = $1 AND expires_ns > $2 ORDER BY expires_ns`, u.ID, now)
			if err != nil {
				return err
			}
			sessions, err := pgx.CollectRows(rows, s.scanSession)
			if err != nil {
				return fmt.Errorf("sessions of user %s: %w", u.ID, err)
			}
			recs = append(recs, store.Record{User: u, Accounts: accs, Sessions: sessions})
		}
		rows, err = tx.Query(ctx, `SELECT record FROM redirect_urls ORDER BY created_ns, id`)
		if err != nil {
			return err
		}
		rus, err := pgx.CollectRows(rows, scanRedirectURL)
		if err != nil {
			return fmt.Errorf("listing redirect URLs: %w", err)
		}
		for _, ru := range rus {
			recs = append(recs, store.Record{RedirectURL: ru})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("exporting store: %w", err)
	}
	return store.EmitRecords(ctx, recs, fn)
}

// Import writes one exported record (see store.Rules.Import), its tokens
// sealed under this store's key.
func (s *Store) Import(ctx context.Context, rec store.Record) (store.ImportResult, error) {
	return s.Rules.Import(ctx, rec, s.importRedirectURL)
}

// importRedirectURL inserts ru unless its id is recorded already.
func (s *Store) importRedirectURL(ctx context.Context, ru *store.RedirectURL) (bool, error) {
	record, err := json.Marshal(ru)
	if err != nil {
		return false, err
	}
	imported := false
	err = s.write(ctx, func(tx pgx.Tx) error {
		imported = false
		var id string
		// The row of ru's id first: a URL imported already is skipped.
		err := tx.QueryRow(ctx, `SELECT id FROM redirect_urls WHERE id = $1 OR url = $2 ORDER BY id = $1 DESC LIMIT 1`,
			ru.ID, ru.URL).Scan(&id)
		switch {
		case err == nil && id == ru.ID:
			return nil
		case err == nil:
			return fmt.Errorf("%w: the URL is recorded as %s", store.ErrImportConflict, id)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO redirect_urls (id, url, created_ns, record) VALUES ($1, $2, $3, $4)`,
			ru.ID, ru.URL, ru.CreatedAt.UnixNano(), record); err != nil {
			return err
		}
		imported = true
		return nil
	})
	return imported && err == nil, err
}
