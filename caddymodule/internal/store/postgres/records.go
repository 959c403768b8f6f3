package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Session implements store.Store.Session.
func (s *Store) Session(ctx context.Context, id string) (*store.Session, error) {
	if !store.ValidID(id) {
		return nil, fmt.Errorf("loading session: %w", store.ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var expires int64
	var record []byte
	err := s.pool.QueryRow(ctx, `SELECT expires_ns, record FROM sessions WHERE id_hash = $1`, digest(id)).Scan(&expires, &record)
	if err == nil && s.now().UnixNano() >= expires {
		err = pgx.ErrNoRows // the cleanup deletes it later; the clock decides now
	}
	if err != nil {
		return nil, fmt.Errorf("loading session: %w", notFound(err))
	}
	var sess store.Session
	if err := json.Unmarshal(record, &sess); err != nil {
		return nil, fmt.Errorf("loading session: decoding record: %w", err)
	}
	sess.ID = id
	return &sess, nil
}

// DeleteSession implements store.Store.DeleteSession.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := s.endSession(ctx, id, store.EventSessionEnded); err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	return nil
}

// RevokeSession implements store.Store.RevokeSession.
func (s *Store) RevokeSession(ctx context.Context, id string) error {
	if err := s.endSession(ctx, id, store.EventSessionRevoked); err != nil {
		return fmt.Errorf("revoking session: %w", err)
	}
	return nil
}

// endSession deletes a session and, when it was live, records an event of
// type typ.
func (s *Store) endSession(ctx context.Context, id, typ string) error {
	if !store.ValidID(id) {
		return nil
	}
	return s.writeWithEvents(ctx, func(tx pgx.Tx, out *store.Outbox) error {
		var expires int64
		var record []byte
		err := tx.QueryRow(ctx, `DELETE FROM sessions WHERE id_hash = $1 RETURNING expires_ns, record`, digest(id)).Scan(&expires, &record)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		now := s.now()
		if now.UnixNano() >= expires {
			return nil
		}
		var sess store.Session
		if err := json.Unmarshal(record, &sess); err != nil {
			return fmt.Errorf("decoding record: %w", err)
		}
		sess.ID = id
		return out.Add(store.Event{Type: typ, CreatedAt: now, Session: &sess})
	})
}

// Sessions implements store.Store.Sessions: the user's live sessions,
// oldest first.
func (s *Store) Sessions(ctx context.Context, userID string) ([]*store.Session, error) {
	if !store.ValidID(userID) {
		return nil, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT id_hash, id_sealed, record FROM sessions WHERE user_id = $1 AND expires_ns > $2`,
		userID, s.now().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("listing sessions of user %s: %w", userID, err)
	}
	out, err := pgx.CollectRows(rows, s.scanSession)
	if err != nil {
		return nil, fmt.Errorf("listing sessions of user %s: %w", userID, err)
	}
	slices.SortFunc(out, func(x, y *store.Session) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
	return out, nil
}

func sessionAAD(hash []byte) string { return "session/" + string(hash) }

// scanSession decodes a session row selected as (id_hash, id_sealed,
// record): the id is stored sealed, keyed to its digest.
func (s *Store) scanSession(row pgx.CollectableRow) (*store.Session, error) {
	var hash, sealed, record []byte
	if err := row.Scan(&hash, &sealed, &record); err != nil {
		return nil, err
	}
	id, err := s.sealer.open(sealed, sessionAAD(hash))
	if err != nil {
		return nil, fmt.Errorf("a session id: %w", err)
	}
	var sess store.Session
	if err := json.Unmarshal(record, &sess); err != nil {
		return nil, fmt.Errorf("decoding a session: %w", err)
	}
	sess.ID = string(id)
	return &sess, nil
}

// PutEphemeral implements store.Store.PutEphemeral; a record put again
// under the same kind and id replaces the first. kind is a fixed name
// without "/"; id is opaque (it may come from a query string).
func (s *Store) PutEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration) error {
	return s.putEphemeral(ctx, kind, id, value, ttl, false)
}

// CreateEphemeral implements store.Store.CreateEphemeral: one INSERT that
// replaces only an expired row, so of concurrent creators exactly one
// writes it (the others wait for its commit, then find it live).
func (s *Store) CreateEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration) error {
	return s.putEphemeral(ctx, kind, id, value, ttl, true)
}

func (s *Store) putEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration, create bool) error {
	if err := store.CheckPutEphemeral(kind, id, ttl); err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.now()
	q := `INSERT INTO ephemeral (kind, id_hash, expires_ns, value) VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, id_hash) DO UPDATE SET expires_ns = excluded.expires_ns, value = excluded.value`
	args := []any{kind, digest(id), now.Add(ttl).UnixNano(), s.sealer.seal(value, ephemeralAAD(kind, id))}
	if create {
		q += ` WHERE ephemeral.expires_ns <= $5`
		args = append(args, now.UnixNano())
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrExists
	}
	if err != nil {
		return fmt.Errorf("storing %s record: %w", kind, err)
	}
	return nil
}

// TakeEphemeral implements store.Store.TakeEphemeral: one DELETE …
// RETURNING, so of concurrent takers exactly one gets the row.
func (s *Store) TakeEphemeral(ctx context.Context, kind, id string) ([]byte, error) {
	if err := store.CheckTakeEphemeral(kind, id); err != nil {
		return nil, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var expires int64
	var sealed []byte
	err := s.pool.QueryRow(ctx, `DELETE FROM ephemeral WHERE kind = $1 AND id_hash = $2 RETURNING expires_ns, value`,
		kind, digest(id)).Scan(&expires, &sealed)
	if err == nil && s.now().UnixNano() >= expires {
		err = pgx.ErrNoRows // expired: gone either way
	}
	if err != nil {
		return nil, fmt.Errorf("taking %s record: %w", kind, notFound(err))
	}
	value, err := s.sealer.open(sealed, ephemeralAAD(kind, id))
	if err != nil {
		return nil, fmt.Errorf("taking %s record: %w", kind, err)
	}
	return value, nil
}

func ephemeralAAD(kind, id string) string { return "ephemeral/" + kind + "/" + id }

// CreateRedirectURL implements store.Store.CreateRedirectURL.
func (s *Store) CreateRedirectURL(ctx context.Context, url string) (*store.RedirectURL, error) {
	if err := store.CheckRedirectURL(url); err != nil {
		return nil, fmt.Errorf("creating redirect URL: %w", err)
	}
	var out *store.RedirectURL
	err := s.write(ctx, func(tx pgx.Tx) error {
		now := s.now()
		ru := &store.RedirectURL{ID: store.NewID("ru"), URL: url, CreatedAt: now, UpdatedAt: now}
		record, err := json.Marshal(ru)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO redirect_urls (id, url, created_ns, record) VALUES ($1, $2, $3, $4)
			ON CONFLICT (url) DO NOTHING`, ru.ID, url, now.UnixNano(), record)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			out = ru
			return nil
		}
		if err := tx.QueryRow(ctx, `SELECT record FROM redirect_urls WHERE url = $1`, url).Scan(&record); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return store.ErrMoved // deleted since the insert found it
			}
			return err
		}
		var existing store.RedirectURL
		if err := json.Unmarshal(record, &existing); err != nil {
			return fmt.Errorf("decoding record: %w", err)
		}
		out = &existing
		return store.ErrExists
	})
	if errors.Is(err, store.ErrExists) {
		return out, store.ErrExists
	}
	if err != nil {
		return nil, fmt.Errorf("creating redirect URL: %w", err)
	}
	return out, nil
}

