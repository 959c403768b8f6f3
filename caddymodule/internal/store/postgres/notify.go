package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Every gateway on the database hears of every change at once, through
// PostgreSQL's LISTEN/NOTIFY. A transaction that records events (see
// writeWithEvents) also notifies the store's channel with a token that
// names the change and the ids of the users it is about; PostgreSQL
// delivers the notification to every listener when, and only if, the
// transaction commits. Each listener, once its caches have dropped those
// users, answers "ack <token>" on the channel, and the change returns to
// its caller when every listener has answered: a sign-out or a revocation
// is answered only after every gateway forgot the session.

// ListenerName starts the application_name of the listeners' connections
// (in pg_stat_activity); the channel follows it.
const ListenerName = "socialgate listener"

const (
	// maxNotifyPayload keeps a notification under PostgreSQL's limit of
	// 8000 bytes; a transaction about more users notifies notifyAll.
	maxNotifyPayload = 7000
	// notifyAll is the payload that means every user.
	notifyAll = "*"
	// ackPrefix starts a listener's answer to a change.
	ackPrefix = "ack "
	// heartbeat is how long the listener waits for a notification before it
	// checks that its connection still answers: a connection that died
	// without a word (a dropped network) is noticed within heartbeat plus
	// the query timeout.
	heartbeat = 15 * time.Second
	// The listener reconnects after minBackoff, doubling up to maxBackoff.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// maxAckWait bounds how long a change waits for the listeners'
	// answers: one that died without a word yet never answers.
	maxAckWait = 500 * time.Millisecond
)

// channelQuery names the notification channel of the store's schema:
// deployments in other schemas of one database (and the tests, one schema
// each) do not hear each other.
const channelQuery = `SELECT 'socialgate_' || substr(md5(current_database() || '.' || current_schema()), 1, 20)`

// listenerName is the application_name of the store's listeners.
func (s *Store) listenerName() string { return ListenerName + " " + s.channel }

// notify tells every listener, at the commit of tx, of the users pending's
// events are about, as the change of w; it reports how many listeners will
// answer (those connected now), 0 when there was nothing to tell or no
// answer will be waited for.
func (s *Store) notify(ctx context.Context, tx pgx.Tx, pending []store.PendingEvent, w *ackWait) (int, error) {
	users := notification(pending)
	if users == "" {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, w.token+" "+users); err != nil {
		return 0, fmt.Errorf("notifying the change: %w", err)
	}
	if w.done == nil {
		return 0, nil
	}
	var listeners int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, s.listenerName()).Scan(&listeners)
	if err != nil {
		return 0, fmt.Errorf("counting the listeners: %w", err)
	}
	return listeners, nil
}

// notification lists the users whose cached records pending's events may
// make stale, space-separated, or notifyAll; "" when there are none.
func notification(pending []store.PendingEvent) string {
	var b strings.Builder
	seen := map[string]bool{}
	for _, p := range pending {
		if !p.Invalidates() || seen[p.UserID] {
			continue
		}
		seen[p.UserID] = true
		if b.Len()+len(p.UserID)+1 > maxNotifyPayload {
			return notifyAll
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.UserID)
	}
	return b.String()
}

// parsePayload reads a notification: an answer (ack) to the change token,
// or the change token about users, nil meaning every user.
func parsePayload(payload string) (token string, users []string, ack bool) {
	if token, ack = strings.CutPrefix(payload, ackPrefix); ack {
		return token, nil, true
	}
	token, rest, _ := strings.Cut(payload, " ")
	if rest == notifyAll {
		return token, nil, false
	}
	return token, strings.Fields(rest), false
}

// Watcher receives what the listener hears.
type Watcher struct {
	// Changed is called with the ids of users whose sessions, linked
	// accounts or record another transaction changed (on this gateway or
	// any other), or with nil when a transaction changed too many to list:
	// every user. The change's maker waits for it to return.
	Changed func(userIDs []string)
	// Listening is called each time the listener starts listening: at first
	// and after each reconnection. Changes committed while it was not
	// listening were not heard, so whatever was cached must be read again.
	Listening func()
	// Lost is called once when the listener loses its connection, or cannot
	// make its first one, with the error. It retries with backoff until it
	// listens again (Listening), saying nothing more in between.
	Lost func(err error)
}

