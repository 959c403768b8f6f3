package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// A database written before the search index gets it at Open, in
// batches, logged; one left halfway resumes where it stopped; one indexed
// already is left alone.
func TestOpen_BuildsTheSearchIndexOfAnOlderDatabase(t *testing.T) {
	dsn := freshDSN(t)
	ctx := context.Background()
	var mu sync.Mutex
	var lines []string
	open := func() *Store {
		lines = nil
		return openDSN(t, dsn, Options{Infof: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			lines = append(lines, fmt.Sprintf(format, args...))
		}})
	}
	s := open()
	const n = 2*searchIndexBatch + 100
	for i := range n {
		if err := s.CreateUser(ctx, &store.User{Name: fmt.Sprintf("Old Timer%04d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	acc := store.ExternalAccount{Provider: "test", Issuer: "https://issuer.example", Subject: "subject-9", Name: "Signed In"}
	res, err := s.SignIn(ctx, store.SignIn{Account: acc})
	if err != nil {
		t.Fatal(err)
	}
	expect := func(s *Store) {
		t.Helper()
		for prefix, want := range map[string]int{"old": n, "timer0007": 1, "subject-": 1, "user_": n + 1} {
			found, err := s.SearchUsers(ctx, store.UserSearch{Prefix: prefix, Limit: 5})
			if err != nil || found.Total != want || len(found.Users) != min(want, 5) {
				t.Errorf("search %q: %d users, total %d, %v; want total %d", prefix, len(found.Users), found.Total, err, want)
			}
		}
	}
	expect(s)
	exec(t, s, `DELETE FROM user_terms`)
	exec(t, s, `DELETE FROM meta WHERE name = 'search_index'`)
	s.Close()
	s = open()
	expect(s)
	if got := strings.Join(lines, "\n"); !strings.Contains(got, fmt.Sprintf("built the user search index: %d users", n+1)) {
		t.Errorf("the log says %q", got)
	}
	// Halfway: the first batch (by id) indexed, the rest not, the place noted.
	var at string
	if err := s.pool.QueryRow(ctx, `SELECT id FROM users ORDER BY id OFFSET $1 LIMIT 1`, searchIndexBatch-1).Scan(&at); err != nil {
		t.Fatal(err)
	}
	exec(t, s, `DELETE FROM user_terms WHERE user_id > $1`, at)
	exec(t, s, `DELETE FROM meta WHERE name = 'search_index'`)
	exec(t, s, `INSERT INTO meta (name, value) VALUES ('search_index_at', convert_to($1, 'UTF8'))`, at)
	s.Close()
	s = open()
	expect(s)
	if got := strings.Join(lines, "\n"); !strings.Contains(got, "resuming after "+at) ||
		!strings.Contains(got, fmt.Sprintf("built the user search index: %d users", n+1-searchIndexBatch)) {
		t.Errorf("the log says %q", got)
	}
	if _, _, err := s.DeleteExternalAccount(ctx, res.User.ID, res.Account.ID, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open()
	if len(lines) > 0 {
		t.Errorf("an indexed database was indexed again: %q", lines)
	}
	if found, _ := s.SearchUsers(ctx, store.UserSearch{Prefix: "subject-"}); found.Total != 0 {
		t.Errorf("the unlinked account's subject still finds its user")
	}
}
