package badger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// eventDeleteBatch is how many events one DeleteEventsBefore transaction
// deletes.
const eventDeleteBatch = 1000

// Keys of the outbox (see the layout in badger.go).
const (
	prefixEvent   = "evt/"
	prefixMeta    = "kv/"
	keyEventClock = "meta/event_clock"
	// keyEventsPruned holds where the events that remain begin: every event
	// key below evt/ + its value has been deleted. Reads start there
	// instead of walking the deleted keys' tombstones, which Badger keeps
	// until compaction reaches the last level.
	keyEventsPruned = "meta/events_pruned"
)

// updateWithEvents is update for a change that records events: fn adds them
// to the outbox it is given, and they are written in its transaction.
//
// Ids must grow in commit order (see Store.Events), so the id of each event
// is drawn, under eventMu, in the same step as Badger's commit timestamp:
// CommitWith takes the timestamp and queues the writes before it returns,
// and Badger makes commits visible in timestamp order. Only that step is
// serialized, not the disk sync that follows.
func (b *Store) updateWithEvents(ctx context.Context, fn func(txn *badger.Txn, out *store.Outbox) error) error {
	return b.retry(ctx, func() error {
		if b.db.IsClosed() {
			return badger.ErrDBClosed
		}
		txn := b.db.NewTransaction(true)
		defer txn.Discard()
		var out store.Outbox
		if err := fn(txn, &out); err != nil {
			return err
		}
		if len(out.Pending()) == 0 {
			return txn.Commit()
		}
		done := make(chan error, 1)
		if err := b.sequence(txn, out.Pending(), done); err != nil {
			return err
		}
		return <-done
	})
}

// sequence gives the pending events their ids, writes them and the event
// clock into txn and starts its commit, whose result arrives on done.
func (b *Store) sequence(txn *badger.Txn, pending []store.PendingEvent, done chan<- error) error {
	b.eventMu.Lock()
	defer b.eventMu.Unlock()
	seq := b.eventClock
	for _, p := range pending {
		seq = max(b.now().UnixNano(), seq+1)
		if err := txn.Set([]byte(prefixEvent+store.EventID(seq)), p.Body); err != nil {
			return err
		}
	}
	// Written blind (never read in a transaction), so it conflicts with
	// nothing; the last commit holds the largest value.
	if err := txn.Set([]byte(keyEventClock), strconv.AppendInt(nil, seq, 10)); err != nil {
		return err
	}
	txn.CommitWith(func(err error) { done <- err })
	// A commit that fails leaves a gap in the sequence, which is harmless.
	b.eventClock = seq
	return nil
}

// loadEventClock reads the last event sequence number at Open.
func (b *Store) loadEventClock() error {
	return b.db.View(func(txn *badger.Txn) error {
		s, err := getString(txn, []byte(keyEventClock))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		b.eventClock, err = strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("decoding the event clock: %w", err)
		}
		return nil
	})
}

// Events implements store.Store.Events.
func (b *Store) Events(ctx context.Context, afterID string, limit int) ([]*store.Event, error) {
	limit = store.EventsLimit(limit)
	var out []*store.Event
	err := b.view(ctx, func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(prefixEvent)
		opts.PrefetchSize = min(limit, 100)
		it := txn.NewIterator(opts)
		defer it.Close()
		after := prefixEvent + afterID
		floor, err := eventsFloor(txn)
		if err != nil {
			return err
		}
		start := max(after, prefixEvent+floor)
		for it.Seek([]byte(start)); it.Valid() && len(out) < limit; it.Next() {
			item := it.Item()
			key := string(item.Key())
			if key == after {
				continue
			}
			val, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			e, err := store.DecodeEvent(key[len(prefixEvent):], val)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	return out, nil
}

// DeleteEventsBefore implements store.Store.DeleteEventsBefore, eventDeleteBatch
// events per transaction. The deletes are blind: events are never read in a
// write transaction, so they conflict with nothing.
func (b *Store) DeleteEventsBefore(ctx context.Context, id string) error {
	// Each batch starts where the one before ended, and the first where the
	// last pruning ended (keyEventsPruned): deleted keys stay in the LSM tree
	// as tombstones until compaction, and an iterator walks over them, so
	// starting at the prefix would make pruning a long backlog quadratic and
	// every later pruning walk it again.
	end := []byte(prefixEvent + id)
	var from []byte
	for {
		var keys [][]byte
		err := b.view(ctx, func(txn *badger.Txn) error {
			if from == nil {
				floor, err := eventsFloor(txn)
				if err != nil {
					return err
				}
				from = []byte(prefixEvent + floor)
			}
			opts := badger.DefaultIteratorOptions
			opts.PrefetchValues = false
			opts.Prefix = []byte(prefixEvent)
			it := txn.NewIterator(opts)
			defer it.Close()
			for it.Seek(from); it.Valid() && len(keys) < eventDeleteBatch; it.Next() {
				k := it.Item().KeyCopy(nil)
				if bytes.Compare(k, end) >= 0 {
					break
				}
				keys = append(keys, k)
			}
			return nil
		})
		if err == nil && len(keys) > 0 {
			// The next key after the last one deleted.
			from = append(keys[len(keys)-1], 0)
			err = b.update(ctx, func(txn *badger.Txn) error {
				for _, k := range keys {
					if err := txn.Delete(k); err != nil {
						return err
					}
				}
				return txn.Set([]byte(keyEventsPruned), from[len(prefixEvent):])
			})
		}
		if err != nil {
			return fmt.Errorf("deleting events: %w", err)
		}
		if len(keys) < eventDeleteBatch {
			return nil
		}
	}
}

// eventsFloor is where the events that remain begin (keyEventsPruned), ""
// before the first pruning.
func eventsFloor(txn *badger.Txn) (string, error) {
	floor, err := getString(txn, []byte(keyEventsPruned))
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	return floor, err
}

// GetMeta implements store.Store.GetMeta.
func (b *Store) GetMeta(ctx context.Context, name string) ([]byte, error) {
	if !store.ValidMetaName(name) {
		return nil, fmt.Errorf("reading %q: invalid name", name)
	}
	var out []byte
	err := b.view(ctx, func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixMeta + name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return out, nil
}

// PutMeta implements store.Store.PutMeta.
func (b *Store) PutMeta(ctx context.Context, name string, value []byte) error {
	if !store.ValidMetaName(name) {
		return fmt.Errorf("storing %q: invalid name", name)
	}
	err := b.update(ctx, func(txn *badger.Txn) error { return txn.Set([]byte(prefixMeta+name), value) })
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	return nil
}
