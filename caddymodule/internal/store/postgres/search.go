package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// setTerms makes terms the user's search terms from source ("" for the
// user's own, an account id for the account's) in user_terms, in one
// statement: the rows of source that are not in terms go, the missing ones
// come.
func setTerms(ctx context.Context, tx pgx.Tx, userID string, created time.Time, source string, terms []string) error {
	if terms == nil {
		terms = []string{}
	}
	_, err := tx.Exec(ctx, `WITH gone AS (
			DELETE FROM user_terms WHERE user_id = $1 AND source = $2 AND term <> ALL($4::text[]))
		INSERT INTO user_terms (user_id, source, term, created_ns)
			SELECT $1, $2, t, $3 FROM unnest($4::text[]) AS t
		ON CONFLICT DO NOTHING`, userID, source, created.UnixNano(), terms)
	if err != nil {
		return fmt.Errorf("writing the search terms of user %s: %w", userID, err)
	}
	return nil
}

// setAccountTerms writes the account's search terms; its user is there (an
// account is inserted after its user, under its lock).
func setAccountTerms(ctx context.Context, tx pgx.Tx, a *store.ExternalAccount) error {
	var created int64
	if err := tx.QueryRow(ctx, `SELECT created_ns FROM users WHERE id = $1`, a.UserID).Scan(&created); err != nil {
		return fmt.Errorf("reading the user of account %s: %w", a.ID, notFound(err))
	}
	return setTerms(ctx, tx, a.UserID, time.Unix(0, created), a.ID, store.AccountTerms(a))
}

// SearchUsers implements store.Store.SearchUsers as store.Matches says: it
// reads the user_terms rows in the prefix's range (user_terms_prefix, at
// most store.SearchEntries of them); when more users match it walks the
// users newest first instead (users_newest_first), keeping those with a
// matching term (the primary key). The count and the page are read in one
// snapshot.
func (s *Store) SearchUsers(ctx context.Context, q store.UserSearch) (store.UserMatches, error) {
	prefix := store.SearchKey(q.Prefix)
	var res store.UserMatches
	if prefix == "" {
		return res, nil
	}
	limit, offset := store.UserQuery{Limit: q.Limit, Offset: q.Offset}.Page()
	end := store.SearchEnd(prefix)
	err := s.read(ctx, func(tx pgx.Tx) error {
		res = store.UserMatches{}
		ids, total, more, err := store.Matches(q, func(yield func(store.Match) bool) error {
			rows, err := tx.Query(ctx, `SELECT user_id, created_ns FROM user_terms WHERE term >= $1 AND term < $2 LIMIT $3`,
				prefix, end, store.SearchEntries+1)
			if err != nil {
				return err
			}
			defer rows.Close()
			var m store.Match
			_, err = pgx.ForEachRow(rows, []any{&m.UserID, &m.Created}, func() error {
				if !yield(m) {
					return errEnough
				}
				return nil
			})
			if errors.Is(err, errEnough) {
				err = nil
			}
			return err
		})
		if err != nil {
			return err
		}
		var rows pgx.Rows
		if more {
			res.Total, res.More = store.SearchCount, true
			rows, err = tx.Query(ctx, `SELECT record FROM users u WHERE EXISTS (
					SELECT 1 FROM user_terms t WHERE t.user_id = u.id AND t.term >= $1 AND t.term < $2)
				ORDER BY created_ns DESC, id LIMIT $3 OFFSET $4`, prefix, end, limit, offset)
		} else {
			res.Total = total
			rows, err = tx.Query(ctx, `SELECT record FROM users WHERE id = ANY($1) ORDER BY created_ns DESC, id`, ids)
		}
		if err != nil {
			return err
		}
		res.Users, err = collectUsers(rows)
		return err
	})
	if err != nil {
		return store.UserMatches{}, fmt.Errorf("searching users: %w", err)
	}
	return res, nil
}

// errEnough ends a row loop early; it never leaves the package.
var errEnough = errors.New("enough rows")

