package tokens

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// errBackingOff is ErrUnavailable for an account whose last refresh failed
// and whose next may not be tried yet.
var errBackingOff = fmt.Errorf("%w: the last refresh failed and the next is not due yet", ErrUnavailable)

// errUnchanged ends a locked refresh that has nothing to store.
var errUnchanged = errors.New("nothing to store")

// outcome is what one attempt at refreshing an account came to.
type outcome struct {
	changed bool // the account holds changes to store
	// answered: the provider answered with tokens, perhaps with a rotated
	// refresh token that nothing but this answer holds now.
	answered bool
	err      error  // what the callers get once it is stored
	reauth   string // why the account came to need reauthorization, if it did
}

// refresh brings the stored account up to date: it reads it again (another
// request, gateway or sign-in may have refreshed it meanwhile), calls the
// provider when a refresh is still due, and stores the outcome.
func (e *Engine) refresh(ctx context.Context, id, providerName string) (*store.ExternalAccount, error) {
	if locker, ok := e.store.(store.AccountLocker); ok {
		return e.refreshLocked(ctx, locker, id, providerName)
	}
	a, err := e.store.ExternalAccount(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading the account: %w", err)
	}
	read := a.Tokens
	o := e.attempt(ctx, a)
	if !o.changed {
		return a, o.err
	}
	return e.save(id, read, a, o)
}

