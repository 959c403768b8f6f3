package provider

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Apple's client secret lifetime: Apple allows up to six months; an hour
// limits what a leaked one is worth. It is re-signed this long before expiry.
const (
	clientSecretTTL   = time.Hour
	clientSecretRenew = 5 * time.Minute
)

// appleAudience is the aud of Apple's client secret.
const appleAudience = "https://appleid.apple.com"

// clientSecretJWT signs the client secret Apple's token and revocation
// endpoints take: an ES256 JWT naming the team (iss) and the client (sub),
// with the key id in its header. Safe for concurrent use.
type clientSecretJWT struct {
	teamID, clientID string
	signer           jose.Signer

	mu      sync.Mutex
	current string
	expiry  time.Time
}

// newClientSecretJWT parses the key, the PEM text of Apple's .p8 file
// (PKCS #8), an ECDSA P-256 key, into a signer for clientID.
func newClientSecretJWT(teamID, keyID, clientID, keyPEM string) (*clientSecretJWT, error) {
	key, err := parseP256Key(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("private_key: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", keyID))
	if err != nil {
		return nil, fmt.Errorf("private_key: %w", err)
	}
	return &clientSecretJWT{teamID: teamID, clientID: clientID, signer: signer}, nil
}

func parseP256Key(keyPEM string) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(keyPEM)))
	if block == nil {
		return nil, errors.New("not a PEM block (paste the whole .p8 file, BEGIN and END lines included)")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("a %q PEM block is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("unreadable key: %v", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("a %T is not an ECDSA P-256 key, as Apple's .p8 keys are", key)
	}
	return ec, nil
}

// get returns a client secret valid for at least clientSecretRenew.
func (s *clientSecretJWT) get(now time.Time) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != "" && now.Before(s.expiry.Add(-clientSecretRenew)) {
		return s.current, nil
	}
	exp := now.Add(clientSecretTTL)
	token, err := jwt.Signed(s.signer).Claims(jwt.Claims{
		Issuer:   s.teamID,
		Subject:  s.clientID,
		Audience: jwt.Audience{appleAudience},
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(exp),
	}).Serialize()
	if err != nil {
		return "", err
	}
	s.current, s.expiry = token, exp
	return token, nil
}
