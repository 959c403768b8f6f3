package keyring

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreate_CreatesOnceAndKeeps(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	var wg sync.WaitGroup
	rings := make([]*Keyring, 8)
	for i := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := LoadOrCreate(dir)
			if err != nil {
				t.Error(err)
				return
			}
			rings[i] = k
		}()
	}
	wg.Wait()
	for _, k := range rings[1:] {
		if k == nil || !bytes.Equal(k.CookieSecret, rings[0].CookieSecret) || !bytes.Equal(k.StoreKey, rings[0].StoreKey) {
			t.Fatal("concurrent creators got different keyrings")
		}
	}
	st, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("keyring mode = %o, want 600", st.Mode().Perm())
	}
	again, err := LoadOrCreate(dir)
	if err != nil || !bytes.Equal(again.CookieSecret, rings[0].CookieSecret) {
		t.Fatalf("reload gave another keyring (err %v)", err)
	}
}

func TestLoadOrCreate_RefusesWorldReadableFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, FileName), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreate(dir)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("err = %v, want a message telling to chmod 600", err)
	}
}

func TestLoadOrCreate_RefusesTruncatedFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(`{"cookie_secret":"AAAA"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("err = %v, want incomplete", err)
	}
}

func TestDerive_SeparatesPurposes(t *testing.T) {
	s := bytes.Repeat([]byte{7}, 32)
	a, b := Derive(s, "cookie hash", 32), Derive(s, "cookie block", 32)
	if bytes.Equal(a, b) || len(a) != 32 || !bytes.Equal(a, Derive(s, "cookie hash", 32)) {
		t.Fatal("Derive must be deterministic per purpose and differ across purposes")
	}
}

func TestLoadOrCreate_AddsASigningKeyToAnOldKeyring(t *testing.T) {
	dir := t.TempDir()
	old := New()
	old.SigningKey = nil
	if err := create(filepath.Join(dir, FileName), old); err != nil {
		t.Fatal(err)
	}
	k, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.CookieSecret, old.CookieSecret) || !bytes.Equal(k.StoreKey, old.StoreKey) {
		t.Fatal("upgrading the keyring changed existing keys")
	}
	signer, err := k.IdentityKeys()
	if err != nil || len(signer) != 1 {
		t.Fatal(len(signer), err)
	}
	again, _ := LoadOrCreate(dir)
	if s2, _ := again.IdentityKeys(); !s2[0].Equal(signer[0]) {
		t.Fatal("the added signing key was not kept")
	}
	if st, _ := os.Stat(filepath.Join(dir, FileName)); st.Mode().Perm() != 0o600 {
		t.Errorf("mode after upgrade %o", st.Mode().Perm())
	}
}

func TestFromSecret_IsDeterministicAndSeparatesKeys(t *testing.T) {
	secret := []byte("a shared secret of at least thirty-two characters")
	a, err := FromSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := FromSecret(secret)
	other, _ := FromSecret([]byte("another shared secret of thirty-two characters"))
	if !bytes.Equal(a.CookieSecret, b.CookieSecret) || !bytes.Equal(a.StoreKey, b.StoreKey) || !bytes.Equal(a.SigningKey, b.SigningKey) {
		t.Fatal("the same secret gave different keys")
	}
	if bytes.Equal(a.CookieSecret, a.StoreKey) || bytes.Equal(a.StoreKey, other.StoreKey) {
		t.Fatal("keys are not separated")
	}
	if _, err := a.IdentityKeys(); err != nil {
		t.Fatal(err)
	}
	if _, err := FromSecret([]byte("short")); err == nil {
		t.Fatal("a short secret was accepted")
	}
}

func TestFromSecret_PreviousSecretsOnlyDecodeOpenAndVerify(t *testing.T) {
	newer := []byte("the new shared secret of at least thirty-two characters")
	older := []byte("the old shared secret of at least thirty-two characters")
	k, err := FromSecret(newer, older)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := FromSecret(newer)
	o, _ := FromSecret(older)
	if !bytes.Equal(k.CookieSecret, n.CookieSecret) || !bytes.Equal(k.StoreKey, n.StoreKey) || !bytes.Equal(k.SigningKey, n.SigningKey) {
		t.Fatal("the first secret's keys do not encode, seal and sign")
	}
	if len(k.CookieSecrets()) != 2 || !bytes.Equal(k.CookieSecrets()[1], o.CookieSecret) ||
		len(k.PreviousStoreKeys) != 1 || !bytes.Equal(k.PreviousStoreKeys[0], o.StoreKey) ||
		len(k.PreviousSigningKeys) != 1 || !bytes.Equal(k.PreviousSigningKeys[0], o.SigningKey) {
		t.Fatal("the previous secret's keys are not kept as previous keys")
	}
	if keys, err := k.IdentityKeys(); err != nil || len(keys) != 2 {
		t.Fatalf("identity keys: %d, %v", len(keys), err)
	}
	for _, bad := range [][][]byte{{newer, newer}, {newer, older, older}, {newer, []byte("short")}} {
		if _, err := FromSecret(bad[0], bad[1:]...); err == nil {
			t.Errorf("%d secrets with a repeat or a short one were accepted", len(bad))
		}
	}
}

func TestRotateSigningKey_KeepsTwoPreviousKeys(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := RotateSigningKey(dir); err != nil {
			t.Fatal(err)
		}
	}
	k, _ := LoadOrCreate(dir)
	keys, err := k.IdentityKeys()
	if err != nil || len(keys) != 3 {
		t.Fatalf("identity keys: %d, %v; want the new one and 2 previous", len(keys), err)
	}
	if bytes.Equal(k.SigningKey, first.SigningKey) || !bytes.Equal(k.CookieSecret, first.CookieSecret) {
		t.Fatal("rotation must change the signing key and nothing else")
	}
	if st, _ := os.Stat(filepath.Join(dir, FileName)); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %o after rotation", st.Mode().Perm())
	}
}
