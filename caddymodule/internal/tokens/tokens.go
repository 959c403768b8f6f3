// Package tokens keeps provider access tokens fresh: a token that expires
// within a skew is refreshed on read, once per account however many requests
// ask at the same moment (one refresh in flight per account in the process,
// the account's row lock or a compare-and-swap in the store), and a rotated
// refresh token is stored in the same transaction as the new access token
// before anyone is handed it.
//
// A provider that fails is not called again by every request: the account
// backs off (5 s after the first failure, doubling up to a minute, recorded
// in the store so that every gateway and every reload sees it), and until
// then a still-valid token is served as it is. A still-valid token is never
// held up for long either: a request waits at most two seconds for its
// refresh, then gets the token it has while the refresh goes on.
package tokens

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// DefaultSkew is how long before expiry a token counts as stale.
const DefaultSkew = 2 * time.Minute

const (
	// validWait bounds how long requests holding a still-valid token wait
	// for its refresh, counted from the refresh's start: a slow provider
	// delays no one for long, and the refresh goes on without them.
	validWait = 2 * time.Second
	// lockWait bounds waiting for the account's lock before a refresh
	// (another gateway is refreshing the account).
	lockWait = 10 * time.Second
	// callTimeout bounds one call to the provider's token endpoint, on top
	// of the provider client's own timeout.
	callTimeout = 15 * time.Second
	// saveTimeout bounds storing a refresh's outcome, retries included,
	// whatever the caller's deadline.
	saveTimeout = 10 * time.Second
	// firstBackoff is the pause after a first failed refresh; each further
	// failure in a row doubles it, up to maxBackoff. The first is short so
	// that the retry after a lost answer comes within the reuse grace of the
	// providers that have one (30 s and more, see docs/tokens.md).
	firstBackoff = 5 * time.Second
	maxBackoff   = time.Minute
)

// Errors a caller turns into answers.
var (
	// ErrNeedsReauthorization means the account's grant is gone (revoked,
	// expired refresh token, or no refresh token and an expired access
	// token): the user must reconnect.
	ErrNeedsReauthorization = errors.New("the account needs reauthorization")
	// ErrUnavailable means the token is expired and the provider could not
	// refresh it right now (it failed, or the account is backing off after
	// a failure); retry later. A refresh the provider refused wraps
	// provider.ErrRefused too.
	ErrUnavailable = errors.New("the provider could not refresh the token")
)

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

	mu      sync.Mutex
	flights map[string]*flight // the refresh in progress, by account id
}

// flight is one refresh of an account that any number of requests share.
type flight struct {
	started time.Time
	done    chan struct{} // closed when acct and err are set
	acct    *store.ExternalAccount
	err     error
}

// Options configure an Engine.
type Options struct {
	Store store.Store
	// Providers finds the provider of an account by name.
	Providers func(name string) (Refresher, bool)
	// Skew is how long before expiry a token is refreshed, at most half its
	// lifetime. Default DefaultSkew.
	Skew   time.Duration
	Now    func() time.Time
	Logger *zap.Logger
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
	return &Engine{store: o.Store, providers: o.Providers, skew: o.Skew, now: o.Now, logger: o.Logger,
		flights: make(map[string]*flight)}
}

