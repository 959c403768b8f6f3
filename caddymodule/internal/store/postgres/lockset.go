package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
)

// lockKey maps a lock's name ($1) to an advisory lock key of the schema in
// use, so that gateways on other schemas of one database do not meet.
const lockKey = `hashtextextended('socialgate lock ' || $1 || ' ' || current_schema(), 0)`

// lockSet is what TryLock holds: its locks, and the connection they are on
// while there are any.
type lockSet struct {
	mu   sync.Mutex
	conn *pgxpool.Conn
	held map[string]bool
}

// TryLock takes the lock called name when no session on this database
// holds it (this gateway included), and reports whether it did; Unlock
// gives it back. It is how gateways sharing the database share out work
// that one of them at a time may do, such as delivering to one webhook
// endpoint: each takes the locks that are free and skips the others.
//
// The locks are session-level advisory locks, all on one pooled connection
// held while the gateway holds any of them, and counted among the
// MaxConns/2 that locks may hold (when all are held, TryLock takes
// nothing): however many locks a gateway holds, and however long, they
// cost one connection. If that connection is lost (the database
// restarted), every lock on it is lost with it, and another gateway may
// take them while their holders here still work; the next TryLock or
// Unlock finds out and starts afresh.
func (s *Store) TryLock(ctx context.Context, name string) (bool, error) {
	l := &s.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[name] {
		return false, nil
	}
	if l.conn == nil {
		select {
		case s.lockSlots <- struct{}{}:
		default:
			return false, nil
		}
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			<-s.lockSlots
			return false, fmt.Errorf("locking %s: %w", name, err)
		}
		l.conn, l.held = conn, map[string]bool{}
	}
	// Not cut short by ctx: an answer lost midway would leave the gateway
	// unsure whether it holds the lock, and the other locks would be lost
	// with the connection closed to be sure.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
	defer cancel()
	var got bool
	if err := l.conn.QueryRow(qctx, `SELECT pg_try_advisory_lock(`+lockKey+`)`, name).Scan(&got); err != nil {
		s.dropLocks(qctx)
		return false, fmt.Errorf("locking %s: %w", name, err)
	}
	if got {
		l.held[name] = true
	}
	s.releaseLockConn()
	return got, nil
}

// Unlock gives back a lock that TryLock took (nothing, when the lock was
// lost with its connection).
func (s *Store) Unlock(name string) {
	l := &s.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held[name] {
		return
	}
	delete(l.held, name)
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	var released bool
	if err := l.conn.QueryRow(ctx, `SELECT pg_advisory_unlock(`+lockKey+`)`, name).Scan(&released); err != nil || !released {
		s.dropLocks(ctx)
		return
	}
	s.releaseLockConn()
}

// dropLocks, with s.locks.mu held, closes the locks' connection: the one
// sure way to give every lock on it back.
func (s *Store) dropLocks(ctx context.Context) {
	s.locks.conn.Hijack().Close(ctx)
	s.locks.conn, s.locks.held = nil, nil
	<-s.lockSlots
}

// releaseLockConn, with s.locks.mu held, returns the locks' connection to
// the pool once no lock is held on it.
func (s *Store) releaseLockConn() {
	if l := &s.locks; l.conn != nil && len(l.held) == 0 {
		l.conn.Release()
		l.conn, l.held = nil, nil
		<-s.lockSlots
	}
}
