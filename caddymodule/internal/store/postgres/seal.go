package postgres

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// sealVersion is the first byte of every sealed value; a new key or cipher
// gets a new version.
const sealVersion = 1

// sealer seals values with AES-256-GCM. Each value is bound to its place by
// the additional data (for tokens, "tokens/<account id>"), so a sealed value
// copied into another row does not open there.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (sealer, error) {
	if len(key) != 32 {
		return sealer{}, fmt.Errorf("the encryption key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealer{}, err
	}
	return sealer{aead}, nil
}

// seal returns version ‖ random nonce ‖ ciphertext and tag.
func (s sealer) seal(plain []byte, aad string) []byte {
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:]) // never fails (Go 1.24+)
	return s.aead.Seal(out, out[1:], plain, []byte(aad))
}

var errUnsealable = errors.New("a sealed value does not open (wrong key, or a value moved between rows)")

func (s sealer) open(sealed []byte, aad string) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns || sealed[0] != sealVersion {
		return nil, errUnsealable
	}
	plain, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(aad))
	if err != nil {
		return nil, errUnsealable
	}
	return plain, nil
}

// digest is how a bearer secret (a session or ephemeral id) is stored: its
// SHA-256, which finds the row but cannot be presented as the secret.
func digest(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}
