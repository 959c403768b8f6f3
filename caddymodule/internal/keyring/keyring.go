// Package keyring keeps the gateway's own secrets: the cookie secret and the
// store's encryption key. When an operator configures none, they are
// generated once and kept in a file in the storage directory (mode 0600), so
// that restarts keep sessions and the store stays readable.
package keyring

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
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
}

// New returns a keyring of fresh random secrets.
func New() *Keyring {
	k := &Keyring{CookieSecret: make([]byte, 32), StoreKey: make([]byte, 32)}
	rand.Read(k.CookieSecret)
	rand.Read(k.StoreKey)
	return k
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
	return k, err
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
