// Package assertion issues the identity JWT that upstreams receive with every
// signed-in request, and publishes the keys to verify it (JWKS). A token is
// signed once per session and reused until shortly before it expires, so the
// request path does no signing. A new key is published before it signs
// (KeySet), so verifiers that cache the JWKS never meet a key they lack.
package assertion

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// DefaultLifetime is how long an identity token is valid.
const DefaultLifetime = 5 * time.Minute

// maxCached bounds the per-session token cache.
const maxCached = 100_000

// MaxTokenSize bounds an identity token, the X-Auth-Jwt header's value:
// the groups that would make it longer are left out of it (the first ones
// kept). Upstream servers refuse requests with large headers (8 KiB a line
// at nginx, 16 KiB in all at Node), and X-Auth-User-Groups may take 4 KiB
// of them already.
const MaxTokenSize = 6 << 10

// Claims are the identity token's claims.
type Claims struct {
	jwt.Claims
	SessionID string `json:"sid"`
	// Email is the user's verified address, never an unverified one;
	// EmailVerified is true with it, false when the user has none.
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name,omitempty"`
	// Groups are the user's groups when the session began (provider:group).
	Groups []string `json:"groups,omitempty"`
	// PublicMetadata is the user's public metadata, as the backend API set
	// it: current within a token's lifetime. A token it would make longer
	// than MaxTokenSize goes without it (read it from the backend API).
	PublicMetadata map[string]any `json:"public_metadata,omitempty"`
}

// Signer issues identity tokens. Safe for concurrent use.
type Signer struct {
	keys     *KeySet
	issuer   string
	audience []string
	lifetime time.Duration
	now      func() time.Time

	mu    sync.RWMutex        // read on every request, written once per session per lifetime
	cache map[string][]cached // by session id, one per audience
}

type cached struct {
	token     string
	audience  string // Audience.key
	refreshAt time.Time
	keys      *keyState // the keys when it was signed
	updated   time.Time // the session's UpdatedAt when it was signed
	// who is what the token says of its session: a session that says
	// otherwise now gets a new token.
	who identity
}

// identity is what a token says of its session's user.
type identity struct {
	subject, email, name string
	groups               []string
}

func identityOf(sess *store.Session) identity {
	return identity{subject: sess.UserID, email: sess.VerifiedEmail(), name: sess.Name, groups: sess.Groups}
}

func (a identity) is(b identity) bool {
	return a.subject == b.subject && a.email == b.email && a.name == b.name && slices.Equal(a.groups, b.groups)
}

// Audience is an aud claim in place of the Signer's own: a route's, so that
// a token captured from one site's upstream verifies at no other's.
type Audience struct {
	claim jwt.Audience
	key   string // the claim, joined: what the cache tells tokens apart by
}

// NewAudience returns the audience aud; nil for none (the Signer's own).
func NewAudience(aud []string) *Audience {
	if len(aud) == 0 {
		return nil
	}
	return &Audience{claim: aud, key: "\x00" + strings.Join(aud, "\x00")}
}

// Options configure a Signer.
type Options struct {
	// Keys sign tokens (ES256) and verify them (JWKS); required.
	Keys *KeySet
	// Issuer is the iss claim; required.
	Issuer string
	// Audience is the aud claim; default none.
	Audience []string
	// Lifetime of a token; default DefaultLifetime.
	Lifetime time.Duration
	Now      func() time.Time
}

// New returns a Signer.
func New(o Options) (*Signer, error) {
	if o.Keys == nil || o.Issuer == "" {
		return nil, errors.New("identity token: keys and an issuer are required")
	}
	if o.Lifetime == 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Signer{keys: o.Keys, issuer: o.Issuer, audience: o.Audience,
		lifetime: o.Lifetime, now: o.Now, cache: map[string][]cached{}}, nil
}

