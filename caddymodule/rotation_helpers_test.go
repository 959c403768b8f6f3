package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/socialgate/socialgate/internal/testkit"
)

// servingGateway is the gateway binary with Caddy's admin API, serving a
// site that answers a signed-in request with the identity token it would
// send upstream, so that tests reload it through the admin API, restart it
// and run commands against it, as an operator does.
type servingGateway struct {
	t       *testing.T
	bin     cli
	site    *env // its site and dev provider
	admin   string
	port    int
	devPort int
	dir     string // Caddy's storage and the Caddyfile
	cmd     *exec.Cmd
	logs    *syncBuffer
}

// syncBuffer is a buffer a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newServingGateway(t *testing.T) *servingGateway {
	t.Helper()
	bin := testkit.Socialgate(t)
	g := &servingGateway{t: t, bin: cli(bin), port: testkit.FreePort(t), devPort: testkit.FreePort(t), dir: t.TempDir()}
	g.admin = fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	g.site = &env{t: t, Base: fmt.Sprintf("http://127.0.0.1:%d", g.port), DevURL: fmt.Sprintf("http://127.0.0.1:%d", g.devPort)}
	t.Cleanup(func() {
		g.stop()
		if t.Failed() && g.logs != nil {
			t.Logf("the gateway logged:\n%s", g.logs.String())
		}
	})
	return g
}

// caddyfile is the gateway's config: storage is the storage option, global
// are more lines of the socialgate global option.
func (g *servingGateway) caddyfile(storage string, global ...string) string {
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	auto_https off
	storage file_system %s/caddy
	socialgate {
		%s
		dev_provider 127.0.0.1:%d
		api_key %s
		session_cache 0
		%s
	}
}
http://127.0.0.1:%d {
	socialgate
	respond "{http.request.header.X-Auth-Jwt}"
}
`, g.admin, g.dir, storage, g.devPort, apiKey, strings.Join(global, "\n\t\t"), g.port)
}

// start runs the gateway on the config and waits until it serves.
func (g *servingGateway) start(storage string, global ...string) {
	g.t.Helper()
	conf := filepath.Join(g.dir, "Caddyfile")
	if err := os.WriteFile(conf, []byte(g.caddyfile(storage, global...)), 0o600); err != nil {
		g.t.Fatal(err)
	}
	g.cmd = exec.Command(string(g.bin), "run", "--config", conf, "--adapter", "caddyfile")
	g.cmd.Env = privateEnv(g.t)
	g.logs = new(syncBuffer)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(g.site.Base + "/_auth/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	g.t.Fatalf("the gateway did not start:\n%s", g.logs.String())
}

// stop kills the gateway, as a crash or a restart does.
func (g *servingGateway) stop() {
	if g.cmd != nil {
		g.cmd.Process.Kill()
		g.cmd.Wait()
		g.cmd = nil
	}
}

// reload loads the config through the admin API, as `caddy reload` does,
// and returns the admin API's status and answer (its error message, when it
// has one).
func (g *servingGateway) reload(storage string, global ...string) (int, string) {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+g.admin+"/load", strings.NewReader(g.caddyfile(storage, global...)))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	g.site.settle()
	var answer struct{ Error string }
	if json.Unmarshal(body, &answer) == nil && answer.Error != "" {
		return resp.StatusCode, answer.Error
	}
	return resp.StatusCode, string(body)
}

// identity returns the identity token the site answers b with, or "" when
// b has no session there.
func (g *servingGateway) identity(b *browser) string {
	g.t.Helper()
	resp, body := b.get(g.site.Base + "/")
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return body
}

// jwksVerifier verifies identity tokens as the Go recipe of docs/recipes.md does: it
// keeps the JWKS for its Cache-Control max-age and, meeting a key id it
// lacks, fetches it again, such refetches at most once per cooldown.
// Refetches counts them: with keys published before they sign, a verifier
// that honours max-age never needs one.
type jwksVerifier struct {
	url       string
	cooldown  time.Duration
	keys      jose.JSONWebKeySet
	expires   time.Time
	refetched time.Time
	Refetches int
}

func (v *jwksVerifier) fetch() error {
	resp, err := http.Get(v.url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return err
	}
	maxAge, _ := strconv.Atoi(strings.TrimPrefix(resp.Header.Get("Cache-Control"), "public, max-age="))
	v.keys, v.expires = set, time.Now().Add(time.Duration(maxAge)*time.Second)
	return nil
}

// verify checks token and returns its key id.
func (v *jwksVerifier) verify(token string) (string, error) {
	if time.Now().After(v.expires) {
		if err := v.fetch(); err != nil {
			return "", err
		}
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return "", fmt.Errorf("not a JWT: %v", err)
	}
	kid := tok.Headers[0].KeyID
	keys := v.keys.Key(kid)
	if len(keys) == 0 && time.Since(v.refetched) >= v.cooldown {
		v.Refetches++
		v.refetched = time.Now()
		if err := v.fetch(); err != nil {
			return "", err
		}
		keys = v.keys.Key(kid)
	}
	if len(keys) == 0 {
		return kid, errors.New("no key " + kid + " in the JWKS")
	}
	var claims jwt.Claims
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		return kid, err
	}
	return kid, claims.ValidateWithLeeway(jwt.Expected{Time: time.Now()}, 0)
}

// mustVerify verifies token and returns its key id, failing t otherwise.
func (v *jwksVerifier) mustVerify(t *testing.T, what, token string) string {
	t.Helper()
	if token == "" {
		t.Fatalf("%s: no identity token", what)
	}
	kid, err := v.verify(token)
	if err != nil {
		t.Fatalf("%s: the verifier with a cached JWKS fails: %v", what, err)
	}
	return kid
}

// jwksKids returns the key ids the gateway's JWKS publishes now.
func jwksKids(t *testing.T, base string) []string {
	t.Helper()
	v := &jwksVerifier{url: base + "/_auth/.well-known/jwks.json"}
	if err := v.fetch(); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range v.keys.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}
