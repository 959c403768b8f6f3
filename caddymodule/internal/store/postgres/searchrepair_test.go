package postgres

import (
	"context"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// A database whose search rows went stale (a gateway of an older version,
// still running during a rolling upgrade, renamed a user and unlinked an
// account without touching user_terms) is made right when the index is
// built again: the old name and the gone account's subject find no one.
func TestOpen_RebuildingTheSearchIndexDropsStaleRows(t *testing.T) {
	dsn := freshDSN(t)
	ctx := context.Background()
	s := openDSN(t, dsn, Options{Infof: func(string, ...any) {}})
	res, err := s.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "test",
		Issuer: "https://issuer.example", Subject: "kept-subject", Name: "Current Name"}})
	if err != nil {
		t.Fatal(err)
	}
	uid := res.User.ID
	exec(t, s, `INSERT INTO user_terms (user_id, source, term, created_ns)
		SELECT id, '', 'oldname', created_ns FROM users WHERE id = $1
		UNION ALL SELECT id, 'eac_gone', 'gone-subject', created_ns FROM users WHERE id = $1`, uid)
	exec(t, s, `DELETE FROM meta WHERE name = 'search_index'`)
	s.Close()

	s = openDSN(t, dsn, Options{Infof: func(string, ...any) {}})
	for prefix, want := range map[string]int{"oldname": 0, "gone-subject": 0, "kept-subject": 1, "current": 1} {
		if found, err := s.SearchUsers(ctx, store.UserSearch{Prefix: prefix}); err != nil || found.Total != want {
			t.Errorf("search %q: %d users, %v; want %d", prefix, found.Total, err, want)
		}
	}
	if problems, err := s.Check(ctx); err != nil || len(problems) > 0 {
		t.Errorf("Check = %q, %v; want none", problems, err)
	}
}
