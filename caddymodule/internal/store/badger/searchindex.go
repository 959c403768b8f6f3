package badger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// The search index's version: a store whose meta/search_index is below it
// is indexed again by indexSearch when it opens.
const (
	searchIndexVersion = 1
	keySearchIndex     = "meta/search_index"
	keySearchIndexAt   = "meta/search_index_at"
	// searchIndexBatch is how many users indexSearch indexes per transaction.
	searchIndexBatch = 500
)

// indexSearch builds the search index of a store written before it had one
// (or of an older version), at Open, before the store serves: every user's
// terms and its accounts', searchIndexBatch users per transaction, newest
// first. It notes how far it has got after each batch
// (meta/search_index_at), so that a store closed or crashed halfway
// resumes there; indexing a user twice changes nothing, and indexing one
// whose terms are stale (an older version changed it after a rollback)
// makes them right. It logs its start,
// its progress every 50,000 users and its end.
func (b *Store) indexSearch(logf func(format string, args ...any)) error {
	ctx := context.Background()
	var version int
	var at string
	err := b.view(ctx, func(txn *badger.Txn) error {
		v, err := getString(txn, []byte(keySearchIndex))
		if err == nil {
			version, err = strconv.Atoi(v)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		at, err = getString(txn, []byte(keySearchIndexAt))
		if errors.Is(err, store.ErrNotFound) {
			err = nil
		}
		return err
	})
	if err != nil || version >= searchIndexVersion {
		return err
	}
	build := store.NewIndexBuild(logf, searchIndexBatch, at)
	for {
		var keys []string
		err := b.update(ctx, func(txn *badger.Txn) error {
			var err error
			if keys, err = createdAfter(txn, at, searchIndexBatch); err != nil {
				return err
			}
			for _, key := range keys {
				if err := indexUser(txn, key); err != nil {
					return err
				}
			}
			if len(keys) < searchIndexBatch {
				if err := txn.Delete([]byte(keySearchIndexAt)); err != nil {
					return err
				}
				return txn.Set([]byte(keySearchIndex), strconv.AppendInt(nil, searchIndexVersion, 10))
			}
			return txn.Set([]byte(keySearchIndexAt), []byte(keys[len(keys)-1]))
		})
		if err != nil {
			return fmt.Errorf("building the user search index: %w", err)
		}
		if build.Indexed(len(keys)) {
			return nil
		}
		at = keys[len(keys)-1]
	}
}

// createdAfter returns up to limit idx/user_created keys (whole) after the
// key after, in key order (newest first).
func createdAfter(txn *badger.Txn, after string, limit int) ([]string, error) {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = []byte(prefixCreated)
	it := txn.NewIterator(opts)
	defer it.Close()
	var keys []string
	it.Rewind()
	if after != "" {
		it.Seek([]byte(after))
		if it.Valid() && string(it.Item().Key()) == after {
			it.Next()
		}
	}
	for ; it.Valid() && len(keys) < limit; it.Next() {
		keys = append(keys, string(it.Item().Key()))
	}
	return keys, nil
}

// indexUser writes the search terms of the user whose idx/user_created key
// is key, and of its accounts, and drops those of accounts it no longer
// has.
func indexUser(txn *badger.Txn, key string) error {
	_, id, _ := strings.Cut(key[len(prefixCreated):], "/")
	var u store.User
	if err := getJSON(txn, userKey(id), &u); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil // a stale entry; Check reports it
		}
		return fmt.Errorf("loading user %s: %w", id, err)
	}
	if err := setTerms(txn, u.ID, u.CreatedAt, "", store.UserTerms(&u)); err != nil {
		return err
	}
	accounts, err := accountsOf(txn, u.ID)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if err := setTerms(txn, u.ID, u.CreatedAt, a.ID, store.AccountTerms(a)); err != nil {
			return err
		}
	}
	// Terms of accounts that are gone: left by an older version that
	// unlinked them, when the index is built again.
	ts, err := readTerms(txn, termsKey(createdOrder(u.CreatedAt), u.ID))
	if err != nil {
		return err
	}
	for src := range ts {
		if src != "" && !slices.ContainsFunc(accounts, func(a *store.ExternalAccount) bool { return a.ID == src }) {
			if err := setTerms(txn, u.ID, u.CreatedAt, src, nil); err != nil {
				return err
			}
		}
	}
	return nil
}
