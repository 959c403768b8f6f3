package caddymodule

import (
	"context"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
)

// identitySigner signs this config's identity tokens with the store's keys,
// read again (identity-key-rotate may have changed keys.json).
func (a *App) identitySigner(ref *storeRef) (*assertion.Signer, error) {
	if err := ref.identity.Load(context.Background()); err != nil {
		return nil, err
	}
	issuer := a.IdentityIssuer
	if issuer == "" {
		issuer = "socialgate"
	}
	return assertion.New(assertion.Options{Keys: ref.identity.Set(), Issuer: issuer, Audience: a.IdentityAudience})
}

// keyDelay is identity_key_delay with its default.
func (a *App) keyDelay() time.Duration {
	if a.IdentityKeyDelay == nil {
		return assertion.DefaultKeyDelay
	}
	return time.Duration(*a.IdentityKeyDelay)
}

// publishKeys is the identity part of Start: this config's key delay applies
// to the store's keys, and the keys it serves count as published from now
// (and, on PostgreSQL, its first secret as in use).
func (a *App) publishKeys() error {
	a.storeRef.identity.Set().SetDelay(a.keyDelay())
	return a.storeRef.identity.Publish(context.Background())
}
