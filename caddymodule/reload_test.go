package caddymodule_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
)

const baseCookieKey = "cookie-key-0-0123456789abcdefghijklmnopqrstuvwxyz"

// TestReload_UnderLoadLosesNoRequest reloads the config 24 times, changing
// providers, cookie keys (rotating, old keys kept) and API keys, while
// clients keep sending authenticated requests: every request is answered
// 200 for the signed-in user. Caddy itself closes connections during a
// reload (each config binds its own SO_REUSEPORT socket and old servers
// close idle keep-alives; plain reverse_proxy shows the same), so the
// client retries a request whose connection broke before any answer, as
// HTTP clients do for idempotent requests; any HTTP answer but 200 fails.
func TestReload_UnderLoadLosesNoRequest(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	e := newEnv(t, options{Global: "cookie_keys " + baseCookieKey})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)

	var sent, failed, retried atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var resp *http.Response
				var err error
				for try := 0; try < 5; try++ {
					req, _ := http.NewRequest(http.MethodGet, e.Base+"/during-reload", nil)
					req.Header.Set("Accept", "application/json")
					if resp, err = b.c.Do(req); err == nil {
						break
					}
					retried.Add(1)
				}
				sent.Add(1)
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					if err == nil {
						t.Logf("request failed during reloads: status %d", resp.StatusCode)
					} else {
						t.Logf("request failed during reloads: %v", err)
					}
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	for i := 1; i <= 24; i++ {
		keys := fmt.Sprintf("cookie-key-%d-0123456789abcdefghijklmnopqrstuvwxyz %s", i, baseCookieKey)
		global := fmt.Sprintf("cookie_keys %s\n\t\tapi_key sk_reload_%d_0123456789abcdef0123456789", keys, i)
		if i%2 == 0 {
			global += fmt.Sprintf("\n\t\tprovider oidc extra%d {\n\t\t\tissuer http://127.0.0.1:1/%d\n\t\t\tclient_id x\n\t\t}", i, i)
		}
		if err := e.Load(options{Global: global}); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		time.Sleep(40 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || sent.Load() < 50 {
		t.Fatalf("%d of %d requests failed during 24 reloads", failed.Load(), sent.Load())
	}
	t.Logf("%d requests during 24 reloads, none failed (%d connection-level retries)", sent.Load(), retried.Load())

	// A new sign-in after the reloads is encoded with the newest key and works.
	if resp, _ := newBrowser(t).signInDev(e, "/", ada); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in after reloads: %d", resp.StatusCode)
	}

	// Stopping releases everything: the store opens again and no goroutine
	// of ours is left behind (while running, the check must see some).
	if len(ourGoroutines()) == 0 {
		t.Fatal("the goroutine check finds nothing of ours in a running gateway: it is blind")
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.Storage, "socialgate")
	keys, _ := keyring.LoadOrCreate(dir)
	st, err := badger.Open(badger.Options{Dir: dir, EncryptionKey: keys.StoreKey})
	if err != nil {
		t.Fatalf("the store is still held after stop: %v", err)
	}
	st.Close()
	// Caddy's reverse_proxy keeps idle upstream connections of old configs
	// until they time out; those are Caddy's. None of ours may remain.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ours := ourGoroutines()
		if len(ours) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of socialgate or Badger outlive the stopped config:\n%s", len(ours), strings.Join(ours, "\n\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("goroutines: %d before the test, %d after stop (none of socialgate or Badger)", goroutines, runtime.NumGoroutine())
}

// ourGoroutines returns the stacks of live goroutines running socialgate or
// Badger code (test code aside).
func ourGoroutines() []string {
	buf := make([]byte, 8<<20)
	var ours []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "caddymodule_test.") {
			continue
		}
		if strings.Contains(g, "socialgate/caddymodule") || strings.Contains(g, "dgraph-io/badger") || strings.Contains(g, "dgraph-io/ristretto") {
			ours = append(ours, g)
		}
	}
	return ours
}

// TestIdentityKeyRotation_OldTokensStillVerify rotates keys.json behind the
// gateway's back and reloads: the new key is published at once and signs
// only after identity_key_delay; tokens of both keys verify throughout.
func TestIdentityKeyRotation_OldTokensStillVerify(t *testing.T) {
	const delay = "identity_key_delay 1s"
	e := newEnv(t, options{Global: delay})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	before := e.Upstream.Last(t).Get("X-Auth-Jwt")
	if err := keyring.RotateSigningKey(filepath.Join(e.Storage, "socialgate")); err != nil {
		t.Fatal(err)
	}
	// The store stays open across the reload (it is pooled); the identity
	// keys are read again.
	if err := e.Load(options{Global: delay}); err != nil {
		t.Fatal(err)
	}
	signIn := func() string {
		newBrowser(t).signInDev(e, "/", person("Grace Hopper", "grace@example.com", true))
		return e.Upstream.Last(t).Get("X-Auth-Jwt")
	}
	during := signIn()
	time.Sleep(1100 * time.Millisecond)
	after := signIn()
	_, jwks := b.get(e.Base + "/_auth/.well-known/jwks.json")
	for name, token := range map[string]string{"before the rotation": before, "right after": during, "after the delay": after} {
		if !verifiesWith(t, jwks, token) {
			t.Errorf("a token signed %s does not verify with the JWKS", name)
		}
	}
	if kidOf(t, before) != kidOf(t, during) {
		t.Error("the new key signs before the delay has passed")
	}
	if kidOf(t, before) == kidOf(t, after) {
		t.Error("the key did not change after the delay")
	}
}
