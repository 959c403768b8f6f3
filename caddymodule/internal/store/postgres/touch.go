package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// touchBatch bounds the touches of one transaction.
const touchBatch = 500

// TouchSessions implements store.Store.TouchSessions. Each batch locks its
// rows in the order of their digests, so gateways touching the same
// sessions at once wait for each other instead of deadlocking.
func (s *Store) TouchSessions(ctx context.Context, touches []store.SessionTouch) error {
	for batch := range slices.Chunk(touches, touchBatch) {
		merged := map[string]store.SessionTouch{} // by digest
		var hashes [][]byte
		for _, t := range batch {
			if !store.ValidID(t.ID) {
				continue
			}
			h := string(digest(t.ID))
			if prev, ok := merged[h]; ok {
				t.At, t.ExpiresAt = later(prev.At, t.At), later(prev.ExpiresAt, t.ExpiresAt)
			} else {
				hashes = append(hashes, []byte(h))
			}
			merged[h] = t
		}
		if len(hashes) == 0 {
			continue
		}
		if err := s.write(ctx, func(tx pgx.Tx) error { return s.touchRows(ctx, tx, hashes, merged) }); err != nil {
			return fmt.Errorf("recording session activity: %w", err)
		}
	}
	return nil
}

// touchRows applies the touches to the live sessions among hashes.
func (s *Store) touchRows(ctx context.Context, tx pgx.Tx, hashes [][]byte, touches map[string]store.SessionTouch) error {
	type row struct{ hash, record []byte }
	rows, err := tx.Query(ctx, `SELECT id_hash, record FROM sessions WHERE id_hash = ANY($1) AND expires_ns > $2
		ORDER BY id_hash FOR UPDATE`, hashes, s.now().UnixNano())
	if err != nil {
		return err
	}
	live, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.hash, &x.record)
	})
	if err != nil {
		return err
	}
	var changed [][]byte
	var expires []int64
	var records []string
	for _, x := range live {
		var sess store.Session
		if err := json.Unmarshal(x.record, &sess); err != nil {
			return fmt.Errorf("decoding a session: %w", err)
		}
		if !sess.Touch(touches[string(x.hash)]) {
			continue
		}
		record, err := json.Marshal(&sess)
		if err != nil {
			return err
		}
		changed, expires, records = append(changed, x.hash), append(expires, sess.ExpiresAt.UnixNano()), append(records, string(record))
	}
	if len(changed) == 0 {
		return nil
	}
	_, err = tx.Exec(ctx, `UPDATE sessions SET expires_ns = u.expires_ns, record = u.record::json
		FROM unnest($1::bytea[], $2::bigint[], $3::text[]) AS u(id_hash, expires_ns, record)
		WHERE sessions.id_hash = u.id_hash`, changed, expires, records)
	return err
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
