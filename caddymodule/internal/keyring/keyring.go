// Package keyring keeps the gateway's own secrets: the cookie secret, the
// store's encryption key and the identity-token keys. With the Badger store
// they are generated once and kept in a file in the storage directory (mode
// 0600), so that restarts keep sessions and the store stays readable; with
// PostgreSQL they derive from the configured secret (FromSecret).
package keyring

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FileName is the keyring's file in the storage directory.
const FileName = "keys.json"

// Keyring holds the generated secrets.
type Keyring struct {
	// CookieSecret signs and encrypts cookies when no cookie_keys are configured.
	CookieSecret []byte `json:"cookie_secret"`
	// StoreKey encrypts the store at rest (AES-256).
	StoreKey []byte `json:"store_key"`
	// SigningKey signs identity tokens: a P-256 key, PKCS #8 DER.
	SigningKey []byte `json:"signing_key"`
	// PreviousSigningKeys are the keys SigningKey replaced, newest first:
	// they stay in the JWKS so tokens signed before a rotation keep
	// verifying until they expire, and one of them signs until SigningKey
	// has been published long enough (see assertion.KeySet).
	PreviousSigningKeys [][]byte `json:"previous_signing_keys,omitempty"`

	// PreviousCookieSecrets and PreviousStoreKeys derive from the older
	// secrets of a rotation (FromSecret): they still decode cookies and
	// open stored values, and never encode or seal. Never in keys.json.
	PreviousCookieSecrets [][]byte `json:"-"`
	PreviousStoreKeys     [][]byte `json:"-"`
}

// New returns a keyring of fresh random secrets.
func New() *Keyring {
	k := &Keyring{CookieSecret: make([]byte, 32), StoreKey: make([]byte, 32)}
	rand.Read(k.CookieSecret)
	rand.Read(k.StoreKey)
	k.SigningKey = newSigningKey()
	return k
}

func newSigningKey() []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // only fails when crypto/rand fails, which Go never lets happen
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	return der
}

// IdentityKeys returns the identity-token keys, newest first: SigningKey,
// then PreviousSigningKeys.
func (k *Keyring) IdentityKeys() ([]*ecdsa.PrivateKey, error) {
	var out []*ecdsa.PrivateKey
	for _, der := range append([][]byte{k.SigningKey}, k.PreviousSigningKeys...) {
		key, err := parseSigningKey(der)
		if err != nil {
			return nil, err
		}
		out = append(out, key)
	}
	return out, nil
}

// CookieSecrets returns the cookie secrets, newest first: CookieSecret,
// then PreviousCookieSecrets.
func (k *Keyring) CookieSecrets() [][]byte {
	return append([][]byte{k.CookieSecret}, k.PreviousCookieSecrets...)
}

// RotateSigningKey makes a new identity-token key in the keyring file in dir;
// the current one becomes the newest previous key (two are kept). A running
// gateway uses it once told (socialgate identity-key-rotate asks it through
// Caddy's admin API), else at its next start.
func RotateSigningKey(dir string) error {
	path := filepath.Join(dir, FileName)
	k, err := load(path)
	if err != nil {
		return err
	}
	k.PreviousSigningKeys = append([][]byte{k.SigningKey}, k.PreviousSigningKeys...)
	if len(k.PreviousSigningKeys) > 2 {
		k.PreviousSigningKeys = k.PreviousSigningKeys[:2]
	}
	k.SigningKey = newSigningKey()
	return replace(path, k)
}

func parseSigningKey(der []byte) (*ecdsa.PrivateKey, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keyring signing key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("keyring signing key is not a P-256 key")
	}
	return ec, nil
}

