package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socialgate/socialgate/perf/internal/harness"
)

// site is one protected (or plain) site of a Caddy process.
type site struct {
	row     string // row name in the table
	port    int
	handler string // the socialgate directive, or "" for plain
}

func (s site) url() string { return fmt.Sprintf("http://127.0.0.1:%d/", s.port) }

// urls are the sites' URLs.
func urls(sites []site) []string {
	out := make([]string, len(sites))
	for i, s := range sites {
		out[i] = s.url()
	}
	return out
}

// caddyfile renders a config for sites in front of upstream. With devPort > 0
// it configures the socialgate app with the dev provider on that port, its
// store under dir and the extra options.
func caddyfile(dir string, adminPort, devPort int, upstream string, sites []site, options ...string) string {
	return caddyfileStorage(dir, filepath.Join(dir, "socialgate"), adminPort, devPort, upstream, sites, options...)
}

// caddyfileStorage is caddyfile with the socialgate app's storage option
// given verbatim (a directory, or a `postgres { … }` block).
func caddyfileStorage(dir, storage string, adminPort, devPort int, upstream string, sites []site, options ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n\tauto_https off\n\tstorage file_system %s\n", adminPort, filepath.Join(dir, "caddy"))
	if devPort > 0 {
		fmt.Fprintf(&b, "\tsocialgate {\n\t\tstorage %s\n\t\tdev_provider 127.0.0.1:%d\n", storage, devPort)
		for _, o := range options {
			fmt.Fprintf(&b, "\t\t%s\n", o)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	for _, s := range sites {
		fmt.Fprintf(&b, "http://127.0.0.1:%d {\n", s.port)
		if s.handler != "" {
			fmt.Fprintf(&b, "\t%s\n", strings.ReplaceAll(s.handler, "\n", "\n\t"))
		}
		fmt.Fprintf(&b, "\treverse_proxy %s\n}\n", upstream)
	}
	return b.String()
}

// adapts reports whether the binary accepts a socialgate directive and
// global options: the Caddyfile adapter runs their parsers, so a feature
// that has not landed fails here.
func adapts(bin, dir, handler string, options ...string) (bool, string) {
	src := caddyfile(dir, 2019, 9999, "127.0.0.1:1", []site{{port: 8080, handler: handler}}, options...)
	path := filepath.Join(dir, "probe.Caddyfile")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		return false, err.Error()
	}
	out, err := exec.Command(bin, "adapt", "--config", path, "--adapter", "caddyfile").CombinedOutput()
	if err != nil {
		return false, harness.LastLine(string(out))
	}
	return true, ""
}

// The upstream is this program run with -serve-upstream: a tiny HTTP server
// in its own process, so it never shares a Go runtime with the load client.
// It counts what reaches it, so the runner can check that every measured
// request went through (a gateway answering with a redirect would look fast).

const upstreamBody = "hello from the upstream\n"

type upstreamStats struct {
	Requests   int64 `json:"requests"`
	WithUser   int64 `json:"with_user"`   // carried X-Auth-User-Id
	WithToken  int64 `json:"with_token"`  // carried an X-Auth-Token-* header
	WithCookie int64 `json:"with_cookie"` // carried a gateway cookie (must stay 0)
	Tokens     int64 `json:"tokens"`      // distinct X-Auth-Token-* values seen under /storm/
}

func serveUpstream(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	var requests, withUser, withToken, withCookie atomic.Int64
	var mu sync.Mutex
	tokens := map[[sha256.Size]byte]bool{} // digests of the tokens seen
	mux := http.NewServeMux()
	mux.HandleFunc("/__stats", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		distinct := int64(len(tokens))
		mu.Unlock()
		json.NewEncoder(w).Encode(upstreamStats{requests.Load(), withUser.Load(), withToken.Load(), withCookie.Load(), distinct})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("X-Auth-User-Id") != "" {
			withUser.Add(1)
		}
		for k, v := range r.Header {
			if strings.HasPrefix(k, "X-Auth-Token-") {
				withToken.Add(1)
				if strings.HasPrefix(r.URL.Path, stormPath) { // only there: the other rows don't pay for it
					mu.Lock()
					tokens[sha256.Sum256([]byte(strings.Join(v, ",")))] = true
					mu.Unlock()
				}
				break
			}
		}
		if strings.Contains(r.Header.Get("Cookie"), "socialgate_") {
			withCookie.Add(1)
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, upstreamBody)
	})
	return http.Serve(ln, mux)
}

// startUpstream runs this program as the upstream and returns its address.
func startUpstream(dir string) (*harness.Proc, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	return harness.LaunchReporting("upstream", filepath.Join(dir, "upstream.log"), exec.Command(self, "-serve-upstream", "127.0.0.1:0"))
}

func readStats(upstream string) (upstreamStats, error) {
	var s upstreamStats
	resp, err := http.Get("http://" + upstream + "/__stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s, err
}

// settledStats waits until the upstream's counts stop moving (requests the
// client gave up on at its deadline may still be on their way) and returns
// them, so that no run's stragglers land in the next run's counts.
func settledStats(upstream string) (upstreamStats, error) {
	last, err := readStats(upstream)
	for i := 0; err == nil && i < 20; i++ {
		time.Sleep(100 * time.Millisecond)
		var now upstreamStats
		if now, err = readStats(upstream); err == nil && now == last {
			return now, nil
		}
		last = now
	}
	return last, err
}

func (s upstreamStats) minus(o upstreamStats) upstreamStats {
	return upstreamStats{s.Requests - o.Requests, s.WithUser - o.WithUser, s.WithToken - o.WithToken, s.WithCookie - o.WithCookie, s.Tokens - o.Tokens}
}
