package badger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Session counts (see store.ActiveSessions): meta/sessions/<hour>/<stripe>
// holds, in decimal, how many sessions expire in that hour, in that stripe
// of it. Hours are 12 digits, so the keys sort by hour.
const (
	prefixSessionCount = "meta/sessions/"
	// keySessionsCounted marks a store whose sessions are counted: one
	// written before the counters is counted once at Open.
	keySessionsCounted = "meta/sessions_counted"
)

func sessionCountKey(hour int64, stripe int) []byte {
	return fmt.Appendf(nil, "%s%012d/%d", prefixSessionCount, hour, stripe)
}

// countSession adds delta to the counter of s's expiry hour. A counter
// that comes to zero is deleted.
func countSession(txn *badger.Txn, s *store.Session, delta int64) error {
	key := sessionCountKey(store.ExpiryHour(s.ExpiresAt), store.SessionStripe(s.ID))
	n, err := getString(txn, key)
	var have int64
	if err == nil {
		have, err = strconv.ParseInt(n, 10, 64)
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("reading a session count: %w", err)
	}
	if have+delta == 0 {
		return txn.Delete(key)
	}
	return txn.Set(key, strconv.AppendInt(nil, have+delta, 10))
}

// ActiveSessions implements store.Store.ActiveSessions: the sum of the
// counters from this hour on.
func (b *Store) ActiveSessions(ctx context.Context) (int, error) {
	var total int64
	err := b.view(ctx, func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(prefixSessionCount)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(sessionCountKey(store.ExpiryHour(b.now()), 0)); it.Valid(); it.Next() {
			err := it.Item().Value(func(val []byte) error {
				n, err := strconv.ParseInt(string(val), 10, 64)
				total += n
				return err
			})
			if err != nil {
				return fmt.Errorf("decoding a session count: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("counting sessions: %w", err)
	}
	return int(max(total, 0)), nil
}

// pruneSessionCounts deletes the counters of the hours before this one.
func (b *Store) pruneSessionCounts(ctx context.Context) error {
	return b.update(ctx, func(txn *badger.Txn) error {
		keys, err := collectKeys(txn, prefixSessionCount, 0)
		if err != nil {
			return err
		}
		now := store.ExpiryHour(b.now())
		for _, rest := range keys {
			hour, _, _ := strings.Cut(rest, "/")
			if h, err := strconv.ParseInt(hour, 10, 64); err == nil && h >= now {
				break // keys sort by hour
			}
			if err := txn.Delete([]byte(prefixSessionCount + rest)); err != nil {
				return err
			}
		}
		return nil
	})
}

// countSessions counts the sessions of a store written before the
// counters, at Open: it reads every session, then writes the counters in
// one transaction.
func (b *Store) countSessions() error {
	ctx := context.Background()
	counts := map[string]int64{}
	err := b.view(ctx, func(txn *badger.Txn) error {
		if ok, err := exists(txn, []byte(keySessionsCounted)); err != nil || ok {
			counts = nil
			return err
		}
		return scan(txn, prefixSession, false, func(id string, val []byte) error {
			var s store.Session
			if err := json.Unmarshal(val, &s); err != nil {
				return nil // Check reports it
			}
			s.ID = id
			counts[string(sessionCountKey(store.ExpiryHour(s.ExpiresAt), store.SessionStripe(id)))]++
			return nil
		})
	})
	if err != nil || counts == nil {
		return err
	}
	return b.update(ctx, func(txn *badger.Txn) error {
		for key, n := range counts {
			if err := txn.Set([]byte(key), strconv.AppendInt(nil, n, 10)); err != nil {
				return err
			}
		}
		return txn.Set([]byte(keySessionsCounted), []byte("1"))
	})
}
