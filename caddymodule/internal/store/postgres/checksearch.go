package postgres

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// termRow is one user_terms row as Check keys it.
type termRow struct{ userID, source, term string }

// checkSearch checks user_terms against the users and accounts, both ways,
// as the Badger store's Check does its index: every term of a user
// (store.UserTerms, under the empty source) and of each of its accounts
// (store.AccountTerms, under the account's id) has its row, with the
// user's creation time, and no other row is there. Rows of a user or an
// account whose record does not decode are left alone: that is reported
// once, as such.
func (c *checker) checkSearch(ctx context.Context, tx pgx.Tx) error {
	want := map[termRow]bool{}
	for _, id := range c.userIDs {
		u := *c.users[id]
		u.ID = id // the row's id: a record that says another is reported as such
		for _, t := range store.UserTerms(&u) {
			want[termRow{id, "", t}] = true
		}
	}
	for id, a := range c.accounts {
		if c.users[a.UserID] == nil {
			continue
		}
		for _, t := range store.AccountTerms(a) {
			want[termRow{a.UserID, id, t}] = true
		}
	}
	err := each(ctx, tx, `SELECT user_id, source, term, created_ns FROM user_terms ORDER BY user_id, source, term`, func(row pgx.CollectableRow) error {
		var r termRow
		var created int64
		if err := row.Scan(&r.userID, &r.source, &r.term, &created); err != nil {
			return err
		}
		u := c.users[r.userID]
		switch {
		case u == nil || (r.source != "" && c.accounts[r.source] == nil):
			// an undecodable user or account, reported as such
		case !want[r]:
			c.reportf("user_terms row %q of user %s (source %q): the user has no such term", r.term, r.userID, r.source)
		case created != u.CreatedAt.UnixNano():
			c.reportf("user_terms row %q of user %s: created_ns %d but the user was created at %v", r.term, r.userID, created, u.CreatedAt)
		}
		delete(want, r)
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range slices.SortedFunc(maps.Keys(want), func(x, y termRow) int {
		return cmp.Or(strings.Compare(x.userID, y.userID), strings.Compare(x.source, y.source), strings.Compare(x.term, y.term))
	}) {
		c.reportf("user %s: no user_terms row for %q (source %q)", r.userID, r.term, r.source)
	}
	return nil
}
