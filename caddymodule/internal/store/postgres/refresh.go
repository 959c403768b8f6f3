package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// idleMargin is how much longer than its caller's deadline the server lets a
// refresh's transaction sit idle before ending it: a gateway that stopped
// answering (a network partition) does not keep the row locked for ever.
const idleMargin = 10 * time.Second

// RefreshExternalAccount runs fn on the account while holding the account's
// row lock, then stores in the same transaction the tokens, approved scopes
// and status fn left in it: one caller at a time, across every gateway on
// this database, refreshes an account, and once fn has called the provider
// its answer is written without waiting for any lock, so a crash has only the
// write itself to interrupt. The row is locked FOR NO KEY UPDATE, without its
// user's row: writers of the user (a sign-in, a link) that reach the account
// wait for fn, and fn's write waits for nobody.
//
// Waiting for the lock (another gateway is refreshing the account, or every
// lock slot is held) ends after wait with an error wrapping store.ErrBusy;
// fn is not called then. fn runs with ctx, which should carry a deadline:
// the server ends the transaction when it has been idle for ctx's remaining
// time plus a margin. The write after fn is bounded by the query timeout, not
// by ctx, so a refresh fn finished is stored even if ctx ended meanwhile.
// When fn returns an error, or leaves a half-written token set
// (TokenSet.Check), nothing is written; fn's error is returned as is.
// Entering needs_reauthorization records
// external_account.reauthorization_required, as UpdateExternalAccount does.
func (s *Store) RefreshExternalAccount(ctx context.Context, id string, wait time.Duration, fn func(ctx context.Context, a *store.ExternalAccount) error) (*store.ExternalAccount, error) {
	if !store.ValidID(id) {
		return nil, fmt.Errorf("refreshing account: %w", store.ErrNotFound)
	}
	deadline := time.Now().Add(wait)
	slotWait := time.NewTimer(wait)
	defer slotWait.Stop()
	select {
	case s.lockSlots <- struct{}{}:
	case <-slotWait.C:
		return nil, fmt.Errorf("refreshing account %s: %w: every lock slot stayed taken for %v", id, store.ErrBusy, wait)
	case <-ctx.Done():
		return nil, fmt.Errorf("refreshing account %s: %w", id, ctx.Err())
	}
	defer func() { <-s.lockSlots }()

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("refreshing account %s: %w", id, err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
		defer cancel()
		tx.Rollback(rctx) // a no-op after Commit
	}()
	idle := idleMargin
	if d, ok := ctx.Deadline(); ok {
		idle += time.Until(d)
	}
	// Integer milliseconds in simple-protocol SET LOCAL: no injection possible.
	_, err = tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d; SET LOCAL idle_in_transaction_session_timeout = %d`,
		max(time.Until(deadline).Milliseconds(), 1), idle.Milliseconds()))
	if err != nil {
		return nil, fmt.Errorf("refreshing account %s: %w", id, err)
	}
	var record, tokens []byte
	err = tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM external_accounts WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&record, &tokens)
	if pgCode(err) == "55P03" { // lock_not_available: lock_timeout passed
		return nil, fmt.Errorf("refreshing account %s: %w: its lock stayed taken for %v", id, store.ErrBusy, wait)
	}
	if err != nil {
		return nil, fmt.Errorf("refreshing account %s: %w", id, notFound(err))
	}
	old, err := s.decodeAccount(id, record, tokens)
	if err != nil {
		return nil, fmt.Errorf("refreshing account %s: %w", id, err)
	}
	acc := *old
	if err := fn(ctx, &acc); err != nil {
		return nil, err
	}
	// What a refresh may change, and nothing else: the email and the user
	// stay as locked, so the write needs no other row.
	next := *old
	next.Tokens, next.ApprovedScopes, next.Status = acc.Tokens, acc.ApprovedScopes, acc.Status
	if err := next.Tokens.Check(); err != nil {
		return nil, fmt.Errorf("refreshing account %s: %w", id, err)
	}
	next.UpdatedAt = s.now()
	wctx, cancel := s.bound(context.WithoutCancel(ctx))
	defer cancel()
	var events store.Outbox
	if err := store.ReauthorizationEvent(&events, old, &next); err != nil {
		return nil, fmt.Errorf("refreshing account %s: %w", id, err)
	}
	if err := s.saveAccount(wctx, tx, &next); err != nil {
		return nil, fmt.Errorf("refreshing account %s: storing: %w", id, err)
	}
	if err := s.writeEvents(wctx, tx, events.Pending()); err != nil {
		return nil, fmt.Errorf("refreshing account %s: storing events: %w", id, err)
	}
	if err := tx.Commit(wctx); err != nil {
		return nil, fmt.Errorf("refreshing account %s: committing: %w", id, err)
	}
	return &next, nil
}
