package assertion

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func kidOf(t *testing.T, token string) string {
	t.Helper()
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Headers[0].KeyID
}

func TestKeySet_ANewKeyIsPublishedAtOnceAndSignsAfterTheDelay(t *testing.T) {
	now := time.Now()
	old, fresh := newKey(t), newKey(t)
	keys, err := NewKeySet([]Key{{Private: old, Published: now.Add(-time.Hour)}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := New(Options{Keys: keys, Issuer: "https://gw.example", Now: func() time.Time { return now }})
	sess := func(id string) *store.Session {
		return &store.Session{ID: id, UserID: "u", ExpiresAt: now.Add(time.Hour)}
	}
	before, _ := s.Token(sess("a"), nil)

	// Rotate: the new key is in the JWKS at once, the old one still signs.
	if err := keys.Set([]Key{{Private: fresh, Published: now}, {Private: old, Published: now.Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	json.Unmarshal(s.JWKS(), &set)
	if len(set.Keys) != 2 || len(set.Key(KeyID(&fresh.PublicKey))) != 1 {
		t.Fatalf("the JWKS after the rotation: %s", s.JWKS())
	}
	during, _ := s.Token(sess("b"), nil)
	if kidOf(t, during) != KeyID(&old.PublicKey) {
		t.Error("the new key signs before the delay")
	}
	now = now.Add(time.Minute)
	after, _ := s.Token(sess("c"), nil)
	if kidOf(t, after) != KeyID(&fresh.PublicKey) {
		t.Error("the new key does not sign after the delay")
	}
	for _, tok := range []string{before, during, after} {
		verify(t, s, tok, now)
	}
	if kid, since := keys.Signing(now); kid != KeyID(&fresh.PublicKey) || !since.Equal(now) {
		t.Errorf("Signing = %s since %v", kid, since)
	}
}

func TestKeySet_PicksTheSigningKey(t *testing.T) {
	now := time.Now()
	at := func(d time.Duration) time.Time { return now.Add(-d) }
	for _, tc := range []struct {
		name      string
		published []time.Time // newest key first
		want      int
	}{
		{"one key, never published", []time.Time{{}}, 0},
		{"one key, just published", []time.Time{at(0)}, 0},
		{"the newest key is old enough", []time.Time{at(time.Hour), at(2 * time.Hour)}, 0},
		{"the newest key is too young", []time.Time{at(time.Second), at(time.Hour)}, 1},
		{"two rotations within the delay", []time.Time{at(time.Second), at(2 * time.Second), at(time.Hour)}, 2},
		{"none old enough: the earliest", []time.Time{at(time.Second), at(3 * time.Second), at(2 * time.Second)}, 1},
		{"none old enough, a tie: the older", []time.Time{at(time.Second), at(time.Second)}, 1},
		{"unpublished keys come last", []time.Time{{}, at(time.Second)}, 1},
		{"nothing published: the oldest", []time.Time{{}, {}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := make([]Key, len(tc.published))
			for i, p := range tc.published {
				keys[i] = Key{Private: newKey(t), Published: p}
			}
			ks, err := NewKeySet(keys, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if kid, _ := ks.Signing(now); kid != KeyID(&keys[tc.want].Private.PublicKey) {
				t.Errorf("key %d does not sign", tc.want)
			}
		})
	}
}

// A cached token whose key leaves the JWKS is signed again at its next use.
func TestToken_ResignedWhenTheKeysChange(t *testing.T) {
	now := time.Now()
	first, second := newKey(t), newKey(t)
	keys, _ := NewKeySet([]Key{{Private: first, Published: now.Add(-time.Hour)}}, time.Minute)
	s, _ := New(Options{Keys: keys, Issuer: "https://gw.example", Now: func() time.Time { return now }})
	sess := &store.Session{ID: "a", UserID: "u", ExpiresAt: now.Add(time.Hour)}
	s.Token(sess, nil)
	keys.Set([]Key{{Private: second, Published: now.Add(-time.Hour)}})
	tok, _ := s.Token(sess, nil)
	if kidOf(t, tok) != KeyID(&second.PublicKey) {
		t.Error("a token of a key no longer in the JWKS is still served")
	}
	verify(t, s, tok, now)
}

func TestKeySet_MaxAgeExpiresBeforeANewKeySigns(t *testing.T) {
	for _, tc := range []struct{ delay, want time.Duration }{
		{DefaultKeyDelay, JWKSMaxAge},
		{2 * time.Second, time.Second},
		{0, 0},
		{-time.Second, 0},
	} {
		ks, _ := NewKeySet([]Key{{Private: newKey(t)}}, tc.delay)
		if got := ks.MaxAge(); got != tc.want {
			t.Errorf("delay %v: max-age %v, want %v", tc.delay, got, tc.want)
		}
	}
}

// memMeta is a store's meta values in memory.
type memMeta map[string][]byte

func (m memMeta) GetMeta(_ context.Context, name string) ([]byte, error) {
	if v, ok := m[name]; ok {
		return v, nil
	}
	return nil, store.ErrNotFound
}

func (m memMeta) PutMeta(_ context.Context, name string, value []byte) error {
	m[name] = value
	return nil
}

func TestPublished_RecordsOnlyWhenAskedAndKeepsTheFirstTime(t *testing.T) {
	ctx, meta := context.Background(), memMeta{}
	k := newKey(t)
	t0 := time.Unix(1000, 0)
	keys, err := Published(ctx, meta, []*ecdsa.PrivateKey{k}, t0, false)
	if err != nil || !keys[0].Published.IsZero() || len(meta) != 0 {
		t.Fatalf("without record: %+v, %v, meta %v", keys, err, meta)
	}
	if keys, _ = Published(ctx, meta, []*ecdsa.PrivateKey{k}, t0, true); !keys[0].Published.Equal(t0) {
		t.Fatalf("recorded %v, want %v", keys[0].Published, t0)
	}
	if keys, _ = Published(ctx, meta, []*ecdsa.PrivateKey{k}, t0.Add(time.Hour), true); !keys[0].Published.Equal(t0) {
		t.Fatalf("a second gateway reads %v, want the first time %v", keys[0].Published, t0)
	}
	meta[publishedPrefix+KeyID(&k.PublicKey)] = []byte("garbage")
	if _, err := Published(ctx, meta, []*ecdsa.PrivateKey{k}, t0, true); err == nil {
		t.Fatal("a damaged time was accepted")
	}
}
