// Command bigstore measures the gateway on a big store: it builds a Badger
// store of -users users with two linked accounts each (time to build, size on
// disk), then runs the gateway binary on it and on a small store, and
// compares the latency of signed-in requests whose session is not cached
// (session_cache 0: one store read each) and the gateway's resident memory.
//
//	go run ./caddymodule/internal/bigstore -users 1000000
//	go run ./caddymodule/internal/bigstore -dir /var/tmp/bs   # keep the stores, reuse them next time
//	go run ./caddymodule/internal/bigstore -profile prof      # also CPU and heap profiles of each gateway
//
// Both gateways run at once and are measured alternately (-runs, -duration);
// the table shows medians and each gateway's peak resident memory.
//
// It lives under caddymodule/internal, not under perf/ with the other
// measurements, because it builds stores with the store and session
// packages directly, and Go lets only packages under caddymodule import
// caddymodule/internal; the binary has no command that builds a store of
// a million users with sessions to take its place.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/internal/freeport"
	"github.com/socialgate/socialgate/internal/testkit"
)

// profiles is the directory for pprof profiles of the gateway (-profile).
var profiles *string

func main() {
	users := flag.Int("users", 1_000_000, "users in the big store (each with two linked accounts)")
	small := flag.Int("small", 10_000, "users in the small store")
	sample := flag.Int("sample", 2_000, "users of each store given a session for the requests")
	duration := flag.Duration("duration", 10*time.Second, "request time per store and run")
	runs := flag.Int("runs", 3, "measured runs per store, alternating between them; the table shows medians")
	keep := flag.String("dir", "", "keep the stores in this directory and reuse the ones already built there")
	profiles = flag.String("profile", "", "write the gateway's CPU and heap profiles under load (pprof) into this directory")
	flag.Parse()
	tmp, err := os.MkdirTemp("", "bigstore-")
	check(err)
	defer os.RemoveAll(tmp)
	stores := tmp
	if *keep != "" {
		stores = *keep
	}
	bin, err := testkit.Build(tmp, "./cmd/socialgate")
	check(err)
	fmt.Printf("## socialgate on a big store\n\n- machine: %s, %d cores (shared)\n\n", cpuModel(), numCPU())
	type result struct {
		n, size int
		built   time.Duration
		gw      *gateway
	}
	var results []*result
	for _, n := range []int{*small, *users} {
		dir := filepath.Join(stores, fmt.Sprintf("store-%d", n))
		built, tokens := build(dir, n, *sample)
		results = append(results, &result{n: n, size: int(diskSize(dir) >> 20), built: built, gw: startGateway(bin, dir, tokens)})
		defer results[len(results)-1].gw.stop()
	}
	// Warm both up, then measure them alternately, so that other work on
	// the machine weighs on both alike.
	for _, r := range results {
		r.gw.measure(*duration/4, false, false)
	}
	for i := range *runs {
		for _, r := range results {
			fmt.Fprintf(os.Stderr, "run %d/%d: %d users …\n", i+1, *runs, r.n)
			r.gw.measure(*duration, true, i == 0 && *profiles != "")
		}
	}
	fmt.Printf("- %d runs × %s per store, alternating; medians; 8 clients, keep-alive, random sessions of %d users\n", *runs, *duration, *sample)
	fmt.Printf("- load average after the runs: %s\n\n", loadAverage())
	fmt.Println("| store | build time | size on disk | p50 | p90 | p99 | requests/s | gateway RSS (anon) | RSS incl. mapped store files |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		g := r.gw
		fmt.Printf("| %d users / %d accounts | %s | %d MiB | %s | %s | %s | %.0f | %d MiB | %d MiB |\n",
			r.n, 2*r.n, r.built.Round(time.Second), r.size, median(g.p50s).Round(time.Microsecond),
			median(g.p90s).Round(time.Microsecond), median(g.p99s).Round(time.Microsecond), median(g.rps), g.anon>>10, g.rss>>10)
	}
	fmt.Printf("\nbig/small p50 of uncached signed-in requests: %.2f (runs: %s)\n",
		float64(median(results[1].gw.p50s))/float64(median(results[0].gw.p50s)), ratios(results[1].gw.p50s, results[0].gw.p50s))
}