// Fresh returns the account with a token that is valid for at least the
// skew, refreshing it first when needed. A token that is still valid but
// within the skew is served as it is when it cannot be refreshed: the
// provider failed, the account is backing off after a failure, another
// gateway holds its lock, or the refresh takes longer than two seconds.
// An expired token that cannot be refreshed is ErrUnavailable.
func (e *Engine) Fresh(ctx context.Context, a *store.ExternalAccount) (*store.ExternalAccount, error) {
	if a.Status == store.StatusNeedsReauthorization {
		return nil, ErrNeedsReauthorization
	}
	if e.fresh(a.Tokens) {
		return a, nil
	}
	if e.backingOff(a.Tokens) {
		metrics.Refreshes.WithLabelValues(a.Provider, "backoff").Inc()
		return e.serveOr(a, errBackingOff)
	}
	f := e.join(a)
	var patience <-chan time.Time
	if e.valid(a.Tokens) {
		t := time.NewTimer(time.Until(f.started.Add(validWait)))
		defer t.Stop()
		patience = t.C
	}
	for waiting := true; waiting; {
		select {
		case <-f.done:
			waiting = false
		case <-patience:
			patience = nil
			if e.valid(a.Tokens) { // else it expired meanwhile: wait on
				return e.serveOr(a, nil)
			}
		case <-ctx.Done():
			return e.serveOr(a, ctx.Err())
		}
	}
	switch {
	case f.err == nil:
		return f.acct, nil
	case errors.Is(f.err, ErrNeedsReauthorization):
		return nil, f.err
	case f.acct != nil: // as stored, with the failure recorded
		return e.serveOr(f.acct, f.err)
	}
	return e.serveOr(a, f.err)
}

// join returns the account's refresh in progress, or starts one. The
// refresh runs detached from any one caller's cancellation.
func (e *Engine) join(a *store.ExternalAccount) *flight {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.flights[a.ID]; ok {
		return f
	}
	f := &flight{started: time.Now(), done: make(chan struct{})}
	e.flights[a.ID] = f
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), lockWait+callTimeout)
		defer cancel()
		acct, err := e.refresh(ctx, a.ID, a.Provider)
		e.mu.Lock()
		delete(e.flights, a.ID)
		e.mu.Unlock()
		f.acct, f.err = acct, err
		close(f.done)
	}()
	return f
}

// serveOr serves a still-valid token that could not be refreshed, and
// reports err for an expired one.
func (e *Engine) serveOr(a *store.ExternalAccount, err error) (*store.ExternalAccount, error) {
	if !e.valid(a.Tokens) {
		return nil, err
	}
	metrics.StaleTokensServed.WithLabelValues(a.Provider).Inc()
	return a, nil
}

// fresh reports whether a token is usable for at least the skew. A token
// without an expiry (GitHub OAuth apps) never goes stale.
func (e *Engine) fresh(t store.TokenSet) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || t.Expiry.After(e.now().Add(e.skewOf(t))))
}

// skewOf is the skew for t: the configured one, but at most half of the
// token's lifetime when it is known, so that a provider issuing tokens that
// live less than the skew does not see a refresh (and a rotation) on every
// request.
func (e *Engine) skewOf(t store.TokenSet) time.Duration {
	if t.IssuedAt.IsZero() || !t.Expiry.After(t.IssuedAt) {
		return e.skew
	}
	return min(e.skew, t.Expiry.Sub(t.IssuedAt)/2)
}

// valid reports whether a token has not expired yet.
func (e *Engine) valid(t store.TokenSet) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || t.Expiry.After(e.now()))
}

// backingOff reports whether a refresh of t failed lately and the next may
// not be tried yet.
func (e *Engine) backingOff(t store.TokenSet) bool {
	return e.now().Before(t.RetryAt)
}

// retryAt is when a token whose refresh failed n times in a row may be
// refreshed again: firstBackoff after the first failure, doubling up to
// maxBackoff, and never after a still-valid token expires, so that it is
// refreshed in time if the provider is back.
func retryAt(t store.TokenSet, n int, now time.Time) time.Time {
	at := now.Add(min(firstBackoff<<min(n-1, 16), maxBackoff))
	if t.Expiry.After(now) && t.Expiry.Before(at) {
		at = t.Expiry
	}
	return at
}

// IssuedAt is when the provider issued tok, from the expires_in it answered
// with; zero when it sent none.
func IssuedAt(tok *oauth2.Token) time.Time {
	if tok.ExpiresIn <= 0 || tok.Expiry.IsZero() {
		return time.Time{}
	}
	return tok.Expiry.Add(-time.Duration(tok.ExpiresIn) * time.Second)
}
