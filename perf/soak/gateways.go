package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/socialgate/socialgate/internal/pgserver"
	"github.com/socialgate/socialgate/perf/internal/harness"
)

// gateway is one Caddy process of the soak.
type gateway struct {
	name      string
	dir       string
	adminPort int
	sitePort  int
	proc      *harness.Proc
	configs   [2]string // the two valid configs reloads alternate between
}

func (g *gateway) site() string  { return fmt.Sprintf("http://127.0.0.1:%d/", g.sitePort) }
func (g *gateway) admin() string { return fmt.Sprintf("127.0.0.1:%d", g.adminPort) }

// setting is what every gateway of one store shares.
type setting struct {
	storage  func(g *gateway) string // the app's storage option for g
	issuer   string                  // the faulty provider
	upstream string
	hooks    *receivers
	skew     time.Duration
}

// Secrets the configs use: the API key, the fast receiver's secret, and the
// slow receiver's two, which reloads alternate between.
const (
	apiKey     = "sk_soak_0123456789abcdef0123456789abcdef"
	fastSecret = "whsec_c29hay1mYXN0LXJlY2VpdmVyLXNlY3JldC0xMjM0NTY="
)

var slowSecrets = [2]string{"whsec_c29hay1zbG93LXJlY2VpdmVyLXNlY3JldC1BQUFBQUE=", "whsec_c29hay1zbG93LXJlY2VpdmVyLXNlY3JldC1CQkJCQkI="}

// caddyfile renders g's config variant v (0 or 1): they differ in the slow
// webhook endpoint's secret and in a header of the site, so every reload
// changes both the app and the HTTP server.
func (s setting) caddyfile(g *gateway, v int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin %s\n\tpersist_config off\n\tauto_https off\n\tstorage file_system %s\n", g.admin(), filepath.Join(g.dir, "caddy"))
	fmt.Fprintf(&b, "\tsocialgate {\n\t\tstorage %s\n", s.storage(g))
	fmt.Fprintf(&b, "\t\tprovider oidc corp {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret test-secret\n\t\t}\n", s.issuer)
	fmt.Fprintf(&b, "\t\ttoken_refresh_skew %s\n\t\tapi_key %s\n", s.skew, apiKey)
	// Every browser is 127.0.0.1: lift the per-client limits.
	b.WriteString("\t\trate_limit start 0 1m\n\t\trate_limit callback 0 1m\n\t\trate_limit api 0 1m\n")
	fmt.Fprintf(&b, "\t\twebhook fast %s {\n\t\t\tsecret %s\n\t\t}\n", s.hooks.fast.url, fastSecret)
	fmt.Fprintf(&b, "\t\twebhook slow %s {\n\t\t\tsecret %s\n\t\t}\n", s.hooks.slow.url, slowSecrets[v])
	b.WriteString("\t}\n}\n")
	fmt.Fprintf(&b, "http://127.0.0.1:%d {\n\theader X-Soak-Variant %d\n", g.sitePort, v)
	fmt.Fprintf(&b, "\thandle %s* {\n\t\tsocialgate {\n\t\t\tforward_token corp\n\t\t}\n\t\treverse_proxy %s\n\t}\n", tokenPath, s.upstream)
	fmt.Fprintf(&b, "\thandle {\n\t\tsocialgate\n\t\treverse_proxy %s\n\t}\n}\n", s.upstream)
	return b.String()
}

// startGateways starts n gateways of one store under dir.
func startGateways(bin, dir string, n int, s setting) ([]*gateway, error) {
	var gws []*gateway
	for i := range n {
		ports, err := harness.FreePorts(2)
		if err != nil {
			return gws, err
		}
		g := &gateway{name: fmt.Sprintf("gw%d", i+1), dir: filepath.Join(dir, fmt.Sprintf("gw%d", i+1)), adminPort: ports[0], sitePort: ports[1]}
		g.configs = [2]string{s.caddyfile(g, 0), s.caddyfile(g, 1)}
		if g.proc, err = harness.StartCaddy(g.name, bin, g.dir, g.configs[0], g.site()); err != nil {
			return gws, err
		}
		gws = append(gws, g)
	}
	return gws, nil
}

// badgerStorage keeps each gateway's store in its own directory (Badger
// locks it: one gateway per store).
func badgerStorage(g *gateway) string { return filepath.Join(g.dir, "socialgate") }

// postgresStorage puts every gateway on one database.
func postgresStorage(pg *pgserver.Server) func(*gateway) string {
	var sec [32]byte
	rand.Read(sec[:])
	block := fmt.Sprintf("postgres {\n\t\t\tdsn %q\n\t\t\tsecret %s\n\t\t}", pg.DSN(), hex.EncodeToString(sec[:]))
	return func(*gateway) string { return block }
}

// reload is one reload through the admin API.
type reload struct {
	gateway string
	at      time.Time
	took    time.Duration
	err     error
}

// reloads loads each gateway's other config every interval until ctx ends.
func reloads(ctx context.Context, gws []*gateway, interval time.Duration) []reload {
	var (
		mu  sync.Mutex
		out []reload
	)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for v := 1; ; v ^= 1 {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		var wg sync.WaitGroup
		for _, g := range gws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := reload{gateway: g.name, at: time.Now()}
				r.err = load(g, g.configs[v])
				r.took = time.Since(r.at)
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
}

// load posts a Caddyfile to the gateway's admin /load.
func load(g *gateway, config string) error {
	req, _ := http.NewRequest(http.MethodPost, "http://"+g.admin()+"/load", strings.NewReader(config))
	req.Header.Set("Content-Type", "text/caddyfile")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /load: status %d", resp.StatusCode)
	}
	return nil
}