// ratios is big/small per run.
func ratios(big, small []time.Duration) string {
	var out []string
	for i := range big {
		out = append(out, fmt.Sprintf("%.2f", float64(big[i])/float64(small[i])))
	}
	return strings.Join(out, ", ")
}

// loadAverage is the 1, 5 and 15 minute load average.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// build signs in n users with two accounts each (concurrently, without
// fsync) and gives sample of them a session; it returns the build time and
// the session tokens.
//
// A store already built in dir (by an earlier run with -dir) is reused: only
// the sessions are issued, and the build time is the one recorded then.
func build(dir string, n, sample int) (time.Duration, []string) {
	keys, err := keyring.LoadOrCreate(dir)
	check(err)
	st, err := badger.Open(badger.Options{Dir: dir, EncryptionKey: keys.StoreKey, BulkLoad: true})
	check(err)
	marker := filepath.Join(dir, "bigstore-built")
	if data, err := os.ReadFile(marker); err == nil {
		built, err := time.ParseDuration(strings.TrimSpace(string(data)))
		check(err)
		pruneEvents(st)
		return built, issueSessions(st, keys, n, sample)
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	ctx := context.Background()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				res, err := st.SignIn(ctx, devSignIn(int(i)))
				check(err)
				_, err = st.SignIn(ctx, store.SignIn{Now: time.Now(), LinkToUser: res.User.ID, Account: store.ExternalAccount{
					Provider: "corp", Issuer: "http://127.0.0.1:2", Subject: fmt.Sprint("corp-", i),
					Email: fmt.Sprintf("user%d@big.example", i), Tokens: store.TokenSet{AccessToken: fmt.Sprint("cat-", i)}}})
				check(err)
			}
		}()
	}
	wg.Wait()
	pruneEvents(st)
	built := time.Since(start)
	check(os.WriteFile(marker, []byte(built.String()), 0o600))
	return built, issueSessions(st, keys, n, sample)
}

// pruneEvents deletes the store's webhook events, as a running gateway
// without webhook endpoints does every minute: a store that has been
// serving does not carry the events of a million sign-ups.
func pruneEvents(st *badger.Store) {
	check(st.DeleteEventsBefore(context.Background(), store.EventID(math.MaxInt64)))
}

// devSignIn is user i's sign-in with their first account.
func devSignIn(i int) store.SignIn {
	return store.SignIn{Now: time.Now(), Account: store.ExternalAccount{
		Provider: "dev", Issuer: "http://127.0.0.1:1", Subject: fmt.Sprint("dev-", i), Email: fmt.Sprintf("user%d@big.example", i),
		EmailVerified: true, Name: fmt.Sprint("User ", i),
		Tokens: store.TokenSet{AccessToken: fmt.Sprint("at-", i), RefreshToken: fmt.Sprint("rt-", i), Expiry: time.Now().Add(time.Hour)}}}
}

// issueSessions gives sample random users of st a session each, closes st
// and returns the session tokens.
func issueSessions(st *badger.Store, keys *keyring.Keyring, n, sample int) []string {
	ctx := context.Background()
	mgr, err := session.NewManager(st, [][]byte{keys.CookieSecret}, 24*time.Hour)
	check(err)
	var tokens []string
	for i := 0; i < sample; i++ {
		// Signing user i in again finds them by their identity.
		res, err := st.SignIn(ctx, devSignIn(rand.IntN(n)))
		check(err)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		_, token, err := mgr.Issue(ctx, r, res.User, res.Account.ID, 0)
		check(err)
		tokens = append(tokens, token)
	}
	check(st.Close())
	return tokens
}

// gateway is the gateway binary running on one store, with the RSS peaks
// seen while it was measured.
type gateway struct {
	cmd        *exec.Cmd
	base       string // http://127.0.0.1:port/
	admin      string // "off", or the admin address for profiles
	name       string
	tokens     []string
	anon, rss  int // peak resident memory in KiB: anonymous, total
	p50s, p99s []time.Duration
	p90s       []time.Duration
	rps        []float64
}