// Watch starts a listener on a connection of its own (outside the pool)
// that calls w until stop is called or the store is closed; stop returns
// once the listener has ended. While it listens, this store's changes wait
// for every listener's answer (at most maxAckWait).
func (s *Store) Watch(w Watcher) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer close(done)
		s.listen(ctx, w)
	}()
	return func() {
		cancel()
		<-done
	}
}

// listen runs listenOnce, reconnecting with jittered backoff, until ctx ends.
func (s *Store) listen(ctx context.Context, w Watcher) {
	backoff, lost := minBackoff, false
	for {
		err := s.listenOnce(ctx, w, func() { backoff, lost = minBackoff, false })
		if ctx.Err() != nil {
			return
		}
		if !lost && w.Lost != nil {
			w.Lost(err)
		}
		lost = true
		t := time.NewTimer(backoff/2 + mrand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listenOnce connects, listens, hands changes to w and answers them, until
// the connection fails or ctx ends. listening is called once it listens.
func (s *Store) listenOnce(ctx context.Context, w Watcher, listening func()) error {
	cfg := s.pool.Config().ConnConfig
	cfg.RuntimeParams["application_name"] = s.listenerName()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting the listener: %w", err)
	}
	defer func() {
		closing, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closing)
	}()
	if err := s.query(ctx, func(ctx context.Context) error {
		_, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize())
		return err
	}); err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	listening()
	if w.Listening != nil {
		w.Listening()
	}
	s.acks.listening(true)
	defer s.acks.listening(false)
	for {
		waiting, cancel := context.WithTimeout(ctx, heartbeat)
		n, err := conn.WaitForNotification(waiting)
		cancel()
		switch {
		case err == nil:
			token, users, ack := parsePayload(n.Payload)
			if ack {
				s.acks.answered(token)
				continue
			}
			if w.Changed != nil {
				w.Changed(users)
			}
			if err := s.query(ctx, func(ctx context.Context) error {
				_, err := conn.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, ackPrefix+token)
				return err
			}); err != nil {
				return fmt.Errorf("answering a change: %w", err)
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded):
			if err := s.query(ctx, conn.Ping); err != nil {
				return fmt.Errorf("the listener's connection does not answer: %w", err)
			}
		default:
			return fmt.Errorf("waiting for notifications: %w", err)
		}
	}
}

// query runs fn bounded by the store's query timeout.
func (s *Store) query(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.queryTimeout)
	defer cancel()
	return fn(ctx)
}

// acks are this store's changes waiting for the listeners' answers.
// Nothing waits while this store's own listener is not listening: it would
// not hear the answers.
type acks struct {
	mu      sync.Mutex
	on      bool
	waiting map[string]*ackWait
}

// ackWait is one change's wait for the listeners' answers.
type ackWait struct {
	token string
	a     *acks
	want  int // answers to wait for; -1 until known
	got   int
	done  chan struct{} // nil: nothing to wait for
	over  bool          // done is closed
}

// expect returns the wait of a change about to be made.
func (a *acks) expect() *ackWait {
	w := &ackWait{token: rand.Text(), a: a, want: -1}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.on {
		if a.waiting == nil {
			a.waiting = map[string]*ackWait{}
		}
		w.done = make(chan struct{})
		a.waiting[w.token] = w
	}
	return w
}

// wait waits until want listeners answered, at most maxAckWait.
func (w *ackWait) wait(ctx context.Context, want int) {
	if w.done == nil || want <= 0 {
		return
	}
	w.a.mu.Lock()
	w.want = want
	w.a.check(w)
	w.a.mu.Unlock()
	t := time.NewTimer(maxAckWait)
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// forget ends the wait.
func (w *ackWait) forget() {
	w.a.mu.Lock()
	defer w.a.mu.Unlock()
	delete(w.a.waiting, w.token)
}

// answered counts a listener's answer to the change token.
func (a *acks) answered(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w, ok := a.waiting[token]; ok {
		w.got++
		a.check(w)
	}
}

// check releases w once it has its answers; a.mu is held.
func (a *acks) check(w *ackWait) {
	if w.want >= 0 && w.got >= w.want {
		a.release(w)
	}
}

// release ends w's wait; a.mu is held.
func (a *acks) release(w *ackWait) {
	if !w.over {
		w.over = true
		close(w.done)
	}
	delete(a.waiting, w.token)
}

// listening records whether this store's listener listens; when it stops,
// every waiting change is released (it could not hear the answers).
func (a *acks) listening(on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.on = on
	if !on {
		for _, w := range a.waiting {
			a.release(w)
		}
	}
}
