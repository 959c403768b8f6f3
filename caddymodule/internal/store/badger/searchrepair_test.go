package badger

import (
	"context"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// A store whose search terms went stale (a rollback to a version without
// the index renamed a user and unlinked an account) is made right when the
// index is built again: the old name and the gone account's subject find
// no one.
func TestOpen_RebuildingTheSearchIndexDropsStaleTerms(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	open := func() *Store {
		b, err := Open(Options{Dir: dir, Logger: &notes{}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := open()
	acc := account("kept-subject", "", false)
	acc.Name = "Current Name"
	u := mustSignIn(t, b, store.SignIn{Account: acc}).User
	err := b.db.Update(func(txn *badger.Txn) error {
		if err := setTerms(txn, u.ID, u.CreatedAt, "", []string{"oldname"}); err != nil {
			return err
		}
		if err := setTerms(txn, u.ID, u.CreatedAt, "eac_gone", []string{"gone-subject"}); err != nil {
			return err
		}
		return txn.Delete([]byte(keySearchIndex))
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()

	b = open()
	defer b.Close()
	for prefix, want := range map[string]int{"oldname": 0, "gone-subject": 0, "kept-subject": 1, "current": 1} {
		if found, err := b.SearchUsers(ctx, store.UserSearch{Prefix: prefix}); err != nil || found.Total != want {
			t.Errorf("search %q: %d users, %v; want %d", prefix, found.Total, err, want)
		}
	}
	if problems, err := b.Check(ctx); err != nil || len(problems) > 0 {
		t.Errorf("Check = %q, %v; want none", problems, err)
	}
}
