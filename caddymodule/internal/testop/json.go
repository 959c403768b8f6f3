package testop

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
)

// The JSON helpers of the provider's answers and of the tests' claims.

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(mustJSON(v))
}

// marshalObject encodes a caller's map once, failing the test on values JSON
// cannot carry, so handlers never meet an encoding error.
func marshalObject(t testing.TB, what string, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("testop: %s is not JSON-encodable: %v", what, err)
	}
	return b
}

// decodeObject decodes JSON produced by marshalObject; UseNumber keeps
// numeric ids exact.
func decodeObject(b []byte) map[string]any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		panic("testop: decoding our own JSON: " + err.Error())
	}
	return m
}

// mustJSON encodes values built by this package, which are always encodable.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("testop: encoding our own JSON: " + err.Error())
	}
	return b
}

func mustRSAKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("testop: generating an RSA key: " + err.Error())
	}
	return k
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
