package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// unlockTimeout bounds giving a lock back, by unlocking or by closing the
// connection that holds it.
const unlockTimeout = 5 * time.Second

// WithAccountLock runs fn while holding the account's lock, which one caller
// at a time holds across every gateway on this database: a token refresh
// done inside fn (re-read the account, refresh only if still stale, store
// with UpdateExternalAccount) happens once per account however many requests
// on however many instances ask for it. Callers wait for the lock until ctx
// is done; fn gets ctx.
//
// The lock is a PostgreSQL session-level advisory lock (pg_advisory_lock),
// not a transaction's: it is held on one pooled connection for the whole of
// fn, which may take as long as a provider's token endpoint, and a
// transaction left open that long would be cut by an
// idle_in_transaction_session_timeout. fn runs its queries on other
// connections; WithAccountLock holds at most MaxConns/2 connections at once,
// so those queries always find one. If the connection is lost while fn runs
// (the database restarted), the lock is lost with it and another instance
// may start a refresh: the lock spares providers and rotated refresh tokens
// the race, and UpdateExternalAccount's compare-and-swap still decides it.
// The account need not exist.
func (s *Store) WithAccountLock(ctx context.Context, accountID string, fn func(ctx context.Context) error) error {
	if !validID(accountID) {
		return fmt.Errorf("locking account: %w", store.ErrNotFound)
	}
	select {
	case s.lockSlots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("locking account %s: %w", accountID, ctx.Err())
	}
	defer func() { <-s.lockSlots }()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("locking account %s: %w", accountID, err)
	}
	key := accountLockKey(accountID)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		// A wait cut short by ctx may have got the lock all the same: closing
		// the connection is the one sure way to give it back.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
		defer cancel()
		conn.Hijack().Close(cctx)
		return fmt.Errorf("locking account %s: %w", accountID, err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
		defer cancel()
		var released bool
		if err := conn.QueryRow(uctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&released); err != nil || !released {
			conn.Hijack().Close(uctx)
			return
		}
		conn.Release()
	}()
	return fn(ctx)
}

// accountLockKey maps an account id to an advisory lock key. Keys of other
// features are unlikely to collide with a 64-bit hash; a collision would only
// make two refreshes wait for each other.
func accountLockKey(accountID string) int64 {
	h := sha256.Sum256([]byte("socialgate account lock\x00" + accountID))
	return int64(binary.BigEndian.Uint64(h[:8]))
}
