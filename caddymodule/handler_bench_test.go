package caddymodule_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/socialgate/socialgate/internal/testkit"
)

// The request path through a real Caddy in this process, over loopback HTTP
// with keep-alive: a plain reverse_proxy site and the same site behind the
// socialgate handler, so the difference between the rows is what the
// handler adds. B/op and allocs/op count the whole process (client, Caddy,
// upstream): compare rows, not absolutes.
//
//	go test ./caddymodule -run '^$' -bench Proxy -benchmem
//
// perf/loadrun measures the same with separate processes under load.

// benchSites is one Caddy config with a site per row, sharing one app and
// store, and the Cookie header of a dev-provider session valid on all.
type benchSites struct {
	urls   map[string]string // row → http://127.0.0.1:PORT/
	cookie string
}

var benchRows = []struct{ name, handler string }{
	{"plain", ""},
	{"gateway", "socialgate"},
	{"gateway-require", "socialgate {\n\t\trequire dev\n\t}"},
	{"gateway-forward_token", "socialgate {\n\t\tforward_token dev\n\t}"},
}

func startBenchSites(b *testing.B) *benchSites {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello from the upstream\n")
	}))
	b.Cleanup(up.Close)
	dir := b.TempDir()
	devPort := testkit.FreePort(b)
	var sites strings.Builder
	s := &benchSites{urls: map[string]string{}}
	for _, row := range benchRows {
		port := testkit.FreePort(b)
		s.urls[row.name] = fmt.Sprintf("http://127.0.0.1:%d/", port)
		fmt.Fprintf(&sites, "http://127.0.0.1:%d {\n\t%s\n\treverse_proxy %s\n}\n", port, row.handler, strings.TrimPrefix(up.URL, "http://"))
	}
	cfg := fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	storage file_system %s/caddy
	log {
		output discard
	}
	servers {
		trusted_proxies static 127.0.0.1/32
	}
	socialgate {
		storage %s/socialgate
		dev_provider 127.0.0.1:%d
		forward_auth http://127.0.0.1
	}
}
%s`, dir, dir, devPort, sites.String())
	if err := loadCaddyfile(cfg); err != nil {
		b.Fatalf("loading config: %v", err)
	}
	b.Cleanup(func() { caddy.Stop() })
	s.cookie = benchSignIn(b, s.urls["gateway"], fmt.Sprintf("http://127.0.0.1:%d", devPort))
	return s
}

// benchSignIn signs in as ada through the dev provider, as a browser
// would, and returns the Cookie header of the session.
func benchSignIn(b *testing.B, site, devURL string) string {
	b.Helper()
	br := testkit.NewBrowser(nil)
	if err := br.SignInDev(context.Background(), site, devURL, testkit.Ada); err != nil {
		b.Fatal(err)
	}
	cookie, err := br.SessionHeader(site)
	if err != nil {
		b.Fatal(err)
	}
	return cookie
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

// get sends one request and checks it reached the upstream.
func (s *benchSites) get(c *http.Client, target string, cookie bool) error {
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	if cookie {
		req.Header.Set("Cookie", s.cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// BenchmarkProxy is one request at a time: ns/op is the round trip.
func BenchmarkProxy(b *testing.B) {
	s := startBenchSites(b)
	for _, row := range benchRows {
		b.Run(row.name, func(b *testing.B) {
			c := benchClient()
			if err := s.get(c, s.urls[row.name], true); err != nil {
				b.Skipf("%s does not pass a signed-in request: %v", row.name, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.get(c, s.urls[row.name], true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProxy_Parallel keeps GOMAXPROCS×4 requests in flight: ns/op is
// the inverse of throughput.
func BenchmarkProxy_Parallel(b *testing.B) {
	s := startBenchSites(b)
	for _, row := range benchRows {
		b.Run(row.name, func(b *testing.B) {
			c := benchClient()
			if err := s.get(c, s.urls[row.name], true); err != nil {
				b.Skipf("%s does not pass a signed-in request: %v", row.name, err)
			}
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.get(c, s.urls[row.name], true); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkProxy_Unauthenticated is a browser without a session: the
// redirect to the sign-in page, answered by the handler alone.
func BenchmarkProxy_Unauthenticated(b *testing.B) {
	s := startBenchSites(b)
	c := benchClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ := http.NewRequest(http.MethodGet, s.urls["gateway"]+"reports?year=2026", nil)
	req.Header.Set("Accept", "text/html")
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			b.Fatalf("status %d, want 302", resp.StatusCode)
		}
	}
}
