package badger

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// The search index (see store.UserTerms): one key per term of a user,
// idx/term/<term>\x00<order>/<user id>, empty, and the user's terms by where
// they come from in idx/user_terms/<order>/<user id> (termSources), which
// tells a change which keys to drop and a broad search, walking them newest
// first, whether a user matches without reading it. (idx/user_created stays
// keys alone: the user list walks it.)

// termKey is the search index key of one of a user's terms.
func termKey(term, order, userID string) []byte {
	return []byte(prefixTerm + term + "\x00" + order + "/" + userID)
}

// termSources are a user's search terms by where they come from: "" for
// the user's own (store.UserTerms), an account's id for the account's
// (store.AccountTerms). It is the JSON value of the user's idx/user_terms
// entry.
type termSources map[string][]string

// all returns every term of ts, sorted, each once.
func (ts termSources) all() []string {
	var all []string
	for _, terms := range ts {
		all = append(all, terms...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// match reports whether one of ts starts with prefix.
func (ts termSources) match(prefix string) bool {
	for _, terms := range ts {
		if store.TermsMatch(terms, prefix) {
			return true
		}
	}
	return false
}

// termsKey is the key of the user's termSources.
func termsKey(order, userID string) []byte { return []byte(prefixUserTerms + order + "/" + userID) }

// readTerms reads the user's terms from its idx/user_terms entry; a
// missing entry (not yet indexed) has none.
func readTerms(txn *badger.Txn, key []byte) (termSources, error) {
	ts := termSources{}
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ts, nil
	}
	if err != nil {
		return nil, err
	}
	err = item.Value(func(val []byte) error {
		if len(val) == 0 {
			return nil
		}
		return json.Unmarshal(val, &ts)
	})
	if err != nil {
		return nil, fmt.Errorf("decoding the search terms of a user: %w", err)
	}
	return ts, nil
}

// setTerms makes terms the user's terms from source, in the search index
// and in the user's idx/user_terms entry (created is the user's CreatedAt).
// Only the index keys that change are written.
func setTerms(txn *badger.Txn, userID string, created time.Time, source string, terms []string) error {
	order := createdOrder(created)
	key := termsKey(order, userID)
	ts, err := readTerms(txn, key)
	if err != nil {
		return err
	}
	old := ts.all()
	if len(terms) == 0 {
		delete(ts, source)
	} else {
		ts[source] = terms
	}
	now := ts.all()
	for _, t := range old {
		if _, ok := slices.BinarySearch(now, t); !ok {
			if err := txn.Delete(termKey(t, order, userID)); err != nil {
				return err
			}
		}
	}
	for _, t := range now {
		if _, ok := slices.BinarySearch(old, t); !ok {
			if err := txn.Set(termKey(t, order, userID), nil); err != nil {
				return err
			}
		}
	}
	val, err := json.Marshal(ts)
	if err != nil {
		return err
	}
	return txn.Set(key, val)
}

// dropTerms deletes every search index key of u, and its idx/user_terms
// entry.
func dropTerms(txn *badger.Txn, u *store.User) error {
	order := createdOrder(u.CreatedAt)
	ts, err := readTerms(txn, termsKey(order, u.ID))
	if err != nil {
		return err
	}
	for _, t := range ts.all() {
		if err := txn.Delete(termKey(t, order, u.ID)); err != nil {
			return err
		}
	}
	return txn.Delete(termsKey(order, u.ID))
}

// setAccountTerms makes the account's terms (none when gone) its user's,
// when the user is there.
func setAccountTerms(txn *badger.Txn, a *store.ExternalAccount, gone bool) error {
	var u store.User
	err := getJSON(txn, userKey(a.UserID), &u)
	if errors.Is(err, store.ErrNotFound) {
		return nil // an account whose user is gone has nothing indexed
	}
	if err != nil {
		return err
	}
	var terms []string
	if !gone {
		terms = store.AccountTerms(a)
	}
	return setTerms(txn, u.ID, u.CreatedAt, a.ID, terms)
}

// orderNanos is the CreatedAt, in unix nanoseconds, that createdOrder
// encoded as order.
func orderNanos(order string) (int64, error) {
	b, err := hex.DecodeString(order)
	if err != nil || len(b) != 8 {
		return 0, fmt.Errorf("a malformed creation order %q", order)
	}
	return int64(^binary.BigEndian.Uint64(b) ^ 1<<63), nil
}

// SearchUsers implements store.Store.SearchUsers as store.Matches says:
// it reads the search index key-only under the prefix; when more than
// store.SearchCount users match it walks idx/user_terms newest first
// instead, keeping the users whose terms match. Either
// way it loads only the users of the page, in one snapshot.
func (b *Store) SearchUsers(ctx context.Context, q store.UserSearch) (store.UserMatches, error) {
	prefix := store.SearchKey(q.Prefix)
	var res store.UserMatches
	if prefix == "" {
		return res, nil
	}
	err := b.view(ctx, func(txn *badger.Txn) error {
		ids, total, more, err := store.Matches(q, func(yield func(store.Match) bool) error {
			return scanKeys(txn, prefixTerm+prefix, func(rest string) error {
				_, entry, _ := strings.Cut(rest, "\x00")
				order, id, _ := strings.Cut(entry, "/")
				created, err := orderNanos(order)
				if err != nil {
					return err
				}
				if !yield(store.Match{UserID: id, Created: created}) {
					return errStopScan
				}
				return nil
			})
		})
		if errors.Is(err, errStopScan) {
			err = nil
		}
		if err != nil {
			return err
		}
		res.Total, res.More = total, more
		if more {
			res.Total = store.SearchCount
			if ids, err = broadSearch(txn, prefix, q); err != nil {
				return err
			}
		}
		res.Users, err = loadUsers(txn, ids)
		return err
	})
	if err != nil {
		return store.UserMatches{}, fmt.Errorf("searching users: %w", err)
	}
	return res, nil
}

// broadSearch returns the ids of q's page of the users whose terms start
// with prefix, walking idx/user_terms newest first.
func broadSearch(txn *badger.Txn, prefix string, q store.UserSearch) ([]string, error) {
	limit, offset := store.UserQuery{Limit: q.Limit, Offset: q.Offset}.Page()
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(prefixUserTerms)
	it := txn.NewIterator(opts)
	defer it.Close()
	var ids []string
	for it.Rewind(); it.Valid() && len(ids) < limit; it.Next() {
		var ts termSources
		err := it.Item().Value(func(val []byte) error {
			if len(val) == 0 {
				return nil
			}
			return json.Unmarshal(val, &ts)
		})
		if err != nil {
			return nil, fmt.Errorf("decoding the search terms of a user: %w", err)
		}
		if !ts.match(prefix) {
			continue
		}
		if offset > 0 {
			offset--
			continue
		}
		_, id, _ := strings.Cut(string(it.Item().Key()[len(prefixUserTerms):]), "/")
		ids = append(ids, id)
	}
	return ids, nil
}
