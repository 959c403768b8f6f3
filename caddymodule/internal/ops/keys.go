package ops

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// secretInUsePrefix names the meta values that record when a gateway first
// ran with a PostgreSQL secret first (sealing and signing with it), by the
// id of the secret's identity key: RotateSecret counts the sessions begun
// before that.
const secretInUsePrefix = "secret_in_use/"

// Keys are a store's identity-token keys, with when each was first
// published: those of the Badger store's keys.json, read again at each Load
// (a rotation changes the file), or those derived from the PostgreSQL
// secrets. Every config on the store signs with the one Set, so that a
// rotation reaches them all without a reload.
type Keys struct {
	opened *Opened
	mu     sync.Mutex // serializes rotations and loads
	set    *assertion.KeySet
	// serving is set by Publish: a gateway serves the keys, so a rotation
	// publishes the new key at once.
	serving bool
}

// NewKeys loads the identity keys of an open store.
func NewKeys(ctx context.Context, o *Opened) (*Keys, error) {
	k := &Keys{opened: o}
	return k, k.load(ctx, false)
}

// Set is the key set that signs the identity tokens.
func (k *Keys) Set() *assertion.KeySet { return k.set }

// Load reads the keys again (keys.json may have changed).
func (k *Keys) Load(ctx context.Context) error { return k.load(ctx, false) }

// Publish counts the keys the gateway now serves in its JWKS as published
// from now (when they were not already), which only a serving gateway does
// (see assertion.Published), and, on PostgreSQL, records the first time the
// current secret was in use. Rotations publish at once from then on.
func (k *Keys) Publish(ctx context.Context) error {
	if err := k.load(ctx, true); err != nil {
		return fmt.Errorf("publishing the identity keys: %w", err)
	}
	k.mu.Lock()
	k.serving = true
	k.mu.Unlock()
	if k.opened.Dir != "" {
		return nil
	}
	current, err := k.opened.Keys.IdentityKeys()
	if err != nil {
		return err
	}
	_, _, err = store.FirstTime(ctx, k.opened.Store, secretInUsePrefix+assertion.KeyID(&current[0].PublicKey), time.Now(), true)
	return err
}

func (k *Keys) load(ctx context.Context, publish bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	private, err := k.private()
	if err != nil {
		return err
	}
	keys, err := assertion.Published(ctx, k.opened.Store, private, time.Now(), publish)
	if err != nil {
		return err
	}
	if k.set == nil {
		k.set, err = assertion.NewKeySet(keys, assertion.DefaultKeyDelay)
		return err
	}
	same := slices.EqualFunc(keys, k.set.Keys(), func(a, b assertion.Key) bool {
		return a.Private.Equal(b.Private) && a.Published.Equal(b.Published)
	})
	if same {
		return nil // keep the cached identity tokens
	}
	return k.set.Set(keys)
}

// private returns the private keys, newest first.
func (k *Keys) private() ([]*ecdsa.PrivateKey, error) {
	ring := k.opened.Keys
	if k.opened.Dir != "" {
		fresh, err := keyring.LoadOrCreate(k.opened.Dir)
		if err != nil {
			return nil, fmt.Errorf("storage %s: %w", k.opened.Dir, err)
		}
		ring = fresh
	}
	return ring.IdentityKeys()
}

// IdentityKeyRotation is the outcome of RotateIdentityKey.
type IdentityKeyRotation struct {
	// NewKey is the new key's id (kid).
	NewKey string
	// Published reports that a serving gateway has the key in its JWKS
	// now; else the gateway publishes it when it starts.
	Published bool
	// SignsFrom is when the new key starts signing (when Published);
	// Signing is the key that signs now, and Keys how many the JWKS holds.
	SignsFrom time.Time
	Signing   string
	Keys      int
}

// RotateIdentityKey makes a new identity-token key in the Badger store's
// keys.json. A serving gateway publishes it at once and signs with it
// identity_key_delay later; the previous two keys stay in the JWKS. The
// keys of a PostgreSQL store derive from its secret: ErrUnsupported.
func (s *Service) RotateIdentityKey(ctx context.Context) (IdentityKeyRotation, error) {
	k := s.o.Keys
	if k == nil || k.opened.Dir == "" {
		return IdentityKeyRotation{}, fmt.Errorf("%w: the identity keys of a PostgreSQL store derive from its secret: rotate the secret "+
			"instead (secret <new> <old>, then socialgate secret-rotate; see docs/secret-rotation.md)", ErrUnsupported)
	}
	k.mu.Lock()
	err := keyring.RotateSigningKey(k.opened.Dir)
	serving := k.serving
	k.mu.Unlock()
	if err != nil {
		return IdentityKeyRotation{}, fmt.Errorf("storage %s: rotating the identity key: %w", k.opened.Dir, err)
	}
	if !serving {
		private, err := k.private()
		if err != nil {
			return IdentityKeyRotation{}, err
		}
		return IdentityKeyRotation{NewKey: assertion.KeyID(&private[0].PublicKey)}, nil
	}
	if err := k.load(ctx, true); err != nil {
		return IdentityKeyRotation{}, fmt.Errorf("rotating the identity key: %w", err)
	}
	keys := k.set.Keys()
	signing, _ := k.set.Signing(time.Now())
	return IdentityKeyRotation{NewKey: assertion.KeyID(&keys[0].Private.PublicKey), Published: true,
		SignsFrom: keys[0].Published.Add(k.set.Delay()), Signing: signing, Keys: len(keys)}, nil
}