// RedirectURLs implements store.Store.RedirectURLs.
func (s *Store) RedirectURLs(ctx context.Context, q store.RedirectURLQuery) ([]*store.RedirectURL, int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var limit *int // NULL: no limit
	if q.Limit > 0 {
		limit = &q.Limit
	}
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM redirect_urls`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("counting redirect URLs: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT record FROM redirect_urls ORDER BY created_ns, id LIMIT $1 OFFSET $2`, limit, max(q.Offset, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("listing redirect URLs: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanRedirectURL)
	if err != nil {
		return nil, 0, fmt.Errorf("listing redirect URLs: %w", err)
	}
	return out, total, nil
}

// RedirectURLsVersion implements store.Store.RedirectURLsVersion: the
// counter that migration 0003's trigger moves.
func (s *Store) RedirectURLsVersion(ctx context.Context) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT version FROM redirect_urls_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading the redirect URLs version: %w", err)
	}
	return v, nil
}

// RedirectURL implements store.Store.RedirectURL.
func (s *Store) RedirectURL(ctx context.Context, id string) (*store.RedirectURL, error) {
	if !store.ValidID(id) {
		return nil, store.ErrNotFound
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT record FROM redirect_urls WHERE id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("loading redirect URL %s: %w", id, err)
	}
	ru, err := pgx.CollectExactlyOneRow(rows, scanRedirectURL)
	if err != nil {
		return nil, fmt.Errorf("loading redirect URL %s: %w", id, notFound(err))
	}
	return ru, nil
}

// DeleteRedirectURL implements store.Store.DeleteRedirectURL.
func (s *Store) DeleteRedirectURL(ctx context.Context, id string) error {
	if !store.ValidID(id) {
		return store.ErrNotFound
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM redirect_urls WHERE id = $1`, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("deleting redirect URL %s: %w", id, err)
	}
	return nil
}

func scanRedirectURL(row pgx.CollectableRow) (*store.RedirectURL, error) {
	var record []byte
	if err := row.Scan(&record); err != nil {
		return nil, err
	}
	var ru store.RedirectURL
	if err := json.Unmarshal(record, &ru); err != nil {
		return nil, fmt.Errorf("decoding record: %w", err)
	}
	return &ru, nil
}
