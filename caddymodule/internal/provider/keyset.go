package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// jwksRefetchInterval bounds how often a key set is fetched again because a
// token named a key it does not have: an attacker sending tokens with made-up
// key ids causes at most one provider call per interval (THREATS.md).
const jwksRefetchInterval = time.Minute

// keySet verifies ID token signatures with a provider's published keys. It
// fetches them on first use, and again for an unknown key id at most once per
// jwksRefetchInterval (go-oidc's remote key set refetches for every one).
type keySet struct {
	url    string
	client *http.Client
	algs   []jose.SignatureAlgorithm

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time
	fetch   *sync.WaitGroup // an ongoing fetch, shared by concurrent callers
	err     error
}

func newKeySet(url string, client *http.Client, algs []string) *keySet {
	ks := &keySet{url: url, client: client}
	for _, a := range algs {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	return ks
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSigned(token, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("jwt must have exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, fetched := k.current()
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	if !fetched.IsZero() && time.Since(fetched) < jwksRefetchInterval {
		return nil, errors.New("no published key verifies the signature")
	}
	keys, err = k.refetch(ctx)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, errors.New("no published key verifies the signature")
}

func (k *keySet) current() ([]jose.JSONWebKey, time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, k.fetched
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

// refetch fetches the key set once for all concurrent callers.
func (k *keySet) refetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	if k.fetch != nil {
		wait := k.fetch
		k.mu.Unlock()
		wait.Wait()
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.keys, k.err
	}
	if !k.fetched.IsZero() && time.Since(k.fetched) < jwksRefetchInterval {
		defer k.mu.Unlock()
		return k.keys, nil // fetched meanwhile
	}
	wait := &sync.WaitGroup{}
	wait.Add(1)
	k.fetch = wait
	k.mu.Unlock()

	keys, err := k.download(ctx)

	k.mu.Lock()
	defer k.mu.Unlock()
	k.fetch, k.err, k.fetched = nil, err, time.Now()
	if err == nil {
		k.keys = keys
	}
	wait.Done()
	return k.keys, err
}

func (k *keySet) download(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeoutOf(k.client))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: jwks: %v", ErrUnavailable, err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: jwks: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: jwks answered HTTP %d", ErrUnavailable, resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("%w: jwks is not a JSON Web Key Set", ErrUnavailable)
	}
	return set.Keys, nil
}