// LoadOrCreate reads the keyring in dir, creating it if it does not exist.
// A keyring file readable by group or others is refused.
func LoadOrCreate(dir string) (*Keyring, error) {
	path := filepath.Join(dir, FileName)
	k, err := load(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("creating storage directory: %w", err)
		}
		if err := create(path, New()); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		// Read back what is on disk: a concurrent creator may have won.
		k, err = load(path)
	}
	if err == nil && len(k.SigningKey) == 0 {
		// A keyring from before identity tokens: add the key, keep the rest.
		k.SigningKey = newSigningKey()
		if err := replace(path, k); err != nil {
			return nil, err
		}
	}
	return k, err
}

// replace rewrites the keyring atomically (write a temporary file, rename).
func replace(path string, k *Keyring) error {
	tmp := path + ".new"
	os.Remove(tmp)
	if err := create(tmp, k); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("updating keyring: %w", err)
	}
	return nil
}

func load(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keyring %s is readable by others (mode %o): chmod 600 it", path, st.Mode().Perm())
	}
	var k Keyring
	if err := json.NewDecoder(f).Decode(&k); err != nil {
		return nil, fmt.Errorf("reading keyring %s: %w", path, err)
	}
	if len(k.CookieSecret) < 32 || len(k.StoreKey) != 32 {
		return nil, fmt.Errorf("keyring %s is incomplete: a key is missing or too short", path)
	}
	return &k, nil
}

// create writes the keyring to a temporary file and links it into place, so
// a crash never leaves a half-written keyring and two creators never both win.
func create(path string, k *Keyring) error {
	data, err := json.Marshal(k)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*")
	if err != nil {
		return fmt.Errorf("creating keyring: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("creating keyring: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing keyring: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return err
	}
	return nil
}

// Derive returns n bytes derived from secret for one purpose, so one secret
// can key several algorithms without reusing a key.
func Derive(secret []byte, purpose string, n int) []byte {
	key, err := hkdf.Key(sha256.New, secret, nil, "socialgate "+purpose, n)
	if err != nil {
		// Only n > 255*32 fails; every caller asks for far less.
		panic(err)
	}
	return key
}

// MinSecretLength is the shortest secret an operator may configure (a
// shared secret, a cookie key, an API key), in characters.
const MinSecretLength = 32

// FromSecret derives a whole keyring from one shared secret, so that several
// gateways on one database hold the same keys without a file to copy: the
// cookie secret, the store key and the identity-token key all follow from it.
// The previous secrets of a rotation, newest first, add their keys as the
// previous ones: they decode, open and verify, and secret's keys encode,
// seal and sign.
func FromSecret(secret []byte, previous ...[]byte) (*Keyring, error) {
	var k Keyring
	seen := map[string]int{}
	for i, s := range append([][]byte{secret}, previous...) {
		if len(s) < MinSecretLength {
			return nil, fmt.Errorf("secret %d is shorter than %d characters", i+1, MinSecretLength)
		}
		if j, ok := seen[string(s)]; ok {
			return nil, fmt.Errorf("secret %d repeats secret %d", i+1, j+1)
		}
		seen[string(s)] = i
		signing, err := deriveSigningKey(s)
		if err != nil {
			return nil, err
		}
		cookie, store := Derive(s, "cookie secret", 32), Derive(s, "store key", 32)
		if i == 0 {
			k.CookieSecret, k.StoreKey, k.SigningKey = cookie, store, signing
			continue
		}
		k.PreviousCookieSecrets = append(k.PreviousCookieSecrets, cookie)
		k.PreviousStoreKeys = append(k.PreviousStoreKeys, store)
		k.PreviousSigningKeys = append(k.PreviousSigningKeys, signing)
	}
	return &k, nil
}

// deriveSigningKey derives a P-256 identity key from secret, PKCS #8 DER. A
// private key is a scalar below the group order: derive one, trying again
// in the (2^-32) case it is out of range.
func deriveSigningKey(secret []byte) ([]byte, error) {
	for i := 0; ; i++ {
		key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), Derive(secret, fmt.Sprintf("identity key %d", i), 32))
		if err != nil {
			continue
		}
		return x509.MarshalPKCS8PrivateKey(key)
	}
}