// refreshLocked is refresh under the account's lock, which the store holds
// from the read to the write: the provider's answer is stored without
// waiting for anyone.
func (e *Engine) refreshLocked(ctx context.Context, locker store.AccountLocker, id, providerName string) (*store.ExternalAccount, error) {
	var (
		read store.TokenSet
		acct *store.ExternalAccount
		o    outcome
	)
	stored, err := locker.RefreshExternalAccount(ctx, id, lockWait, func(ctx context.Context, a *store.ExternalAccount) error {
		read, acct = a.Tokens, a
		if o = e.attempt(ctx, a); !o.changed {
			return errUnchanged
		}
		return nil
	})
	switch {
	case err == nil:
		e.stored(stored, o)
		return stored, o.err
	case errors.Is(err, errUnchanged):
		return acct, o.err
	case acct != nil && o.changed:
		// The write under the lock failed (the connection was lost, or
		// the commit's outcome is unknown): store by compare-and-swap.
		e.logger.Warn("storing a refresh under the account's lock failed; retrying without it",
			zap.String("external_account_id", id), zap.Error(err))
		return e.save(id, read, acct, o)
	case errors.Is(err, store.ErrBusy):
		// Another gateway's refresh, or every lock slot, held out: no
		// provider call was made, and a still-valid token is served.
		metrics.Refreshes.WithLabelValues(providerName, "busy").Inc()
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil, fmt.Errorf("refreshing: %w", err)
}

// attempt refreshes a at the provider when a refresh is still due, and
// leaves in a what is to be stored.
func (e *Engine) attempt(ctx context.Context, a *store.ExternalAccount) outcome {
	switch {
	case a.Status == store.StatusNeedsReauthorization:
		return outcome{err: ErrNeedsReauthorization}
	case e.fresh(a.Tokens):
		return outcome{}
	case e.backingOff(a.Tokens): // failed meanwhile, here or on another gateway
		metrics.Refreshes.WithLabelValues(a.Provider, "backoff").Inc()
		return outcome{err: errBackingOff}
	case a.Tokens.RefreshToken == "":
		if e.valid(a.Tokens) {
			return outcome{}
		}
		a.Status = store.StatusNeedsReauthorization
		return outcome{changed: true, err: ErrNeedsReauthorization, reauth: "the access token expired and there is no refresh token"}
	}
	p, ok := e.providers(a.Provider)
	if !ok {
		return outcome{err: fmt.Errorf("%w: provider %s is not configured", ErrUnavailable, a.Provider)}
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	tok, err := p.Refresh(cctx, a.Tokens.ClientID, a.Tokens.RefreshToken)
	switch {
	case errors.Is(err, provider.ErrInvalidGrant):
		metrics.Refreshes.WithLabelValues(a.Provider, "invalid_grant").Inc()
		a.Status = store.StatusNeedsReauthorization
		return outcome{changed: true, err: ErrNeedsReauthorization, reauth: "the provider refused the refresh token"}
	case err != nil:
		metrics.Refreshes.WithLabelValues(a.Provider, "error").Inc()
		a.Tokens.RefreshFailures++
		a.Tokens.RetryAt = retryAt(a.Tokens, a.Tokens.RefreshFailures, e.now())
		msg := "token refresh failed; the account backs off"
		if errors.Is(err, provider.ErrRefused) {
			msg = "the provider refused the token refresh; the account backs off"
		}
		e.logger.Warn(msg, zap.String("provider", a.Provider),
			zap.String("external_account_id", a.ID), zap.Int("failures_in_a_row", a.Tokens.RefreshFailures),
			zap.Time("retry_at", a.Tokens.RetryAt), zap.Error(err))
		// The provider's error stays in the chain: callers tell a refusal
		// (provider.ErrRefused) from an outage.
		return outcome{changed: true, err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
	}
	metrics.Refreshes.WithLabelValues(a.Provider, "success").Inc()
	applyToken(a, tok)
	e.logger.Debug("token refreshed", zap.String("provider", a.Provider), zap.String("external_account_id", a.ID))
	return outcome{changed: true, answered: true}
}

// save stores a's changes unless the stored tokens moved on since they were
// read (another gateway or a sign-in got there first: theirs stand). A
// provider's answer is retried for up to saveTimeout, whatever the caller's
// deadline: it may hold the only copy of a rotated refresh token.
func (e *Engine) save(id string, read store.TokenSet, a *store.ExternalAccount, o outcome) (*store.ExternalAccount, error) {
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	for pause := 50 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		stored, err := e.store.UpdateExternalAccount(ctx, id, func(cur *store.ExternalAccount) error {
			if !sameGrant(cur.Tokens, read) {
				return store.ErrStale
			}
			cur.Tokens, cur.ApprovedScopes, cur.Status = a.Tokens, a.ApprovedScopes, a.Status
			return nil
		})
		switch {
		case err == nil:
			e.stored(stored, o)
			return stored, o.err
		case errors.Is(err, store.ErrStale), errors.Is(err, store.ErrNotFound):
			return e.current(ctx, id)
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if o.answered && ctx.Err() == nil {
			continue
		}
		metrics.Refreshes.WithLabelValues(a.Provider, "store_error").Inc()
		if o.answered {
			// Never hand out a token whose refresh token is not stored.
			e.logger.Error("storing a refreshed token failed: if the provider rotated the refresh token, the stored one "+
				"works again only within the provider's reuse grace", zap.String("provider", a.Provider),
				zap.String("external_account_id", id), zap.Error(err))
		} else {
			e.logger.Warn("storing the outcome of a refresh failed", zap.String("provider", a.Provider),
				zap.String("external_account_id", id), zap.Error(err))
		}
		return nil, fmt.Errorf("%w: storing the outcome of a refresh: %v", ErrUnavailable, err)
	}
}

// current reads the account as another writer left it.
func (e *Engine) current(ctx context.Context, id string) (*store.ExternalAccount, error) {
	a, err := e.store.ExternalAccount(ctx, id)
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading the account: %w", err)
	case a.Status == store.StatusNeedsReauthorization:
		return nil, ErrNeedsReauthorization
	}
	return a, nil
}

// stored reports what a stored outcome changed.
func (e *Engine) stored(a *store.ExternalAccount, o outcome) {
	if o.reauth == "" {
		return
	}
	metrics.Reauthorizations.WithLabelValues(a.Provider).Inc()
	e.logger.Info("account needs reauthorization", zap.String("provider", a.Provider),
		zap.String("external_account_id", a.ID), zap.String("user_id", a.UserID), zap.String("reason", o.reauth))
}

// sameGrant reports whether two token sets are one state of one grant: the
// compare of the compare-and-swap.
func sameGrant(x, y store.TokenSet) bool {
	return x.AccessToken == y.AccessToken && x.RefreshToken == y.RefreshToken && x.RefreshFailures == y.RefreshFailures
}

// applyToken stores a refresh response: a provider that does not rotate the
// refresh token sends none, and the old one stays. A success ends a backoff.
func applyToken(a *store.ExternalAccount, tok *oauth2.Token) {
	a.Tokens.AccessToken = tok.AccessToken
	a.Tokens.TokenType = tok.TokenType
	a.Tokens.Expiry = tok.Expiry
	a.Tokens.IssuedAt = IssuedAt(tok)
	a.Tokens.RefreshFailures, a.Tokens.RetryAt = 0, time.Time{}
	if tok.RefreshToken != "" {
		a.Tokens.RefreshToken = tok.RefreshToken
	}
	if id, ok := tok.Extra("id_token").(string); ok && id != "" {
		a.Tokens.IDToken = id
	}
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		a.ApprovedScopes = strings.Fields(s)
	}
}
