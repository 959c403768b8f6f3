package store

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
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