// startGateway runs the gateway on dir with session_cache 0, so that every
// signed-in request reads its session from the store.
func startGateway(bin, dir string, tokens []string) *gateway {
	port, admin := freePort(), "off"
	if *profiles != "" {
		admin = fmt.Sprintf("127.0.0.1:%d", freePort())
	}
	cfg := filepath.Join(dir, "..", filepath.Base(dir)+".caddyfile")
	check(os.WriteFile(cfg, []byte(fmt.Sprintf(`{
	admin %s
	persist_config off
	auto_https off
	socialgate {
		storage %s
		session_cache 0
		provider oidc dev {
			issuer http://127.0.0.1:1
			client_id x
		}
		rate_limit api 0 1m
	}
}
http://127.0.0.1:%d {
	socialgate
	respond "ok"
}
`, admin, dir, port)), 0o600))
	g := &gateway{cmd: exec.Command(bin, "run", "--config", cfg), base: fmt.Sprintf("http://127.0.0.1:%d/", port),
		admin: admin, name: filepath.Base(dir), tokens: tokens}
	g.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir+"-data", "XDG_CONFIG_HOME="+dir+"-config")
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive a log.Fatal
	check(g.cmd.Start())
	for i := 0; ; i++ {
		if resp, err := http.Get(g.base + "_auth/health"); err == nil {
			resp.Body.Close()
			return g
		}
		if i > 200 {
			log.Fatal("the gateway did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (g *gateway) stop() { g.cmd.Process.Kill(); g.cmd.Wait() }

// measure sends signed-in requests with random session tokens from 8
// clients for duration and records p50/p90/p99, requests/s and the RSS
// peaks. With profile set it also takes pprof profiles.
func (g *gateway) measure(duration time.Duration, record, profile bool) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() { // sample RSS
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				anon, total := rssKiB(g.cmd.Process.Pid)
				mu.Lock()
				g.anon, g.rss = max(g.anon, anon), max(g.rss, total)
				mu.Unlock()
			}
		}
	}()
	waitProfiles := func() {}
	if profile && g.admin != "off" {
		waitProfiles = takeProfiles(g.admin, filepath.Join(*profiles, g.name), duration)
	}
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodGet, g.base, nil)
				req.Header.Set("Authorization", "Bearer "+g.tokens[rand.IntN(len(g.tokens))])
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					log.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					log.Fatalf("a signed-in request got %d", resp.StatusCode)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	waitProfiles()
	close(stop)
	if !record {
		return
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	g.p50s, g.p90s, g.p99s = append(g.p50s, q(.5)), append(g.p90s, q(.9)), append(g.p99s, q(.99))
	g.rps = append(g.rps, float64(len(lat))/duration.Seconds())
}

func median[T time.Duration | float64](v []T) T {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// takeProfiles starts taking, from the gateway's admin endpoint, a CPU
// profile of the middle half of the load and then heap profiles; the
// returned func waits for them. Files are named prefix-cpu.pprof and
// prefix-heap.pprof.
func takeProfiles(admin, prefix string, duration time.Duration) (wait func()) {
	check(os.MkdirAll(filepath.Dir(prefix), 0o700))
	done := make(chan struct{})
	fetch := func(path, file string) {
		resp, err := http.Get("http://" + admin + path)
		check(err)
		defer resp.Body.Close()
		f, err := os.Create(prefix + "-" + file)
		check(err)
		_, err = io.Copy(f, resp.Body)
		check(errors.Join(err, f.Close()))
	}
	go func() {
		defer close(done)
		time.Sleep(duration / 4)
		fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(1, int(duration.Seconds()/2))), "cpu.pprof")
		fetch("/debug/pprof/heap", "heap.pprof")
	}()
	return func() { <-done }
}

// rssKiB is the process's resident memory: anon is its own (heap, stacks,
// Badger's caches); total adds the file-backed pages of the memory-mapped
// store files, which are the kernel's page cache and dropped under pressure.
func rssKiB(pid int) (anon, total int) {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "RssAnon:":
			anon, _ = strconv.Atoi(f[1])
		case "VmRSS:":
			total, _ = strconv.Atoi(f[1])
		}
	}
	return anon, total
}

func diskSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func freePort() int {
	port, err := freeport.Take()
	check(err)
	return port
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func numCPU() int {
	data, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(data), "processor\t:")
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
