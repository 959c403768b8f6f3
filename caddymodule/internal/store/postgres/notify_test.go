package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// heard is what a Watcher was told, in order.
type heard struct {
	changed   chan []string
	listening chan struct{}
	lost      chan error
}

// watch starts s's listener for the test and waits until it listens.
func watch(t *testing.T, s *Store) *heard {
	t.Helper()
	h := &heard{changed: make(chan []string, 100), listening: make(chan struct{}, 10), lost: make(chan error, 10)}
	stop := s.Watch(Watcher{
		Changed:   func(ids []string) { h.changed <- ids },
		Listening: func() { h.listening <- struct{}{} },
		Lost:      func(err error) { h.lost <- err },
	})
	t.Cleanup(stop)
	h.waitListening(t)
	return h
}

func (h *heard) waitListening(t *testing.T) {
	t.Helper()
	select {
	case <-h.listening:
	case err := <-h.lost:
		t.Fatalf("the listener could not listen: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the listener is not listening after 10s")
	}
}

// next returns the next change heard, failing after a few seconds.
func (h *heard) next(t *testing.T, what string) []string {
	t.Helper()
	select {
	case ids := <-h.changed:
		return ids
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no notification within 5s", what)
		return nil
	}
}

// quiet checks that nothing was heard within a moment.
func (h *heard) quiet(t *testing.T, what string) {
	t.Helper()
	select {
	case ids := <-h.changed:
		t.Errorf("%s: heard %q, want nothing", what, ids)
	case <-time.After(200 * time.Millisecond):
	}
}

