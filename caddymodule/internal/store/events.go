package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Event types. The Clerk names where Clerk has the event; the
// external_account ones are socialgate's own.
const (
	EventUserCreated     = "user.created"
	EventUserUpdated     = "user.updated"
	EventUserDeleted     = "user.deleted"
	EventSessionCreated  = "session.created"
	EventSessionEnded    = "session.ended"
	EventSessionRevoked  = "session.revoked"
	EventAccountCreated  = "external_account.created"
	EventAccountDeleted  = "external_account.deleted"
	EventAccountReauthed = "external_account.reauthorization_required"
)

// EventAccountLinkedByEmail follows the external_account.created of an
// identity that joined an existing user by a shared verified address (see
// SignIn.EmailLink); the session.revoked events of that user's sessions
// follow it.
const EventAccountLinkedByEmail = "external_account.linked_by_email"

// EventTypes lists every event type, in the order docs/webhooks.md documents them.
var EventTypes = []string{
	EventUserCreated, EventUserUpdated, EventUserDeleted,
	EventSessionCreated, EventSessionEnded, EventSessionRevoked,
	EventAccountCreated, EventAccountLinkedByEmail, EventAccountDeleted, EventAccountReauthed,
}

// Event is a change recorded in the store's outbox in the same transaction
// as the change itself, so a crash loses no event and a change that did not
// commit has none. It carries a snapshot of what it is about, as the change
// left it and never with token material: User with Accounts (the user's
// linked accounts) for user.* events, Account for external_account.*,
// Session for session.*.
type Event struct {
	// ID is evt_, 16 hex digits that grow with every event of the store (the
	// unix-nano time of its commit, or one more than the previous event's
	// when the clock has not moved on), then random characters so that ids
	// of different stores never collide. Ids sort in commit order.
	ID        string             `json:"-"`
	Type      string             `json:"type"`
	CreatedAt time.Time          `json:"created_at"`
	User      *User              `json:"user,omitempty"`
	Accounts  []*ExternalAccount `json:"accounts,omitempty"`
	Account   *ExternalAccount   `json:"account,omitempty"`
	Session   *Session           `json:"session,omitempty"`
}

// Outbox collects the events of one transaction. Each is snapshotted as it
// is added: later changes to the records in the transaction don't reach it.
type Outbox struct{ pending []PendingEvent }

// PendingEvent is an event of a transaction that has not committed yet: no
// id, and its body is the Event's JSON.
type PendingEvent struct {
	Type      string
	CreatedAt time.Time
	Body      []byte
	// UserID is the user the event is about (of its User, Account or
	// Session), for caches that must forget what they hold of that user.
	UserID string
}

// Invalidates reports whether the event may make what a cache holds of its
// user stale: every event but the creation of a session or of a user, of
// which no cache can hold an older copy.
func (p PendingEvent) Invalidates() bool {
	return p.UserID != "" && p.Type != EventSessionCreated && p.Type != EventUserCreated
}

// Add snapshots e, its accounts stripped of their tokens.
func (o *Outbox) Add(e Event) error {
	e.Accounts = slices.Clone(e.Accounts)
	for i, a := range e.Accounts {
		e.Accounts[i] = withoutTokens(a)
	}
	if e.Account != nil {
		e.Account = withoutTokens(e.Account)
	}
	body, err := json.Marshal(&e)
	if err != nil {
		return fmt.Errorf("encoding %s event: %w", e.Type, err)
	}
	p := PendingEvent{Type: e.Type, CreatedAt: e.CreatedAt, Body: body}
	switch {
	case e.User != nil:
		p.UserID = e.User.ID
	case e.Account != nil:
		p.UserID = e.Account.UserID
	case e.Session != nil:
		p.UserID = e.Session.UserID
	}
	o.pending = append(o.pending, p)
	return nil
}

// Pending returns the events added so far, in order.
func (o *Outbox) Pending() []PendingEvent { return o.pending }

func withoutTokens(a *ExternalAccount) *ExternalAccount {
	c := *a
	c.Tokens = TokenSet{}
	return &c
}

// EventID returns the id of the event with sequence number seq.
func EventID(seq int64) string {
	var b [8]byte
	rand.Read(b[:]) // never fails (Go 1.24+)
	return fmt.Sprintf("evt_%016x%s", uint64(seq), idEncoding.EncodeToString(b[:]))
}

