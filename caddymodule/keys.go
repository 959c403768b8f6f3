package caddymodule

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// secretInUsePrefix names the meta values that record when a gateway first
// ran with a PostgreSQL secret first (sealing and signing with it), by the
// id of the secret's identity key: socialgate secret-rotate counts the
// sessions begun before that.
const secretInUsePrefix = "secret_in_use/"

// identityKeys returns the store's identity keys, newest first: those of
// keys.json, read again (identity-key-rotate changes it), or those derived
// from the PostgreSQL secrets.
func (o *openStore) identityKeys() ([]*ecdsa.PrivateKey, error) {
	keys := o.keys
	if o.dir != "" {
		fresh, err := keyring.LoadOrCreate(o.dir)
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", o.dir, err)
		}
		keys = fresh
	}
	return keys.IdentityKeys()
}

// loadIdentity (re)loads the identity keys into the store's key set, with
// when each was first published; record publishes the new ones now, which
// only a serving gateway does (see assertion.Published).
func (o *openStore) loadIdentity(ctx context.Context, record bool) error {
	o.identityMu.Lock()
	defer o.identityMu.Unlock()
	private, err := o.identityKeys()
	if err != nil {
		return err
	}
	keys, err := assertion.Published(ctx, o.store, private, time.Now(), record)
	if err != nil {
		return err
	}
	if o.identity == nil {
		o.identity, err = assertion.NewKeySet(keys, assertion.DefaultKeyDelay)
		return err
	}
	same := slices.EqualFunc(keys, o.identity.Keys(), func(a, b assertion.Key) bool {
		return a.Private.Equal(b.Private) && a.Published.Equal(b.Published)
	})
	if same {
		return nil // keep the cached identity tokens
	}
	return o.identity.Set(keys)
}

// identitySigner signs this config's identity tokens with the store's keys.
func (a *App) identitySigner(ref *storeRef) (*assertion.Signer, error) {
	if err := ref.loadIdentity(context.Background(), false); err != nil {
		return nil, err
	}
	issuer := a.IdentityIssuer
	if issuer == "" {
		issuer = "socialgate"
	}
	return assertion.New(assertion.Options{Keys: ref.identity, Issuer: issuer, Audience: a.IdentityAudience})
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
	ref, ctx := a.storeRef, context.Background()
	ref.identity.SetDelay(a.keyDelay())
	if err := ref.loadIdentity(ctx, true); err != nil {
		return fmt.Errorf("publishing the identity keys: %w", err)
	}
	if ref.dir != "" {
		return nil
	}
	current, err := ref.keys.IdentityKeys()
	if err != nil {
		return err
	}
	_, _, err = store.FirstTime(ctx, ref.store, secretInUsePrefix+assertion.KeyID(&current[0].PublicKey), time.Now(), true)
	return err
}

// rotateIdentityKey serves POST /socialgate/identity-keys/rotate for
// `socialgate identity-key-rotate`: a new key in keys.json, published at
// once by every config on the store, signing after the key delay.
func rotateIdentityKey(w http.ResponseWriter, r *http.Request, open *openStore) error {
	if open.dir == "" {
		return adminErr(http.StatusConflict, "the identity keys of a PostgreSQL store derive from its secret: rotate the secret "+
			"instead (secret <new> <old>, then socialgate secret-rotate; see docs/secret-rotation.md)")
	}
	open.identityMu.Lock()
	err := keyring.RotateSigningKey(open.dir)
	open.identityMu.Unlock()
	if err == nil {
		err = open.loadIdentity(r.Context(), true)
	}
	if err != nil {
		return adminErr(http.StatusInternalServerError, "rotating the identity key: %v", err)
	}
	keys := open.identity.Keys()
	newest := keys[0].Published.Add(open.identity.Delay())
	kid, _ := open.identity.Signing(time.Now())
	return adminJSON(w, map[string]any{
		"object":     "identity_keys",
		"new_key":    assertion.KeyID(&keys[0].Private.PublicKey),
		"signing":    kid,
		"signs_from": newest.UnixMilli(),
		"keys":       len(keys),
	})
}
