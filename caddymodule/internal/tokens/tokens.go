// Package tokens keeps provider access tokens fresh: a token that expires
// within a skew is refreshed on read, once per account however many requests
// ask at the same moment (single-flight in the process, compare-and-swap in
// the store), and a rotated refresh token is stored in the same transaction
// as the new access token before anyone is handed it.
package tokens

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// DefaultSkew is how long before expiry a token counts as stale.
const DefaultSkew = 2 * time.Minute

// refreshTimeout bounds one refresh at the provider, whatever the caller's
// deadline: a refresh that finished is stored even if its caller left.
const refreshTimeout = 15 * time.Second

// Errors a caller turns into answers.
var (
	// ErrNeedsReauthorization means the account's grant is gone (revoked,
	// expired refresh token, or no refresh token and an expired access
	// token): the user must reconnect.
	ErrNeedsReauthorization = errors.New("the account needs reauthorization")
	// ErrUnavailable means the token is expired and the provider could not
	// refresh it right now; retry later.
	ErrUnavailable = errors.New("the provider could not refresh the token")
)

// AccountLocker is a store shared by several gateways that can hold a lock on
// one account across all of them (PostgreSQL's advisory locks).
type AccountLocker interface {
	WithAccountLock(ctx context.Context, accountID string, fn func(ctx context.Context) error) error
}

// Refresher is the part of a provider the engine uses.
type Refresher interface {
	Refresh(ctx context.Context, clientID, refreshToken string) (*oauth2.Token, error)
}

// Engine hands out fresh access tokens. Safe for concurrent use.
type Engine struct {
	store     store.Store
	providers func(name string) (Refresher, bool)
	skew      time.Duration
	now       func() time.Time
	logger    *zap.Logger
	flight    singleflight.Group
}

// Options configure an Engine.
type Options struct {
	Store store.Store
	// Providers finds the provider of an account by name.
	Providers func(name string) (Refresher, bool)
	Skew      time.Duration // default DefaultSkew
	Now       func() time.Time
	Logger    *zap.Logger
}

// New returns an Engine.
func New(o Options) *Engine {
	if o.Skew == 0 {
		o.Skew = DefaultSkew
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Engine{store: o.Store, providers: o.Providers, skew: o.Skew, now: o.Now, logger: o.Logger}
}

// Fresh returns the account with a token that is valid for at least the
// skew, refreshing it first when needed. A token that is still valid but
// within the skew is served when the provider cannot refresh it.
func (e *Engine) Fresh(ctx context.Context, a *store.ExternalAccount) (*store.ExternalAccount, error) {
	if a.Status == store.StatusNeedsReauthorization {
		return nil, ErrNeedsReauthorization
	}
	if e.fresh(a.Tokens) {
		return a, nil
	}
	// One refresh per account at a time: every concurrent caller shares it.
	// The refresh runs detached from any one caller's cancellation.
	ch := e.flight.DoChan(a.ID, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		locker, ok := e.store.(AccountLocker)
		if !ok {
			return e.refresh(ctx, a.ID)
		}
		// Several gateways share the store: one refresh per account across
		// all of them. The refresh re-reads the account under the lock, so
		// the gateways that waited find it fresh.
		var out *store.ExternalAccount
		err := locker.WithAccountLock(ctx, a.ID, func(ctx context.Context) error {
			var err error
			out, err = e.refresh(ctx, a.ID)
			return err
		})
		return out, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*store.ExternalAccount), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fresh reports whether a token is usable for at least the skew. A token
// without an expiry (GitHub OAuth apps) never goes stale.
func (e *Engine) fresh(t store.TokenSet) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || t.Expiry.After(e.now().Add(e.skew)))
}

// valid reports whether a token has not expired yet.
func (e *Engine) valid(t store.TokenSet) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || t.Expiry.After(e.now()))
}

