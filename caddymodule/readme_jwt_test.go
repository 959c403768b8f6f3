package caddymodule_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
	"github.com/socialgate/socialgate/internal/testkit"
)

// readmeJWTUpstream builds the Go recipe of docs/recipes.md for reading the identity
// JWT into an upstream that answers the user id (401 when the token does
// not verify), fetching the JWKS from jwksURL, and returns its address.
func readmeJWTUpstream(t *testing.T, jwksURL string) string {
	t.Helper()
	recipe := docCode(t, "docs/recipes.md", "## Read the identity JWT in an upstream", "go")
	decls, body, ok := strings.Cut(recipe, "tok, err := jwt.ParseSigned")
	if !ok || !strings.Contains(decls, "https://app.example.com/_auth/.well-known/jwks.json") {
		t.Fatalf("the Go recipe of docs/recipes.md is not shaped as this test expects:\n%s", recipe)
	}
	decls = strings.Replace(decls, `"https://app.example.com/_auth/.well-known/jwks.json"`, `os.Getenv("JWKS_URL")`, 1)
	body = strings.ReplaceAll("tok, err := jwt.ParseSigned"+body, "/* 401 */", "w.WriteHeader(http.StatusUnauthorized); return")
	program := `package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)
` + decls + `
func handle(w http.ResponseWriter, r *http.Request) {
` + body + `	fmt.Fprint(w, userID)
}

func main() { http.ListenAndServe(os.Args[1], http.HandlerFunc(handle)) }
`
	// Inside the module, for its dependencies; "_" keeps it out of ./...
	dir, err := os.MkdirTemp("..", "_readme-recipe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(program), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "upstream")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./"+filepath.Base(dir))
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the Go recipe of docs/recipes.md does not build: %v\n%s\n%s", err, out, program)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	cmd := exec.Command(bin, addr)
	cmd.Env = append(os.Environ(), "JWKS_URL="+jwksURL)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr); err == nil {
			resp.Body.Close()
			return addr
		}
	}
	t.Fatal("the recipe's upstream does not answer")
	return ""
}

// TestReadme_GoJWTRecipeFetchesTheJWKSOnceForAnUnknownKey runs the docs'
// Go recipe against a JWKS whose keys rotate: a token of a key it has not
// seen fetches the JWKS again, once; a key still unknown, a token without a
// key id or no token at all is refused, and nothing panics (the recipe once
// indexed [0] of an empty key list).
func TestReadme_GoJWTRecipeFetchesTheJWKSOnceForAnUnknownKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the docs' recipe; skipped with -short")
	}
	keys := make([]*ecdsa.PrivateKey, 3)
	for i := range keys {
		keys[i], _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	var mu sync.Mutex
	published := keys[:1]
	var fetches atomic.Int32
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		var set jose.JSONWebKeySet
		for _, k := range published {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kidFor(k), Algorithm: "ES256", Use: "sig"})
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(jwks.Close)
	upstream := readmeJWTUpstream(t, jwks.URL)
	ask := func(token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+upstream+"/", nil)
		if token != "" {
			req.Header.Set("X-Auth-Jwt", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	sign := func(k *ecdsa.PrivateKey, kid string) string {
		opts := (&jose.SignerOptions{}).WithType("JWT")
		if kid != "" {
			opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
		}
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, opts)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		token, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "socialgate", Subject: "user_1",
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	for _, step := range []struct {
		name    string
		publish int // keys in the JWKS from this step on
		token   string
		status  int
		fetches int32
	}{
		{"the first token fetches the JWKS", 1, sign(keys[0], kidFor(keys[0])), http.StatusOK, 1},
		{"the next one uses it", 1, sign(keys[0], kidFor(keys[0])), http.StatusOK, 1},
		{"a new key fetches it again, once", 2, sign(keys[1], kidFor(keys[1])), http.StatusOK, 2},
		{"a key still unknown is refused without fetching", 2, sign(keys[2], kidFor(keys[2])), http.StatusUnauthorized, 2},
		{"a token without a key id is refused", 2, sign(keys[0], ""), http.StatusUnauthorized, 2},
		{"garbage is refused", 2, "a.b.c", http.StatusUnauthorized, 2},
		{"no token is refused", 2, "", http.StatusUnauthorized, 2},
		{"the upstream still serves", 2, sign(keys[1], kidFor(keys[1])), http.StatusOK, 2},
	} {
		mu.Lock()
		published = keys[:step.publish]
		mu.Unlock()
		status, body := ask(step.token)
		if status != step.status || (status == http.StatusOK && body != "user_1") || fetches.Load() != step.fetches {
			t.Errorf("%s: HTTP %d %q after %d JWKS fetches; want %d after %d", step.name, status, body, fetches.Load(), step.status, step.fetches)
		}
	}
}

func kidFor(k *ecdsa.PrivateKey) string { return assertion.KeyID(&k.PublicKey) }
