package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// InsertAudit inserts the entry and deletes the user's entries after the
// newest keep.
func (x pgTx) InsertAudit(e audit.Entry, keep int) error {
	entry, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding an audit entry: %w", err)
	}
	if _, err := x.tx.Exec(x.ctx, `INSERT INTO user_audit (user_id, at_ns, entry) VALUES ($1, $2, $3)`,
		e.UserID, e.Time.UnixNano(), entry); err != nil {
		return err
	}
	_, err = x.tx.Exec(x.ctx, `DELETE FROM user_audit WHERE user_id = $1 AND (at_ns, seq) IN (
		SELECT at_ns, seq FROM user_audit WHERE user_id = $1 ORDER BY at_ns DESC, seq DESC OFFSET $2)`, e.UserID, keep)
	return err
}

// UserAudit implements store.Store.UserAudit.
func (s *Store) UserAudit(ctx context.Context, userID string, limit int) ([]audit.Entry, error) {
	if !store.ValidID(userID) {
		return nil, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT entry FROM user_audit WHERE user_id = $1 ORDER BY at_ns DESC, seq DESC LIMIT $2`, userID, limit)
	if err == nil {
		var out []audit.Entry
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (audit.Entry, error) {
			var raw []byte
			var e audit.Entry
			if err := row.Scan(&raw); err != nil {
				return e, err
			}
			return e, json.Unmarshal(raw, &e)
		})
		if err == nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("reading the audit entries of user %s: %w", userID, err)
}
