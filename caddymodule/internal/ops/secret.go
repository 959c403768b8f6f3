package ops

import (
	"context"
	"errors"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
)

// ErrSecretNotInUse means no gateway has run with the new secret first
// yet: one still sealing under the old secret would undo a re-keying.
var ErrSecretNotInUse = errors.New("no gateway has run with the new secret first yet: reload every gateway with " +
	"secret <new> <old> first (a gateway still sealing under the old secret would undo this run)")

// SecretRotation is what RotateSecret did, and when the previous secrets
// can leave the config.
type SecretRotation struct {
	postgres.RekeyResult
	// InUse is when a gateway first ran with the new secret first: the
	// sessions begun before hold cookies signed with the previous one
	// (RekeyResult.SessionsBefore).
	InUse time.Time
	// TokensUntil is when the last identity token signed with the
	// previous secret's key stops verifying (with the default
	// identity_key_delay); zero when the new key was never published.
	TokensUntil time.Time
	// RemovableAfter is when the previous secrets can leave the config
	// without signing anyone out or breaking a sign-in in progress.
	RemovableAfter time.Time
}

// RotateSecret seals every value of the PostgreSQL store that a previous
// secret sealed (provider tokens, session ids, events) again under the
// current one, the first of the secrets it was opened with (see
// postgres.Store.Rekey), while gateways serve. It can be stopped and run
// again at any point.
func RotateSecret(ctx context.Context, o *Opened) (SecretRotation, error) {
	pg, ok := store.Unwrap(o.Store).(*postgres.Store)
	if !ok {
		return SecretRotation{}, ErrUnsupported
	}
	identity, err := o.Keys.IdentityKeys()
	if err != nil {
		return SecretRotation{}, err
	}
	inUse, ok, err := store.FirstTime(ctx, pg, secretInUsePrefix+assertion.KeyID(&identity[0].PublicKey), time.Time{}, false)
	if err != nil {
		return SecretRotation{}, err
	}
	if !ok {
		return SecretRotation{}, ErrSecretNotInUse
	}
	res, err := pg.Rekey(ctx, postgres.RekeyOptions{SessionsBefore: inUse})
	r := SecretRotation{RekeyResult: res, InUse: inUse}
	if err != nil || res.StillPrevious > 0 || len(res.Unreadable) > 0 {
		return r, err
	}
	published, err := assertion.Published(ctx, pg, identity[:1], time.Time{}, false)
	if err != nil {
		return r, err
	}
	r.RemovableAfter = time.Now()
	if p := published[0].Published; !p.IsZero() {
		// With the default delay the new key signs from then, and the
		// previous key's tokens expire within their lifetime after.
		r.TokensUntil = p.Add(assertion.DefaultKeyDelay + assertion.DefaultLifetime)
		r.RemovableAfter = later(r.RemovableAfter, r.TokensUntil)
	}
	r.RemovableAfter = later(later(r.RemovableAfter, res.InFlightUntil), res.SessionsBeforeUntil)
	return r, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
