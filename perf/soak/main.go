// Command soak runs the gateway for a long while under a steady mix of
// work and faults, and reports whether it stays healthy: memory,
// goroutines and file descriptors flat, every failed request explained by
// an injected fault, every webhook event delivered to every receiver, the
// store consistent.
//
//	go run ./perf/soak                                  # both stores, 10 minutes each
//	go run ./perf/soak -store badger -duration 2m       # a quick look
//	go run ./perf/soak -store postgres -clients 16 -keep
//
// On each store (one after the other) it builds the binary and runs, on
// loopback: the test OP (caddymodule/internal/testop, as a process) as
// provider `corp`, whose access tokens live -token-lifetime and whose token
// endpoint fails -fault-rate of its calls (500, an HTML page, an answer 3 s
// late, or none at all until the gateway gives up); an upstream; two webhook
// receivers, one fast and one that is slow one time in five; and the
// gateways: one on Badger, two on one PostgreSQL database (a private server,
// as the tests start). -clients people, spread over the gateways, sign in
// through the provider and then, pausing up to -think between requests, load
// pages, `forward_token` routes (which refresh their short-lived tokens),
// the account page and the backend API, and sometimes sign out and in again;
// every third person now and then steps away for longer than a token lives
// and comes back to a `forward_token` route, whose refresh then has no
// still-valid token to fall back on. Every -reload each gateway loads the
// other of two valid configs (they differ in the slow receiver's webhook
// secret and a response header) through the admin API; every -sample each
// gateway's RSS, Go heap, goroutines and open file descriptors are read.
//
// After -duration the clients stop, the webhook deliveries are given up to
// -drain to catch up, `socialgate storage-check` runs on the store, and the
// report prints: requests by kind and outcome, each failure explained (an
// injected fault hit that person's token call within -fault-window before or
// during it, the request needed the provider, and the answer says the
// provider is unavailable; never a token refused while it was surely still
// valid) or not, the memory, goroutine and file descriptor trends, the
// webhook counts and lag, the reloads and the load average. The exit code is
// 1 when something is wrong: an unexplained failure, a growing trend, a
// missing event, a failed reload or an unclean store.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/socialgate/socialgate/internal/testkit"
	"github.com/socialgate/socialgate/perf/internal/harness"
)

type config struct {
	stores              []string
	duration, drain     time.Duration
	clients             int
	think               time.Duration
	reload, sample      time.Duration
	faultRate           float64
	faults              string
	tokenLifetime, skew time.Duration
	faultWindow         time.Duration
	pgGateways          int
	keep                bool
}