// The search index's version: a database whose meta search_index is below
// it is indexed again by indexSearch when a gateway opens it.
const (
	searchIndexVersion = 1
	searchIndexBatch   = 500
)

// indexSearch fills user_terms for the users of a database written before
// it had them (or an older version of them), at Open: searchIndexBatch
// users per transaction, by id, each user locked FOR SHARE while its terms
// are written, so a change of it running alongside (by a gateway that
// keeps the terms itself) waits or is waited for. It notes how far it has
// got after each batch (meta search_index_at), so that a gateway stopped
// halfway resumes there; indexing a user twice changes nothing, and
// indexing one whose rows are stale (written while a gateway of an older
// version changed the user) makes them right. It logs
// its start, its progress every 50,000 users and its end.
func (s *Store) indexSearch(ctx context.Context, logf func(format string, args ...any)) error {
	var version, at string
	err := s.pool.QueryRow(ctx, `SELECT
		coalesce((SELECT convert_from(value, 'UTF8') FROM meta WHERE name = 'search_index'), '0'),
		coalesce((SELECT convert_from(value, 'UTF8') FROM meta WHERE name = 'search_index_at'), '')`).Scan(&version, &at)
	if v, _ := strconv.Atoi(version); err != nil || v >= searchIndexVersion {
		return err
	}
	build := store.NewIndexBuild(logf, searchIndexBatch, at)
	for {
		var ids []string
		err := s.write(ctx, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT id, created_ns, record FROM users WHERE id > $1 ORDER BY id LIMIT $2 FOR SHARE`, at, searchIndexBatch)
			if err != nil {
				return err
			}
			type row struct {
				id      string
				created int64
				record  []byte
			}
			users, err := pgx.CollectRows(rows, func(cr pgx.CollectableRow) (row, error) {
				var r row
				return r, cr.Scan(&r.id, &r.created, &r.record)
			})
			if err != nil {
				return err
			}
			ids = ids[:0]
			for _, r := range users {
				u, err := decodeUser(r.record)
				if err != nil {
					return fmt.Errorf("user %s: %w", r.id, err)
				}
				if err := setTerms(ctx, tx, r.id, time.Unix(0, r.created), "", store.UserTerms(u)); err != nil {
					return err
				}
				ids = append(ids, r.id)
			}
			// Terms of accounts that are gone: left by a gateway of an older
			// version that unlinked them, when the index is built again.
			if _, err := tx.Exec(ctx, `DELETE FROM user_terms t WHERE t.user_id = ANY($1) AND t.source <> ''
				AND NOT EXISTS (SELECT 1 FROM external_accounts a WHERE a.id = t.source AND a.user_id = t.user_id)`, ids); err != nil {
				return err
			}
			rows, err = tx.Query(ctx, `SELECT id, user_id, subject FROM external_accounts WHERE user_id = ANY($1)`, ids)
			if err != nil {
				return err
			}
			accounts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*store.ExternalAccount, error) {
				var a store.ExternalAccount
				return &a, row.Scan(&a.ID, &a.UserID, &a.Subject)
			})
			if err != nil {
				return err
			}
			for _, a := range accounts {
				i := slices.IndexFunc(users, func(r row) bool { return r.id == a.UserID })
				if err := setTerms(ctx, tx, a.UserID, time.Unix(0, users[i].created), a.ID, store.AccountTerms(a)); err != nil {
					return err
				}
			}
			name, value := "search_index_at", ""
			if len(ids) == searchIndexBatch {
				value = ids[len(ids)-1]
			} else {
				name, value = "search_index", strconv.Itoa(searchIndexVersion)
				if _, err := tx.Exec(ctx, `DELETE FROM meta WHERE name = 'search_index_at'`); err != nil {
					return err
				}
			}
			_, err = tx.Exec(ctx, `INSERT INTO meta (name, value) VALUES ($1, convert_to($2, 'UTF8'))
				ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
			return err
		})
		if err != nil {
			return fmt.Errorf("building the user search index: %w", err)
		}
		if build.Indexed(len(ids)) {
			return nil
		}
		at = ids[len(ids)-1]
	}
}
