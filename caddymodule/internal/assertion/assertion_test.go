package assertion

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newSigner signs with key alone, published long ago, at the clock now,
// for audience.
func newSigner(t testing.TB, key *ecdsa.PrivateKey, now func() time.Time, audience ...string) *Signer {
	t.Helper()
	keys, err := NewKeySet([]Key{{Private: key, Published: time.Unix(0, 1)}}, DefaultKeyDelay)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Keys: keys, Issuer: "https://gw.example", Audience: audience, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s
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
	s := newSigner(t, newKey(t), func() time.Time { return now })
	sess := &store.Session{ID: "sess_1", UserID: "user_1", Email: "a@example.com", EmailVerified: true, Name: "A", ExpiresAt: now.Add(time.Hour)}
	token, err := s.Token(sess, nil)
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
	token, err = s.Token(legacy, nil)
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
	s := newSigner(t, newKey(t), func() time.Time { return now })
	sess := &store.Session{ID: "sess_1", UserID: "user_1", ExpiresAt: now.Add(time.Hour)}
	first, _ := s.Token(sess, nil)
	now = now.Add(3 * time.Minute)
	if again, _ := s.Token(sess, nil); again != first {
		t.Error("a token was re-signed well before expiry")
	}
	now = now.Add(90 * time.Second) // 4.5 min: within the last fifth
	renewed, _ := s.Token(sess, nil)
	if renewed == first {
		t.Fatal("the token was not renewed near expiry")
	}
	verify(t, s, renewed, now)
}

func TestToken_NeverOutlivesTheSession(t *testing.T) {
	now := time.Now()
	s := newSigner(t, newKey(t), func() time.Time { return now })
	sess := &store.Session{ID: "sess_1", UserID: "user_1", ExpiresAt: now.Add(time.Minute)}
	token, _ := s.Token(sess, nil)
	if c := verify(t, s, token, now); c.Expiry.Time().After(sess.ExpiresAt) {
		t.Errorf("token expires %v, after the session %v", c.Expiry.Time(), sess.ExpiresAt)
	}
}

// Groups full of what JSON escapes for HTML (< > &, six bytes each when
// escaped) once made a 36 KB token that Node upstreams answered 431: the
// token is encoded without HTML escaping, keeps the first groups that fit
// MaxTokenSize, and leaves the rest out.
func TestToken_StaysWithinMaxTokenSizeKeepingTheFirstGroups(t *testing.T) {
	now := time.Now()
	s := newSigner(t, newKey(t), func() time.Time { return now }, "app")
	for _, tc := range []struct {
		name      string
		groups    int
		keepsAll  bool
		nameChars string
	}{
		{"a few groups", 20, true, "Ada <Lovelace> & co"},
		{"4 KiB of groups", 4096 / 20, false, strings.Repeat(`"é<>&`, 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess := &store.Session{ID: "sess_" + tc.name, UserID: "user_1", Email: "a@example.com", Name: tc.nameChars, ExpiresAt: now.Add(time.Hour)}
			for i := range tc.groups {
				sess.Groups = append(sess.Groups, fmt.Sprintf("corp:<&>%03d<&>&<>", i))
			}
			token, err := s.Token(sess, nil)
			if err != nil {
				t.Fatal(err)
			}
			c := verify(t, s, token, now)
			t.Logf("%d groups, %d kept: %d bytes of token", tc.groups, len(c.Groups), len(token))
			if len(token) > MaxTokenSize {
				t.Errorf("the token is %d bytes, over MaxTokenSize (%d)", len(token), MaxTokenSize)
			}
			if !slices.Equal(c.Groups, sess.Groups[:len(c.Groups)]) || c.Name != tc.nameChars {
				t.Errorf("groups %q, name %q: want the session's first groups and its name", c.Groups, c.Name)
			}
			if tc.keepsAll != (len(c.Groups) == tc.groups) || len(c.Groups) == 0 {
				t.Errorf("%d of %d groups kept", len(c.Groups), tc.groups)
			}
			if !tc.keepsAll && len(token) < MaxTokenSize-100 {
				t.Errorf("the token is %d bytes: the groups left out would have fit", len(token))
			}
			payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
			if !bytes.Contains(payload, []byte(`"corp:<&>000<&>&<>"`)) {
				t.Errorf("the payload escapes for HTML: %.80s", payload)
			}
		})
	}
}