func (e *Engine) refresh(ctx context.Context, id string) (*store.ExternalAccount, error) {
	// Re-read: another request (or instance) may have refreshed already.
	a, err := e.store.ExternalAccount(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading account: %w", err)
	}
	switch {
	case a.Status == store.StatusNeedsReauthorization:
		return nil, ErrNeedsReauthorization
	case e.fresh(a.Tokens):
		return a, nil
	case a.Tokens.RefreshToken == "":
		if e.valid(a.Tokens) {
			return a, nil
		}
		return e.needsReauthorization(ctx, a, "the access token expired and there is no refresh token")
	}
	p, ok := e.providers(a.Provider)
	if !ok {
		return e.serveOr(a, fmt.Errorf("%w: provider %s is not configured", ErrUnavailable, a.Provider))
	}
	old := a.Tokens.RefreshToken
	tok, err := p.Refresh(ctx, a.Tokens.ClientID, old)
	if errors.Is(err, provider.ErrInvalidGrant) {
		metrics.Refreshes.WithLabelValues(a.Provider, "invalid_grant").Inc()
		return e.needsReauthorization(ctx, a, "the provider refused the refresh token")
	}
	if err != nil {
		metrics.Refreshes.WithLabelValues(a.Provider, "error").Inc()
		e.logger.Warn("token refresh failed", zap.String("provider", a.Provider),
			zap.String("external_account_id", a.ID), zap.Error(err))
		return e.serveOr(a, fmt.Errorf("%w: %v", ErrUnavailable, err))
	}
	updated, err := e.store.UpdateExternalAccount(ctx, a.ID, func(cur *store.ExternalAccount) error {
		if cur.Tokens.RefreshToken != old {
			return store.ErrStale // refreshed meanwhile elsewhere: theirs wins
		}
		applyToken(cur, tok)
		return nil
	})
	if errors.Is(err, store.ErrStale) {
		return e.store.ExternalAccount(ctx, a.ID)
	}
	if err != nil {
		// The provider may have rotated the refresh token we failed to store;
		// the old one may be dead now. Say so loudly, never hand out the token.
		e.logger.Error("storing a refreshed token failed", zap.String("provider", a.Provider),
			zap.String("external_account_id", a.ID), zap.Error(err))
		return nil, fmt.Errorf("%w: storing the refreshed token: %v", ErrUnavailable, err)
	}
	metrics.Refreshes.WithLabelValues(a.Provider, "success").Inc()
	e.logger.Debug("token refreshed", zap.String("provider", a.Provider), zap.String("external_account_id", a.ID))
	return updated, nil
}

// serveOr serves a still-valid token when the provider cannot refresh it.
func (e *Engine) serveOr(a *store.ExternalAccount, err error) (*store.ExternalAccount, error) {
	if e.valid(a.Tokens) {
		return a, nil
	}
	return nil, err
}

func (e *Engine) needsReauthorization(ctx context.Context, a *store.ExternalAccount, why string) (*store.ExternalAccount, error) {
	rt := a.Tokens.RefreshToken
	_, err := e.store.UpdateExternalAccount(ctx, a.ID, func(cur *store.ExternalAccount) error {
		if cur.Tokens.RefreshToken != rt || e.fresh(cur.Tokens) {
			return store.ErrStale // someone refreshed meanwhile
		}
		cur.Status = store.StatusNeedsReauthorization
		return nil
	})
	if errors.Is(err, store.ErrStale) {
		return e.store.ExternalAccount(ctx, a.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("marking account: %w", err)
	}
	metrics.Reauthorizations.WithLabelValues(a.Provider).Inc()
	e.logger.Info("account needs reauthorization", zap.String("provider", a.Provider),
		zap.String("external_account_id", a.ID), zap.String("user_id", a.UserID), zap.String("reason", why))
	return nil, ErrNeedsReauthorization
}

// applyToken stores a refresh response: a provider that does not rotate the
// refresh token sends none, and the old one stays.
func applyToken(a *store.ExternalAccount, tok *oauth2.Token) {
	a.Tokens.AccessToken = tok.AccessToken
	a.Tokens.TokenType = tok.TokenType
	a.Tokens.Expiry = tok.Expiry
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