func main() {
	var cfg config
	store := flag.String("store", "both", "badger, postgres or both (one after the other)")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Minute, "how long the load runs on each store")
	flag.DurationVar(&cfg.drain, "drain", 3*time.Minute, "how long webhook deliveries may take to catch up after the load")
	flag.IntVar(&cfg.clients, "clients", 12, "people signing in and browsing at once")
	flag.DurationVar(&cfg.think, "think", 500*time.Millisecond, "the longest pause of a client between requests (random up to it)")
	flag.DurationVar(&cfg.reload, "reload", 30*time.Second, "how often each gateway reloads the other config")
	flag.DurationVar(&cfg.sample, "sample", 10*time.Second, "how often each gateway's memory and goroutines are read")
	flag.Float64Var(&cfg.faultRate, "fault-rate", 0.05, "share of the provider's token-endpoint calls that fail")
	flag.StringVar(&cfg.faults, "faults", "server_error,html,slow,hang", "what a failing token call does: server_error (500), html (200 with a page), slow (3 s, then the answer), hang (no answer until the gateway gives up), invalid_grant, huge")
	flag.DurationVar(&cfg.tokenLifetime, "token-lifetime", 15*time.Second, "how long the provider's access tokens live")
	flag.DurationVar(&cfg.skew, "skew", 4*time.Second, "the gateways' token_refresh_skew")
	flag.DurationVar(&cfg.faultWindow, "fault-window", 20*time.Second, "how long before a failed request an injected fault still explains it (the refresh timeout, or any backoff)")
	flag.IntVar(&cfg.pgGateways, "pg-gateways", 2, "gateways on the one PostgreSQL database")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (configs, logs, stores, and each gateway's goroutines.txt taken at the end of the load)")
	flag.Parse()
	switch *store {
	case "both":
		cfg.stores = []string{"badger", "postgres"}
	case "badger", "postgres":
		cfg.stores = []string{*store}
	default:
		fmt.Fprintln(os.Stderr, "soak: -store is badger, postgres or both")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	healthy, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if !healthy {
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) (bool, error) {
	dir, err := os.MkdirTemp("", "soak-")
	if err != nil {
		return false, err
	}
	// The PostgreSQL server runs as its own user, who must pass through it
	// (harness.StartPostgres opens the store's directory below).
	if err := os.Chmod(dir, 0o711); err != nil {
		return false, err
	}
	if cfg.keep {
		fmt.Printf("Temporary files: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	fmt.Fprintln(os.Stderr, "building ./cmd/socialgate and the test OP …")
	bin, err := testkit.Build(dir, "./cmd/socialgate")
	if err != nil {
		return false, err
	}
	opBin, err := testkit.Build(dir, "./caddymodule/internal/testop/testopd")
	if err != nil {
		return false, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return false, err
	}
	up := &http.Server{Handler: upstreamHandler()}
	go up.Serve(ln)
	defer up.Close()

	healthy := true
	for _, st := range cfg.stores {
		rep, err := soak(ctx, cfg, st, bin, opBin, filepath.Join(dir, st), ln.Addr().String())
		if err != nil {
			return false, fmt.Errorf("%s: %w", st, err)
		}
		rep.print()
		healthy = healthy && rep.healthy()
	}
	return healthy, nil
}

// soak runs one store's soak and gathers its report.
func soak(ctx context.Context, cfg config, store, bin, opBin, dir, upstream string) (*report, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	rep := &report{cfg: cfg, store: store, version: harness.CaddyVersion(bin), loadBefore: harness.LoadAverage()}
	op, issuer, control, err := startOP(cfg, opBin, dir)
	if err != nil {
		return nil, err
	}
	defer op.Stop()
	hooks, err := startReceivers()
	if err != nil {
		return nil, err
	}
	defer hooks.close()
	s := setting{issuer: issuer, upstream: upstream, hooks: hooks, skew: cfg.skew, storage: badgerStorage}
	n := 1
	if store == "postgres" {
		pg, err := harness.StartPostgres(dir)
		if err != nil {
			return nil, err
		}
		defer pg.Stop()
		s.storage, n = postgresStorage(pg), cfg.pgGateways
	}
	fmt.Fprintf(os.Stderr, "%s: starting %d gateway(s) …\n", store, n)
	gws, err := startGateways(bin, dir, n, s)
	defer func() {
		for _, g := range gws {
			g.proc.Stop()
		}
	}()
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(os.Stderr, "%s: soaking for %s (%d clients, reload every %s) …\n", store, cfg.duration, cfg.clients, cfg.reload)
	start := time.Now()
	loadCtx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	samples := make(chan map[string][]sample, 1)
	go func() { samples <- sampleEvery(loadCtx, gws, cfg.sample, start) }()
	reloaded := make(chan []reload, 1)
	go func() { reloaded <- reloads(loadCtx, gws, cfg.reload) }()
	mid := midLoad(loadCtx, cfg.duration)
	rep.results = runClients(loadCtx, gws, issuer, cfg.clients, cfg.think, cfg.tokenLifetime)
	rep.loadMid = <-mid
	rep.elapsed = time.Since(start)
	rep.samples, rep.reloads = <-samples, <-reloaded
	rep.loadAfter = harness.LoadAverage()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	fmt.Fprintf(os.Stderr, "%s: waiting up to %s for webhook deliveries …\n", store, cfg.drain)
	rep.drainTook, rep.endpoints = drain(ctx, gws, hooks, cfg.drain)
	rep.fast, rep.slow = hooks.fast.stats(), hooks.slow.stats()
	if rep.injected, err = injections(control); err != nil {
		return nil, err
	}
	for _, g := range gws {
		m, err := harness.Scrape("http://" + g.admin() + "/metrics")
		if err == nil {
			rep.refreshes = append(rep.refreshes, refreshCounts(g.name, m)...)
		}
		// For a look at what runs at the end (-keep): who holds goroutines.
		if prof, err := harness.Scrape("http://" + g.admin() + "/debug/pprof/goroutine?debug=1"); err == nil {
			os.WriteFile(filepath.Join(g.dir, "goroutines.txt"), prof, 0o600)
		}
	}
	// storage-check through the first gateway's admin API while it serves,
	// and on Badger once more offline after it stopped.
	badgerDir := filepath.Join(gws[0].dir, "socialgate")
	if store == "postgres" {
		badgerDir = ""
	}
	rep.checks = append(rep.checks, checkRun("online", bin, gws[0], badgerDir))
	if store == "badger" {
		gws[0].proc.Stop()
		rep.checks = append(rep.checks, checkRun("offline", bin, nil, filepath.Join(gws[0].dir, "socialgate")))
	}
	return rep, nil
}

// startOP runs the test OP with the run's faults and returns its issuer and
// control URL.
func startOP(cfg config, opBin, dir string) (*harness.Proc, string, string, error) {
	cmd := exec.Command(opBin, "-access-token-lifetime", cfg.tokenLifetime.String(),
		"-fault-rate", fmt.Sprint(cfg.faultRate), "-faults", cfg.faults)
	p, line, err := harness.LaunchReporting("test OP", filepath.Join(dir, "testop.log"), cmd)
	if err != nil {
		return nil, "", "", err
	}
	var issuer, control string
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "issuer="); ok {
			issuer = v
		} else if v, ok := strings.CutPrefix(f, "control="); ok {
			control = v
		}
	}
	if issuer == "" || control == "" {
		p.Stop()
		return nil, "", "", fmt.Errorf("the test OP said %q, want issuer= and control=", line)
	}
	return p, issuer, control, nil
}

// injection is one fault the test OP injected, as its control listener
// lists them (testop.Injection).
type injection struct {
	At      time.Time `json:"at"`
	Fault   string    `json:"fault"`
	Grant   string    `json:"grant"`
	Subject string    `json:"subject"`
}

// injections are the faults the test OP injected.
func injections(control string) ([]injection, error) {
	resp, err := http.Get(control + "/injected")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []injection
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// midLoad reads the load average half-way through the load; the channel
// gets "—" when the load ends before.
func midLoad(ctx context.Context, d time.Duration) <-chan string {
	ch := make(chan string, 1)
	go func() {
		select {
		case <-time.After(d / 2):
			ch <- harness.LoadAverage()
		case <-ctx.Done():
			ch <- "—"
		}
	}()
	return ch
}

// drain waits until both receivers hold the same events and every gateway
// says both endpoints are at the same event with none being retried, twice in a row a second apart,
// or until limit (then it returns -1).
func drain(ctx context.Context, gws []*gateway, hooks *receivers, limit time.Duration) (time.Duration, map[string]endpointState) {
	start := time.Now()
	var last map[string]endpointState
	settled := 0
	for time.Since(start) < limit && ctx.Err() == nil {
		done := sameEvents(hooks.fast.stats().ids, hooks.slow.stats().ids)
		for _, g := range gws {
			st, err := webhookStates(g.site())
			if err != nil {
				done = false
				continue
			}
			last = st
			fast, slow := st["fast"], st["slow"]
			done = done && fast.Pending == "" && slow.Pending == "" && fast.LastEventID != nil &&
				slow.LastEventID != nil && *fast.LastEventID == *slow.LastEventID
		}
		if settled = map[bool]int{true: settled + 1}[done]; settled == 2 {
			return time.Since(start), last
		}
		time.Sleep(time.Second)
	}
	return -1, last
}

func sameEvents(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for id := range a {
		if !b[id] {
			return false
		}
	}
	return true
}
