package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// jwksCache is how a provider's published keys are cached:
//   - for the lifetime its Cache-Control max-age or Expires gives, but at
//     least 5 seconds and at most 24 hours (15 minutes without either);
//     keys the provider removed stop verifying at the first fetch after that;
//   - an ID token naming a key the set does not have fetches the set again
//     at once, so that a key published a moment ago verifies at its first
//     use; such refetches that do not find the key happen at most once per
//     10 seconds, so made-up key ids cost the provider one call per
//     interval (docs/security.md, "ID tokens"), and only a new key used within 10 seconds of
//     one of them waits for the next;
//   - a logout token fetches the set (at its expiry, or for a key it does
//     not have) only when no fetch started in the last minute
//     (logoutFetchEvery);
//   - a failed fetch keeps the last good keys, for up to 24 hours past their
//     lifetime, and is retried after 1 s, 2 s, 4 s… up to a minute.
var jwksCache = cachePolicy{
	fallback: 15 * time.Minute,
	min:      5 * time.Second,
	max:      24 * time.Hour,
	maxStale: 24 * time.Hour,
	early:    10 * time.Second,
}

// logoutFetchEvery is how often a logout token may make the gateway fetch
// the keys: logout tokens come unauthenticated from anyone (the
// back-channel logout endpoint), so whatever their key ids they cost the
// provider at most one call a minute; within a minute of the last fetch
// they are judged by the keys at hand. ID tokens, which come back from the
// token endpoint or with a nonce the gateway issued, follow jwksCache.
const logoutFetchEvery = time.Minute

// logoutKey marks the context of a logout token's verification.
type logoutKey struct{}

// errNoKey rejects a signature that no published key verifies.
var errNoKey = errors.New("no published key verifies the signature")

// keySet verifies ID token signatures with a provider's published keys,
// cached as jwksCache says. It implements oidc.KeySet.
type keySet struct {
	url  string
	do   func(*http.Request) (int, []byte, http.Header, error) // Provider.do
	algs []jose.SignatureAlgorithm
	keys *cached[[]jose.JSONWebKey]
}

func newKeySet(url string, do func(*http.Request) (int, []byte, http.Header, error), algs []string) *keySet {
	ks := &keySet{url: url, do: do}
	for _, a := range algs {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	ks.keys = newCached(jwksCache, ks.download)
	return ks
}

// VerifySignature implements oidc.KeySet. When the provider cannot be
// reached and none of the last good keys can tell, the error wraps
// ErrUnavailable (and is reported to verify's caller through ctx): an
// outage is not a forged token.
func (k *keySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSigned(token, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("jwt must have exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	if ctx.Value(logoutKey{}) != nil && k.keys.fetchedWithin(logoutFetchEvery) {
		if payload, ok := verifyWith(jws, k.keys.peek(), kid); ok {
			return payload, nil
		}
		return nil, errNoKey
	}
	seen := k.keys.generation()
	keys, _, _ := k.keys.get(ctx, seen, false)
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	// No key verifies it: the provider may have published a new one since
	// the last fetch (a rate-limited refetch, unless one ended meanwhile).
	keys, gen, err := k.keys.get(ctx, seen, true)
	if gen != seen {
		if payload, ok := verifyWith(jws, keys, kid); ok {
			k.keys.earlyFound()
			return payload, nil
		}
	}
	if err != nil && !hasKey(keys, kid) {
		reportOutage(ctx, err)
		return nil, err
	}
	return nil, errNoKey
}

// verifyWith tries the keys with the token's kid (all keys when it has none).
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for _, key := range keys {
		if kid != "" && key.KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// hasKey reports whether keys can judge a token with this kid: one of them
// has it, or, for a token without a kid, there are keys at all.
func hasKey(keys []jose.JSONWebKey, kid string) bool {
	for _, key := range keys {
		if kid == "" || key.KeyID == kid {
			return true
		}
	}
	return false
}

func (k *keySet) download(ctx context.Context) ([]jose.JSONWebKey, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: jwks: %v", ErrUnavailable, err)
	}
	status, body, header, err := k.do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: jwks: %v", ErrUnavailable, err)
	}
	if status != http.StatusOK {
		return nil, nil, fmt.Errorf("%w: jwks answered HTTP %d", ErrUnavailable, status)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, fmt.Errorf("%w: jwks is not a JSON Web Key Set", ErrUnavailable)
	}
	if len(set.Keys) == 0 {
		// Most likely a broken deployment: keep the last good keys.
		return nil, nil, fmt.Errorf("%w: jwks has no keys", ErrUnavailable)
	}
	return set.Keys, header, nil
}