// EventsFrom returns the position in the outbox just before the first event
// committed at or after t: Events(ctx, EventsFrom(t), n) lists the events
// from t on. (An event's sequence number is its commit time in unix
// nanoseconds, or a little more when commits crowd one nanosecond.)
func EventsFrom(t time.Time) string {
	return fmt.Sprintf("evt_%016x", uint64(max(t.UnixNano(), 0)))
}

// EventTime returns the commit time in an event id, as EventsFrom takes
// it; ok is false when id is not an event id.
func EventTime(id string) (t time.Time, ok bool) {
	hex, ok := strings.CutPrefix(id, "evt_")
	if !ok || len(hex) <= 16 {
		return time.Time{}, false
	}
	seq, err := strconv.ParseUint(hex[:16], 16, 63)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, int64(seq)), true
}

// DecodeEvent decodes an event's stored body.
func DecodeEvent(id string, body []byte) (*Event, error) {
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("decoding event %s: %w", id, err)
	}
	e.ID = id
	return &e, nil
}

// Bounds of Events and of meta names.
const (
	maxEventsLimit = 1000
	maxMetaName    = 200
	// eventDeleteBatch is how many events one DeleteEventsBefore
	// transaction deletes.
	eventDeleteBatch = 1000
)

// EventsLimit clamps a requested number of events to 1–1000 (default 100).
func EventsLimit(limit int) int {
	if limit <= 0 {
		return 100
	}
	return min(limit, maxEventsLimit)
}

// ValidMetaName reports whether name can name a meta value.
func ValidMetaName(name string) bool {
	return name != "" && len(name) <= maxMetaName && !strings.ContainsRune(name, 0)
}

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
func (b *Badger) updateWithEvents(ctx context.Context, fn func(txn *badger.Txn, out *Outbox) error) error {
	return b.retry(ctx, func() error {
		if b.db.IsClosed() {
			return badger.ErrDBClosed
		}
		txn := b.db.NewTransaction(true)
		defer txn.Discard()
		var out Outbox
		if err := fn(txn, &out); err != nil {
			return err
		}
		if len(out.pending) == 0 {
			return txn.Commit()
		}
		done := make(chan error, 1)
		if err := b.sequence(txn, out.pending, done); err != nil {
			return err
		}
		return <-done
	})
}

// sequence gives the pending events their ids, writes them and the event
// clock into txn and starts its commit, whose result arrives on done.
func (b *Badger) sequence(txn *badger.Txn, pending []PendingEvent, done chan<- error) error {
	b.eventMu.Lock()
	defer b.eventMu.Unlock()
	seq := b.eventClock
	for _, p := range pending {
		seq = max(b.now().UnixNano(), seq+1)
		if err := txn.Set([]byte(prefixEvent+EventID(seq)), p.Body); err != nil {
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
func (b *Badger) loadEventClock() error {
	return b.db.View(func(txn *badger.Txn) error {
		s, err := getString(txn, []byte(keyEventClock))
		if errors.Is(err, ErrNotFound) {
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

// Events implements Store.Events.
func (b *Badger) Events(ctx context.Context, afterID string, limit int) ([]*Event, error) {
	limit = EventsLimit(limit)
	var out []*Event
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
			e, err := DecodeEvent(key[len(prefixEvent):], val)
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

// DeleteEventsBefore implements Store.DeleteEventsBefore, eventDeleteBatch
// events per transaction. The deletes are blind: events are never read in a
// write transaction, so they conflict with nothing.
func (b *Badger) DeleteEventsBefore(ctx context.Context, id string) error {
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
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return floor, err
}

// GetMeta implements Store.GetMeta.
func (b *Badger) GetMeta(ctx context.Context, name string) ([]byte, error) {
	if !ValidMetaName(name) {
		return nil, fmt.Errorf("reading %q: invalid name", name)
	}
	var out []byte
	err := b.view(ctx, func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(prefixMeta + name))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
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

// PutMeta implements Store.PutMeta.
func (b *Badger) PutMeta(ctx context.Context, name string, value []byte) error {
	if !ValidMetaName(name) {
		return fmt.Errorf("storing %q: invalid name", name)
	}
	err := b.update(ctx, func(txn *badger.Txn) error { return txn.Set([]byte(prefixMeta+name), value) })
	if err != nil {
		return fmt.Errorf("storing %s: %w", name, err)
	}
	return nil
}
