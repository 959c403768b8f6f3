package testop

import (
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"net/http"
	"slices"
)

// Kid is the key id of the key that signs id_tokens now.
func (s *Server) Kid() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signing
}

// RotateKey makes a new signing key, publishes it in the JWKS beside the
// earlier ones and signs every later id_token with it, as a provider
// rotating its keys does. It returns the new key's kid.
func (s *Server) RotateKey() string {
	key := mustRSAKey()
	kid := "k-" + rand.Text()[:10]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[kid] = key
	s.published = append(s.published, kid)
	s.signing = kid
	return kid
}

// RemoveKey takes kid out of the JWKS. A removed key that still signs (the
// current one, or one chosen with SignWith) makes the id_tokens of a retired
// or leaked key, which a relying party must refuse once its cached JWKS
// expires.
func (s *Server) RemoveKey(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = slices.DeleteFunc(s.published, func(k string) bool { return k == kid })
}

// SignWith makes later id_tokens signed with kid, one of the keys the
// provider made (Kid or RotateKey named it), published or not.
func (s *Server) SignWith(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys[kid] == nil {
		s.t.Errorf("testop: SignWith(%q): no such key", kid)
		return
	}
	s.signing = kid
}

// signingKey returns the kid and key that sign id_tokens now.
func (s *Server) signingKey() (string, *rsa.PrivateKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signing, s.keys[s.signing]
}

// jwks publishes the keys not removed, with the JWKSCacheControl header.
// Under FaultJWKSUnavailable it answers 503 instead.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	if s.mode != OIDC {
		http.NotFound(w, r)
		return
	}
	if s.currentFault() == FaultJWKSUnavailable {
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	s.mu.Lock()
	keys := make([]map[string]string, 0, len(s.published))
	for _, kid := range s.published {
		key := s.keys[kid]
		keys = append(keys, map[string]string{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
			"n": b64(key.N.Bytes()),
			"e": b64(big.NewInt(int64(key.E)).Bytes()),
		})
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", s.jwksCacheControl)
	w.Write(mustJSON(map[string]any{"keys": keys}))
}
