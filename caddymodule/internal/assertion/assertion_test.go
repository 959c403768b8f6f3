package assertion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// verify checks a token against the published JWKS, as an upstream would.
func verify(t *testing.T, s *Signer, token string, now time.Time) Claims {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not in the JWKS", parsed.Headers[0].KeyID)
	}
	var c Claims
	if err := parsed.Claims(keys[0].Key, &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Claims.ValidateWithLeeway(jwt.Expected{Issuer: "https://gw.example", Time: now}, 0); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestToken_VerifiesWithTheJWKSAndCarriesTheIdentity(t *testing.T) {
	now := time.Now()
	s, err := New(Options{Key: newKey(t), Issuer: "https://gw.example", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{ID: "sess_1", UserID: "user_1", Email: "a@example.com", EmailVerified: true, Name: "A", ExpiresAt: now.Add(time.Hour)}
	token, err := s.Token(sess)
	if err != nil {
		t.Fatal(err)
	}
	c := verify(t, s, token, now)
	if c.Subject != "user_1" || c.SessionID != "sess_1" || c.Email != "a@example.com" || !c.EmailVerified ||
		c.Name != "A" || c.NotBefore == nil || c.ID == "" {
		t.Errorf("claims = %+v", c)
	}
	// A session stored before verification was recorded may hold an
	// unverified address: the token carries none.
	legacy := &store.Session{ID: "sess_2", UserID: "user_2", Email: "ceo@example.com", ExpiresAt: now.Add(time.Hour)}
	token, err = s.Token(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if c := verify(t, s, token, now); c.Email != "" || c.EmailVerified {
		t.Errorf("an unverified session address reached the token: email %q, email_verified %v", c.Email, c.EmailVerified)
	}
	if got := c.Expiry.Time().Sub(now); got > DefaultLifetime || got < DefaultLifetime-time.Second {
		t.Errorf("lifetime %v, want %v", got, DefaultLifetime)
	}
}

func TestToken_IsReusedUntilNearExpiryThenRenewed(t *testing.T) {
	now := time.Now()
	s, _ := New(Options{Key: newKey(t), Issuer: "https://gw.example", Now: func() time.Time { return now }})
	sess := &store.Session{ID: "sess_1", UserID: "user_1", ExpiresAt: now.Add(time.Hour)}
	first, _ := s.Token(sess)
	now = now.Add(3 * time.Minute)
	if again, _ := s.Token(sess); again != first {
		t.Error("a token was re-signed well before expiry")
	}
	now = now.Add(90 * time.Second) // 4.5 min: within the last fifth
	renewed, _ := s.Token(sess)
	if renewed == first {
		t.Fatal("the token was not renewed near expiry")
	}
	verify(t, s, renewed, now)
}

func TestToken_NeverOutlivesTheSession(t *testing.T) {
	now := time.Now()
	s, _ := New(Options{Key: newKey(t), Issuer: "https://gw.example", Now: func() time.Time { return now }})
	sess := &store.Session{ID: "sess_1", UserID: "user_1", ExpiresAt: now.Add(time.Minute)}
	token, _ := s.Token(sess)
	if c := verify(t, s, token, now); c.Expiry.Time().After(sess.ExpiresAt) {
		t.Errorf("token expires %v, after the session %v", c.Expiry.Time(), sess.ExpiresAt)
	}
}

func TestJWKS_KeepsPreviousKeysForRotation(t *testing.T) {
	old, cur := newKey(t), newKey(t)
	now := time.Now()
	oldSigner, _ := New(Options{Key: old, Issuer: "https://gw.example"})
	token, _ := oldSigner.Token(&store.Session{ID: "s", UserID: "u", ExpiresAt: now.Add(time.Hour)})
	rotated, _ := New(Options{Key: cur, Previous: []*ecdsa.PublicKey{&old.PublicKey}, Issuer: "https://gw.example"})
	verify(t, rotated, token, now)
}

func BenchmarkToken_Cached(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := New(Options{Key: k, Issuer: "https://gw.example"})
	sess := &store.Session{ID: "sess_1", UserID: "user_1", ExpiresAt: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Token(sess); err != nil {
			b.Fatal(err)
		}
	}
}
