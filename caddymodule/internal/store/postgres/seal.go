package postgres

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// sealVersion is the first byte of every sealed value; a new cipher or
// format gets a new version.
const sealVersion = 1

// sealer seals values with AES-256-GCM. Each value is bound to its place by
// the additional data (for tokens, "tokens/<account id>"), so a sealed value
// copied into another row does not open there. It holds the current key,
// which seals, and the previous keys of a rotation, which still open what
// they sealed until Rekey has sealed it again under the current key.
type sealer struct{ aeads []cipher.AEAD } // current first

func newSealer(current []byte, previous ...[]byte) (sealer, error) {
	var s sealer
	for i, key := range append([][]byte{current}, previous...) {
		if len(key) != 32 {
			return sealer{}, fmt.Errorf("encryption key %d must be 32 bytes, not %d", i+1, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return sealer{}, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return sealer{}, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// seal returns version ‖ random nonce ‖ ciphertext and tag, under the
// current key.
func (s sealer) seal(plain []byte, aad string) []byte {
	aead := s.aeads[0]
	ns := aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:]) // never fails (Go 1.24+)
	return aead.Seal(out, out[1:], plain, []byte(aad))
}

var errUnsealable = errors.New("a sealed value does not open (wrong key, or a value moved between rows)")

// open opens a value sealed under any of the keys.
func (s sealer) open(sealed []byte, aad string) ([]byte, error) {
	plain, _, err := s.openWith(sealed, aad)
	return plain, err
}

// openWith opens sealed and tells which key did: 0 is the current one.
func (s sealer) openWith(sealed []byte, aad string) (plain []byte, key int, err error) {
	for i, aead := range s.aeads {
		ns := aead.NonceSize()
		if len(sealed) < 1+ns || sealed[0] != sealVersion {
			return nil, 0, errUnsealable
		}
		if plain, err := aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(aad)); err == nil {
			return plain, i, nil
		}
	}
	return nil, 0, errUnsealable
}

// reseal returns sealed under the current key, and whether it was under a
// previous one (else it is returned as it is).
func (s sealer) reseal(sealed []byte, aad string) ([]byte, bool, error) {
	plain, key, err := s.openWith(sealed, aad)
	if err != nil || key == 0 {
		return sealed, false, err
	}
	return s.seal(plain, aad), true, nil
}

// digest is how an ephemeral id (a bearer secret) or a session id is stored:
// its SHA-256, which finds the row but cannot be presented as the id.
func digest(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}