func signInAs(t *testing.T, s *Store, subject string) store.SignInResult {
	t.Helper()
	res, err := s.SignIn(context.Background(), store.SignIn{Account: store.ExternalAccount{Provider: "p", Issuer: "https://i.example", Subject: subject}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func newSession(t *testing.T, s *Store, userID string) *store.Session {
	t.Helper()
	sess := &store.Session{UserID: userID, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateSession(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	return sess
}

// Gateway B hears, at their commit, the changes gateway A makes that could
// leave B's caches stale, and nothing of what A rolls back or of another
// deployment on the same database.
func TestWatch_HearsEveryGatewaysChangesAtCommit(t *testing.T) {
	dsn := freshDSN(t)
	a, b := openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})
	other := openDSN(t, freshDSN(t), Options{}) // another schema of the database
	h := watch(t, b)
	ctx := context.Background()

	ada := signInAs(t, a, "ada")
	if ids := h.next(t, "sign-up"); !slices.Equal(ids, []string{ada.User.ID}) {
		t.Errorf("sign-up: heard %q, want the new account's user", ids)
	}
	sess := newSession(t, a, ada.User.ID)
	h.quiet(t, "a new session")
	for _, end := range []struct {
		name string
		fn   func(ctx context.Context, id string) error
	}{{"sign-out", a.DeleteSession}, {"revocation", a.RevokeSession}} {
		if end.name == "revocation" {
			sess = newSession(t, a, ada.User.ID)
		}
		if err := end.fn(ctx, sess.ID); err != nil {
			t.Fatal(err)
		}
		if ids := h.next(t, end.name); !slices.Equal(ids, []string{ada.User.ID}) {
			t.Errorf("%s: heard %q, want %s", end.name, ids, ada.User.ID)
		}
	}

	refused := errors.New("refused")
	if _, _, err := a.DeleteExternalAccount(ctx, ada.User.ID, ada.Account.ID, func([]*store.ExternalAccount) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("DeleteExternalAccount = %v", err)
	}
	h.quiet(t, "a refused unlink")
	bob := signInAs(t, other, "bob")
	if err := other.DeleteUser(ctx, bob.User.ID); err != nil {
		t.Fatal(err)
	}
	h.quiet(t, "changes in another schema")

	newSession(t, a, ada.User.ID)
	if err := a.DeleteUser(ctx, ada.User.ID); err != nil {
		t.Fatal(err)
	}
	if ids := h.next(t, "user deletion"); !slices.Equal(ids, []string{ada.User.ID}) {
		t.Errorf("user deletion: heard %q, want %s once", ids, ada.User.ID)
	}
}

// The listener's connection is killed: the watcher is told it was lost and,
// once the listener listens again, that it must start over; changes after
// that are heard again.
func TestWatch_ReconnectsAfterItsConnectionIsKilled(t *testing.T) {
	dsn := freshDSN(t)
	a, b := openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})
	h := watch(t, b)
	for round := range 2 {
		exec(t, a, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, b.listenerName())
		select {
		case <-h.lost:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the watcher was not told of the lost connection", round)
		}
		h.waitListening(t)
		res := signInAs(t, a, "after-"+string(rune('a'+round)))
		if ids := h.next(t, "a sign-up after the reconnection"); !slices.Equal(ids, []string{res.User.ID}) {
			t.Errorf("round %d: heard %q, want %s", round, ids, res.User.ID)
		}
	}
}

func TestNotification_NamesEachUserOnceAndEveryoneWhenTooMany(t *testing.T) {
	ev := func(typ, user string) store.PendingEvent { return store.PendingEvent{Type: typ, UserID: user} }
	many := make([]store.PendingEvent, 300)
	for i := range many {
		many[i] = ev(store.EventSessionRevoked, store.NewID("user"))
	}
	for _, tc := range []struct {
		name    string
		pending []store.PendingEvent
		want    string
	}{
		{"nothing", nil, ""},
		{"creations only", []store.PendingEvent{ev(store.EventUserCreated, "user_a"), ev(store.EventSessionCreated, "user_a")}, ""},
		{"one user, several events", []store.PendingEvent{ev(store.EventAccountDeleted, "user_a"), ev(store.EventUserDeleted, "user_a")}, "user_a"},
		{"two users", []store.PendingEvent{ev(store.EventSessionEnded, "user_a"), ev(store.EventSessionCreated, "user_b"), ev(store.EventUserUpdated, "user_b")}, "user_a user_b"},
		{"too many users", many, notifyAll},
	} {
		got := notification(tc.pending)
		if got != tc.want {
			t.Errorf("%s: notification = %.40q, want %q", tc.name, got, tc.want)
		}
		if len(got) > maxNotifyPayload {
			t.Errorf("%s: %d bytes, over the limit", tc.name, len(got))
		}
	}
	if token, got, ack := parsePayload("t1 " + notification(many[:3])); token != "t1" || len(got) != 3 || !strings.HasPrefix(got[0], "user_") || ack {
		t.Errorf("parsePayload = %q, %q, %v; want t1 and the three users", token, got, ack)
	}
	if token, got, ack := parsePayload("t2 " + notifyAll); token != "t2" || got != nil || ack {
		t.Errorf("parsePayload(%q) = %q, %q, %v; want t2 and nil (everyone)", notifyAll, token, got, ack)
	}
	if token, got, ack := parsePayload(ackPrefix + "t3"); token != "t3" || got != nil || !ack {
		t.Errorf("parsePayload(ack) = %q, %q, %v; want the answer to t3", token, got, ack)
	}
}

// A change returns only once every gateway's listener handled it: the
// caller of a revocation answers after every gateway forgot the session.
func TestWatch_AChangeReturnsOnceEveryListenerHandledIt(t *testing.T) {
	dsn := freshDSN(t)
	a, b := openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})
	watch(t, a) // the writer's own listener, which hears the answers
	var mu sync.Mutex
	var told []string
	stop := b.Watch(Watcher{Changed: func(ids []string) {
		time.Sleep(20 * time.Millisecond) // a slow gateway
		mu.Lock()
		told = append(told, ids...)
		mu.Unlock()
	}})
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var n int
		if err := a.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`,
			a.listenerName()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the listeners are not listening after 10s")
		}
	}
	ctx := context.Background()
	ada := signInAs(t, a, "ada")
	for range 10 {
		sess := newSession(t, a, ada.User.ID)
		mu.Lock()
		told = nil
		mu.Unlock()
		if err := a.RevokeSession(ctx, sess.ID); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		heard := slices.Contains(told, ada.User.ID)
		mu.Unlock()
		if !heard {
			t.Fatal("RevokeSession on A returned before B's listener handled it")
		}
	}
}