func TestJWKS_KeepsPreviousKeysForRotation(t *testing.T) {
	old, cur := newKey(t), newKey(t)
	now := time.Now()
	token, _ := newSigner(t, old, nil).Token(&store.Session{ID: "s", UserID: "u", ExpiresAt: now.Add(time.Hour)}, nil)
	keys, _ := NewKeySet([]Key{{Private: cur, Published: time.Unix(0, 1)}, {Private: old, Published: time.Unix(0, 1)}}, DefaultKeyDelay)
	rotated, _ := New(Options{Keys: keys, Issuer: "https://gw.example"})
	verify(t, rotated, token, now)
}

func BenchmarkToken_Cached(b *testing.B) {
	s := newSigner(b, newKey(b), nil)
	sess := &store.Session{ID: "sess_1", UserID: "user_1", ExpiresAt: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Token(sess, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// The user's public metadata reaches the upstream in the token, and a
// change to it (the store moves the session's UpdatedAt) is signed at the
// next request rather than when the cached token nears expiry; metadata
// that would break MaxTokenSize is left out, the rest of the token kept.
func TestToken_CarriesThePublicMetadataAndFollowsItsChanges(t *testing.T) {
	now := time.Now()
	s := newSigner(t, newKey(t), func() time.Time { return now })
	sess := &store.Session{ID: "sess_m", UserID: "user_m", ExpiresAt: now.Add(time.Hour), Name: "Mo",
		PublicMetadata: map[string]any{"plan": "free"}}
	first, err := s.Token(sess, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := verify(t, s, first, now); c.PublicMetadata["plan"] != "free" {
		t.Fatalf("public_metadata claim %v", c.PublicMetadata)
	}
	changed := *sess
	changed.PublicMetadata, changed.UpdatedAt = map[string]any{"plan": "pro"}, now
	second, _ := s.Token(&changed, nil)
	if c := verify(t, s, second, now); c.PublicMetadata["plan"] != "pro" {
		t.Fatalf("after the change: public_metadata %v, want plan pro at once", c.PublicMetadata)
	}
	big := changed
	big.PublicMetadata, big.UpdatedAt = map[string]any{"blob": strings.Repeat("x", MaxTokenSize)}, now.Add(time.Second)
	third, err := s.Token(&big, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := verify(t, s, third, now); len(third) > MaxTokenSize || c.PublicMetadata != nil || c.Name != "Mo" {
		t.Errorf("oversized metadata: token of %d bytes, metadata %d keys, name %q", len(third), len(c.PublicMetadata), c.Name)
	}
}

// A route's audience replaces the Signer's in the aud claim; tokens of one
// session for different audiences are cached apart.
func TestToken_EachAudienceGetsItsOwnToken(t *testing.T) {
	now := time.Now()
	s := newSigner(t, newKey(t), func() time.Time { return now }, "https://default.example")
	sess := &store.Session{ID: "sess_1", UserID: "user_1", ExpiresAt: now.Add(time.Hour)}
	shop, blog := NewAudience([]string{"https://shop.example"}), NewAudience([]string{"https://blog.example", "blog"})
	if NewAudience(nil) != nil {
		t.Error("NewAudience(nil) is an audience")
	}
	tokens := map[string]string{}
	for _, tc := range []struct {
		name string
		aud  *Audience
		want jwt.Audience
	}{
		{"the signer's", nil, jwt.Audience{"https://default.example"}},
		{"shop", shop, jwt.Audience{"https://shop.example"}},
		{"blog", blog, jwt.Audience{"https://blog.example", "blog"}},
	} {
		token, err := s.Token(sess, tc.aud)
		if err != nil {
			t.Fatal(err)
		}
		if c := verify(t, s, token, now); !slices.Equal(c.Audience, tc.want) {
			t.Errorf("%s: aud %q, want %q", tc.name, c.Audience, tc.want)
		}
		if again, _ := s.Token(sess, tc.aud); again != token {
			t.Errorf("%s: the token was signed again, not cached", tc.name)
		}
		tokens[tc.name] = token
	}
	if len(tokens) != 3 || tokens["shop"] == tokens["blog"] || tokens["shop"] == tokens["the signer's"] {
		t.Error("two audiences share a token")
	}
}

// A cached token is served only for a session that says of its user what
// the token does: a session whose copy says otherwise (a name, an address,
// the groups) gets a token that says what it says.
func TestToken_ASessionThatSaysOtherwiseGetsANewToken(t *testing.T) {
	now := time.Now()
	s := newSigner(t, newKey(t), func() time.Time { return now }, "")
	base := store.Session{ID: "sess_1", UserID: "user_1", Name: "Ada", Email: "ada@example.com", EmailVerified: true,
		Groups: []string{"corp:admins"}, ExpiresAt: now.Add(time.Hour)}
	first, err := s.Token(&base, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(s *store.Session)
		check  func(c Claims) bool
	}{
		{"name", func(s *store.Session) { s.Name = "Ada L." }, func(c Claims) bool { return c.Name == "Ada L." }},
		{"address no longer verified", func(s *store.Session) { s.EmailVerified = false }, func(c Claims) bool { return c.Email == "" && !c.EmailVerified }},
		{"groups", func(s *store.Session) { s.Groups = nil }, func(c Claims) bool { return len(c.Groups) == 0 }},
	} {
		changed := base
		tc.change(&changed)
		token, err := s.Token(&changed, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token == first || !tc.check(verify(t, s, token, now)) {
			t.Errorf("%s changed: the token still says what the session said before", tc.name)
		}
	}
}

// A session that no longer carries the address its cached token does (its
// user gave it up; the store moved its UpdatedAt) gets a new token without
// it.
func TestToken_FollowsTheSessionsAddress(t *testing.T) {
	now := time.Now()
	s := newSigner(t, newKey(t), func() time.Time { return now })
	sess := &store.Session{ID: "sess_1", UserID: "user_1", Email: "a@example.com", EmailVerified: true, ExpiresAt: now.Add(time.Hour)}
	if token, _ := s.Token(sess, nil); verify(t, s, token, now).Email != "a@example.com" {
		t.Fatal("the token does not carry the address")
	}
	rewritten := *sess
	rewritten.Email, rewritten.EmailVerified, rewritten.UpdatedAt = "", false, now
	token, _ := s.Token(&rewritten, nil)
	if c := verify(t, s, token, now); c.Email != "" || c.EmailVerified {
		t.Errorf("the session gave its address up; its token still carries %q (verified %v)", c.Email, c.EmailVerified)
	}
}

// A full cache makes room by dropping the tokens due for renewal first:
// those of sessions still in use stay.
func TestToken_AFullCacheDropsTokensDueForRenewalFirst(t *testing.T) {
	now := time.Now()
	s := newSigner(t, newKey(t), func() time.Time { return now }, "")
	live := &store.Session{ID: "sess_live", UserID: "user_1", ExpiresAt: now.Add(time.Hour)}
	token, err := s.Token(live, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	for i := range maxCached - 1 {
		s.cache[fmt.Sprint("sess_", i)] = []cached{{token: "old", refreshAt: now.Add(-time.Second)}}
	}
	s.mu.Unlock()
	if _, err := s.Token(&store.Session{ID: "sess_new", UserID: "user_2", ExpiresAt: now.Add(time.Hour)}, nil); err != nil {
		t.Fatal(err)
	}
	s.mu.RLock()
	n := len(s.cache)
	s.mu.RUnlock()
	if n != 2 {
		t.Errorf("after making room the cache holds %d sessions; want the live one and the new one", n)
	}
	if again, _ := s.Token(live, nil); again != token {
		t.Error("making room dropped the token of a session in use")
	}
}
