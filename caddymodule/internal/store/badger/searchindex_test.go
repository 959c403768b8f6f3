package badger

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// notes collects the store's Info messages about the search index.
type notes struct {
	mu    sync.Mutex
	lines []string
}

func (*notes) Errorf(string, ...any)   {}
func (*notes) Warningf(string, ...any) {}
func (*notes) Debugf(string, ...any)   {}

func (n *notes) Infof(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if line := fmt.Sprintf(format, args...); strings.Contains(line, "search index") {
		n.lines = append(n.lines, line)
	}
}

// unindex turns b into a store written before the search index: no
// idx/term or idx/user_terms keys, no version.
func unindex(t *testing.T, b *Store) {
	t.Helper()
	err := b.db.Update(func(txn *badger.Txn) error {
		for _, prefix := range []string{prefixTerm, prefixUserTerms} {
			keys, err := collectKeys(txn, prefix, 0)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if err := txn.Delete([]byte(prefix + k)); err != nil {
					return err
				}
			}
		}
		return txn.Delete([]byte(keySearchIndex))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A store written before the search index gets it at Open, in batches,
// logged; one left halfway resumes where it stopped; a store indexed
// already is left alone.
func TestOpen_BuildsTheSearchIndexOfAnOlderStore(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	open := func() (*Store, *notes) {
		log := &notes{}
		b, err := Open(Options{Dir: dir, Logger: log, BulkLoad: true})
		if err != nil {
			t.Fatal(err)
		}
		return b, log
	}
	b, _ := open()
	const n = 2*searchIndexBatch + 100
	for i := range n {
		u := &store.User{Name: fmt.Sprintf("Old Timer%04d", i)}
		if err := b.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	acc := account("subject-9", "", false)
	acc.Name = "Signed In"
	res, err := b.SignIn(ctx, store.SignIn{Account: acc})
	if err != nil {
		t.Fatal(err)
	}
	expect := func(b *Store) {
		t.Helper()
		for prefix, want := range map[string]int{"old": n, "timer0007": 1, "subject-": 1, "user_": n + 1} {
			found, err := b.SearchUsers(ctx, store.UserSearch{Prefix: prefix, Limit: 5})
			if err != nil || found.Total != want || len(found.Users) != min(want, 5) {
				t.Errorf("search %q: %d users, total %d, %v; want total %d", prefix, len(found.Users), found.Total, err, want)
			}
		}
		if problems, err := b.Check(ctx); err != nil || len(problems) > 0 {
			t.Errorf("Check = %q, %v", problems, err)
		}
	}
	expect(b)
	unindex(t, b)
	if found, _ := b.SearchUsers(ctx, store.UserSearch{Prefix: "old"}); found.Total != 0 {
		t.Fatalf("the unindexed store still finds %d users", found.Total)
	}
	b.Close()

	b, log := open()
	expect(b)
	if got := strings.Join(log.lines, "\n"); !strings.Contains(got, fmt.Sprintf("built the user search index: %d users", n+1)) {
		t.Errorf("the log says %q", got)
	}
	// Halfway: the first batch indexed, the rest not, the place noted.
	unindex(t, b)
	err = b.db.Update(func(txn *badger.Txn) error {
		keys, err := createdAfter(txn, "", searchIndexBatch)
		for _, k := range keys {
			if err == nil {
				err = indexUser(txn, k)
			}
		}
		if err != nil {
			return err
		}
		return txn.Set([]byte(keySearchIndexAt), []byte(keys[len(keys)-1]))
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b, log = open()
	expect(b)
	if got := strings.Join(log.lines, "\n"); !strings.Contains(got, "resuming after") ||
		!strings.Contains(got, fmt.Sprintf("built the user search index: %d users", n+1-searchIndexBatch)) {
		t.Errorf("the log says %q", got)
	}
	if _, _, err := b.DeleteExternalAccount(ctx, res.User.ID, res.Account.ID, nil); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b, log = open()
	defer b.Close()
	if len(log.lines) > 0 {
		t.Errorf("an indexed store was indexed again: %q", log.lines)
	}
	if found, _ := b.SearchUsers(ctx, store.UserSearch{Prefix: "subject-"}); found.Total != 0 {
		t.Errorf("the unlinked account's subject still finds its user")
	}
}
