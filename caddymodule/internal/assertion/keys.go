package assertion

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// DefaultKeyDelay is how long a new key is published in the JWKS before it
// signs: twice the JWKS's cache lifetime (JWKSMaxAge), so that a verifier
// holding a JWKS fetched just before the key appeared has fetched it again,
// and so have verifiers that cache a JWKS for ten minutes whatever it says
// (the jose library's default).
const DefaultKeyDelay = 10 * time.Minute

// JWKSMaxAge is how long verifiers may cache the JWKS (its Cache-Control
// max-age) when the key delay is the default; a shorter delay shortens it.
const JWKSMaxAge = 5 * time.Minute

// Key is an identity-token key and when it was first published in the JWKS
// that verifiers fetch; zero when it has not been yet.
type Key struct {
	Private   *ecdsa.PrivateKey
	Published time.Time
}

// KeySet holds the identity keys of a store, newest first, and lets them
// change while gateways serve. Every key is in the JWKS at once; the key
// that signs is decided at each signing: the first one that has been
// published for at least the delay, else the one published earliest (on a
// tie, the later in the list; unpublished keys come last). So a new key
// reaches verifiers before any token needs it, and a previous key signs
// meanwhile. Safe for concurrent use.
type KeySet struct {
	state atomic.Pointer[keyState]
	delay atomic.Int64
}

// keyState is one version of a KeySet: the keys with their signers and JWKS.
type keyState struct {
	keys    []Key
	kids    []string
	signers []jose.Signer
	jwks    []byte
	// maxPayload is the longest claims' JSON that keeps a token of any of
	// the keys within MaxTokenSize.
	maxPayload int
}

// NewKeySet returns a KeySet of keys, newest first, whose keys sign delay
// after they are published.
func NewKeySet(keys []Key, delay time.Duration) (*KeySet, error) {
	ks := new(KeySet)
	ks.SetDelay(delay)
	return ks, ks.Set(keys)
}

// Set replaces the keys, newest first. Identity tokens signed with a key
// that Set removes are signed again at their next use.
func (ks *KeySet) Set(keys []Key) error {
	if len(keys) == 0 {
		return errors.New("identity token: at least one key is required")
	}
	st := &keyState{keys: append([]Key(nil), keys...)}
	var set jose.JSONWebKeySet
	for _, k := range keys {
		kid := KeyID(&k.Private.PublicKey)
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.Private},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), kid))
		if err != nil {
			return fmt.Errorf("identity token signer: %w", err)
		}
		// A token is header.payload.signature, the payload's part
		// base64url: the rest of it is the same for every token of a key.
		empty, err := sig.Sign(nil)
		if err != nil {
			return fmt.Errorf("identity token signer: %w", err)
		}
		overhead, err := empty.CompactSerialize()
		if err != nil {
			return fmt.Errorf("identity token signer: %w", err)
		}
		payload := base64.RawURLEncoding.DecodedLen(MaxTokenSize - len(overhead))
		if len(st.signers) == 0 || payload < st.maxPayload {
			st.maxPayload = payload
		}
		st.kids, st.signers = append(st.kids, kid), append(st.signers, sig)
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.Private.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"})
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		return err
	}
	st.jwks = jwks
	ks.state.Store(st)
	return nil
}

// SetDelay sets how long a key is published before it signs (negative is 0).
func (ks *KeySet) SetDelay(d time.Duration) { ks.delay.Store(int64(max(d, 0))) }

// Delay is how long a key is published before it signs.
func (ks *KeySet) Delay() time.Duration { return time.Duration(ks.delay.Load()) }

// Keys returns the keys, newest first.
func (ks *KeySet) Keys() []Key { return append([]Key(nil), ks.state.Load().keys...) }

// JWKS is the JSON Web Key Set that verifies the tokens: every key.
func (ks *KeySet) JWKS() []byte { return ks.state.Load().jwks }

// MaxAge is how long verifiers may cache the JWKS: JWKSMaxAge, or half the
// delay when that is shorter, so that a JWKS fetched just before a key was
// published has expired before the key signs.
func (ks *KeySet) MaxAge() time.Duration {
	return min(JWKSMaxAge, time.Duration(ks.delay.Load())/2)
}

// Signing returns the id of the key that signs at now and since when it
// does (zero: since before its publication was recorded).
func (ks *KeySet) Signing(now time.Time) (kid string, since time.Time) {
	st, delay := ks.state.Load(), time.Duration(ks.delay.Load())
	i := st.pick(now, delay)
	if p := st.keys[i].Published; !p.IsZero() && !now.Before(p.Add(delay)) {
		since = p.Add(delay)
	}
	return st.kids[i], since
}

// pick returns the index of the key that signs at now (see KeySet).
func (st *keyState) pick(now time.Time, delay time.Duration) int {
	best := -1
	for i, k := range st.keys {
		if k.Published.IsZero() {
			continue
		}
		if !now.Before(k.Published.Add(delay)) {
			return i
		}
		if best < 0 || !k.Published.After(st.keys[best].Published) {
			best = i
		}
	}
	if best < 0 {
		return len(st.keys) - 1
	}
	return best
}

// publishedPrefix names the meta values that record when each key was first
// published, by key id.
const publishedPrefix = "identity_key_published/"

// Published reads from the store's meta values when each key was first
// published. With record, a key never published is recorded as published
// at now: only a gateway that serves the keys records, so that a config
// checked (caddy validate) but not run publishes nothing.
func Published(ctx context.Context, meta store.MetaStore, keys []*ecdsa.PrivateKey, now time.Time, record bool) ([]Key, error) {
	out := make([]Key, len(keys))
	for i, k := range keys {
		at, _, err := store.FirstTime(ctx, meta, publishedPrefix+KeyID(&k.PublicKey), now, record)
		if err != nil {
			return nil, fmt.Errorf("reading when identity key %d was published: %w", i+1, err)
		}
		out[i] = Key{Private: k, Published: at}
	}
	return out, nil
}
