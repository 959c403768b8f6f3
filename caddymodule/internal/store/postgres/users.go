package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// User implements store.Store.User.
func (s *Store) User(ctx context.Context, id string) (*store.User, error) {
	if !store.ValidID(id) {
		return nil, fmt.Errorf("loading user: %w", store.ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var record []byte
	if err := s.pool.QueryRow(ctx, `SELECT record FROM users WHERE id = $1`, id).Scan(&record); err != nil {
		return nil, fmt.Errorf("loading user %s: %w", id, notFound(err))
	}
	u, err := decodeUser(record)
	if err != nil {
		return nil, fmt.Errorf("loading user %s: %w", id, err)
	}
	return u, nil
}

// Users implements store.Store.Users: newest first (then by id), the page
// and the total read in one snapshot. With an email filter it matches every
// address of a user, verified or not, in any case.
func (s *Store) Users(ctx context.Context, q store.UserQuery) ([]*store.User, int, error) {
	limit, offset := q.Page()
	if !q.Indexed() {
		// No index serves a filter or another order: every candidate is
		// read and store.SelectUsers does the rest.
		limit, offset = math.MaxInt32, 0
	}
	count := `SELECT count(*) FROM users`
	page := `SELECT record FROM users ORDER BY created_ns DESC, id LIMIT $1 OFFSET $2`
	args := []any{limit, offset}
	if q.Email != "" {
		count = `SELECT count(*) FROM user_emails WHERE email_lower = $1`
		page = `SELECT u.record FROM user_emails e JOIN users u ON u.id = e.user_id
			WHERE e.email_lower = $3 ORDER BY u.created_ns DESC, u.id LIMIT $1 OFFSET $2`
		args = append(args, store.LookupEmail(q.Email))
	}
	var users []*store.User
	var total int
	err := s.read(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, count, args[2:]...).Scan(&total); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, page, args...)
		if err != nil {
			return err
		}
		users, err = collectUsers(rows)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing users: %w", err)
	}
	if !q.Indexed() {
		users, total = store.SelectUsers(users, q)
	}
	return users, total, nil
}

// lockUser reads and row-locks a user for an update that keeps its id
// (FOR NO KEY UPDATE lets sessions referencing the user be created
// meanwhile).
func lockUser(ctx context.Context, tx pgx.Tx, id string) (*store.User, error) {
	var record []byte
	if err := tx.QueryRow(ctx, `SELECT record FROM users WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&record); err != nil {
		return nil, notFound(err)
	}
	return decodeUser(record)
}

func insertUser(ctx context.Context, tx pgx.Tx, u *store.User) error {
	record, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encoding user: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO users (id, created_ns, record) VALUES ($1, $2, $3)`, u.ID, u.CreatedAt.UnixNano(), record)
	return err
}

func saveUser(ctx context.Context, tx pgx.Tx, u *store.User) error {
	record, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encoding user: %w", err)
	}
	tag, err := tx.Exec(ctx, `UPDATE users SET record = $2 WHERE id = $1`, u.ID, record)
	if err == nil && tag.RowsAffected() == 0 {
		err = errors.New("the user vanished while locked")
	}
	return err
}

// collectUsers decodes rows of one column, a user's record.
func collectUsers(rows pgx.Rows) ([]*store.User, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.User, error) {
		var record []byte
		if err := row.Scan(&record); err != nil {
			return nil, err
		}
		return decodeUser(record)
	})
}

func decodeUser(record []byte) (*store.User, error) {
	var u store.User
	if err := json.Unmarshal(record, &u); err != nil {
		return nil, fmt.Errorf("decoding record: %w", err)
	}
	return &u, nil
}