// KeyID is the key's RFC 7638 thumbprint, base64url.
func KeyID(pub *ecdsa.PublicKey) string {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// JWKS is the JSON Web Key Set that verifies the tokens.
func (s *Signer) JWKS() []byte { return s.keys.JWKS() }

// JWKSMaxAge is how long verifiers may cache the JWKS (KeySet.MaxAge).
func (s *Signer) JWKSMaxAge() time.Duration { return s.keys.MaxAge() }

// Token returns the identity token of a session for aud (nil: the Signer's
// own audience), signing a new one only when the cached one is within a
// fifth of its lifetime of expiring, when the keys changed since (its key
// may have left the JWKS), when the session's copy of its user changed
// (Session.UpdatedAt), or when the session says something else of its user
// than the token does. The cache needs no invalidation: a session that ends
// is never asked for again, and its tokens make way when the cache is full.
func (s *Signer) Token(sess *store.Session, aud *Audience) (string, error) {
	now := s.now()
	keys := s.keys.state.Load()
	audience, key := jwt.Audience(s.audience), ""
	if aud != nil {
		audience, key = aud.claim, aud.key
	}
	s.mu.RLock()
	i := slices.IndexFunc(s.cache[sess.ID], func(c cached) bool { return c.audience == key })
	var c cached
	if i >= 0 {
		c = s.cache[sess.ID][i]
	}
	s.mu.RUnlock()
	who := identityOf(sess)
	if i >= 0 && now.Before(c.refreshAt) && c.keys == keys && c.updated.Equal(sess.UpdatedAt) && c.who.is(who) {
		return c.token, nil
	}
	exp := now.Add(s.lifetime)
	if sess.ExpiresAt.Before(exp) {
		exp = sess.ExpiresAt
	}
	claims := Claims{
		Claims: jwt.Claims{
			Issuer:    s.issuer,
			Subject:   sess.UserID,
			Audience:  audience,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			Expiry:    jwt.NewNumericDate(exp),
			ID:        tokenID(sess.ID, now),
		},
		SessionID:      sess.ID,
		Name:           sess.Name,
		Groups:         sess.Groups,
		PublicMetadata: sess.PublicMetadata,
	}
	claims.Email = sess.VerifiedEmail()
	claims.EmailVerified = claims.Email != ""
	token, err := keys.sign(claims, keys.pick(now, time.Duration(s.keys.delay.Load())))
	if err != nil {
		return "", fmt.Errorf("signing identity token: %w", err)
	}
	s.mu.Lock()
	if len(s.cache) >= maxCached {
		s.sweep(now)
	}
	entries := slices.DeleteFunc(s.cache[sess.ID], func(c cached) bool { return c.audience == key })
	s.cache[sess.ID] = append(entries, cached{token: token, audience: key, refreshAt: exp.Add(-s.lifetime / 5), keys: keys, updated: sess.UpdatedAt, who: who})
	s.mu.Unlock()
	return token, nil
}

// sign signs c with key i, with as many of its groups as keep the token
// within MaxTokenSize (all of them, mostly).
func (st *keyState) sign(c Claims, i int) (string, error) {
	if payload, err := encode(c); err == nil && len(payload) > st.maxPayload {
		c.PublicMetadata = nil
	}
	groups := c.Groups
	var payload []byte
	var err error
	fits := func(n int) bool {
		c.Groups = groups[:n]
		payload, err = encode(c)
		return err == nil && len(payload) <= st.maxPayload
	}
	if !fits(len(groups)) {
		// The most groups that fit, found by halving; with none at all the
		// token is as small as it gets, and signed anyway.
		fits(sort.Search(len(groups), func(n int) bool { return !fits(n + 1) }))
	}
	if err != nil {
		return "", err
	}
	jws, err := st.signers[i].Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// encode is the JSON of c without HTML escaping: an upstream reads the
// token's JSON, not a page, and escaped, each <, > or & in a name or a group
// would take six bytes.
func encode(c Claims) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// sweep makes room in the cache: it drops the tokens due for renewal (those
// of ended sessions among them), and everything when that freed less than
// a quarter. s.mu is held.
func (s *Signer) sweep(now time.Time) {
	for id, entries := range s.cache {
		if !slices.ContainsFunc(entries, func(c cached) bool { return now.Before(c.refreshAt) }) {
			delete(s.cache, id)
		}
	}
	if len(s.cache) > maxCached*3/4 {
		clear(s.cache)
	}
}

func tokenID(sessionID string, now time.Time) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s|%d", sessionID, now.UnixNano())))
	return base64.RawURLEncoding.EncodeToString(h[:12])
}
