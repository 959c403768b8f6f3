package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// eventDeleteBatch is how many events one DeleteEventsBefore statement deletes.
const eventDeleteBatch = 1000

// writeEvents stores the events of a transaction as its last statements:
// their ids come from the event_clock row, whose lock the transaction then
// holds until it commits, so ids grow in commit order (see 0002_events.sql).
// Taking the lock last keeps it held only for the commit itself, and after
// every other row lock, so it adds no lock-order cycle.
func (s *Store) writeEvents(ctx context.Context, tx pgx.Tx, pending []store.PendingEvent) error {
	if len(pending) == 0 {
		return nil
	}
	var last int64
	err := tx.QueryRow(ctx, `UPDATE event_clock SET last = greatest(last, $1) + $2 RETURNING last`,
		s.now().UnixNano(), len(pending)).Scan(&last)
	if err != nil {
		return fmt.Errorf("drawing event ids: %w", err)
	}
	n := len(pending)
	ids, types, created, bodies := make([]string, n), make([]string, n), make([]int64, n), make([][]byte, n)
	for i, p := range pending {
		ids[i] = store.EventID(last - int64(n-1-i))
		types[i] = p.Type
		created[i] = p.CreatedAt.UnixNano()
		bodies[i] = s.sealer.seal(p.Body, eventAAD(ids[i]))
	}
	_, err = tx.Exec(ctx, `INSERT INTO events (id, type, created_ns, body)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[])`, ids, types, created, bodies)
	if err != nil {
		return fmt.Errorf("recording events: %w", err)
	}
	return nil
}

func eventAAD(id string) string { return "event/" + id }

// Events implements store.Store.Events.
func (s *Store) Events(ctx context.Context, afterID string, limit int) ([]*store.Event, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT id, body FROM events WHERE id > $1 ORDER BY id LIMIT $2`,
		afterID, store.EventsLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.Event, error) {
		var id string
		var sealed []byte
		if err := row.Scan(&id, &sealed); err != nil {
			return nil, err
		}
		body, err := s.sealer.open(sealed, eventAAD(id))
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", id, err)
		}
		return store.DecodeEvent(id, body)
	})
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	return out, nil
}

// DeleteEventsBefore implements store.Store.DeleteEventsBefore,
// eventDeleteBatch events per statement.
func (s *Store) DeleteEventsBefore(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM events WHERE id IN
			(SELECT id FROM events WHERE id < $1 ORDER BY id LIMIT `+fmt.Sprint(eventDeleteBatch)+`)`, id)
		if err != nil {
			return fmt.Errorf("deleting events: %w", err)
		}
		if tag.RowsAffected() < eventDeleteBatch {
			return nil
		}
	}
}

// GetMeta implements store.Store.GetMeta.
func (s *Store) GetMeta(ctx context.Context, name string) ([]byte, error) {
	if !store.ValidMetaName(name) {
		return nil, fmt.Errorf("reading %q: invalid name", name)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var value []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM kv WHERE name = $1`, name).Scan(&value)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, notFound(err))
	}
	return value, nil
}

// PutMeta implements store.Store.PutMeta.
func (s *Store) PutMeta(ctx context.Context, name string, value []byte) error {
	if !store.ValidMetaName(name) {
		return fmt.Errorf("storing %q: invalid name", name)
	}
	if value == nil {
		value = []byte{} // the column is NOT NULL
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO kv (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	return nil
}
