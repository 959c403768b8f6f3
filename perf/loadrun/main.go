// Command loadrun measures what the socialgate handler costs a request: it
// builds the binary, runs a tiny upstream and two Caddy processes of that
// binary on loopback (PLAIN: reverse_proxy only; GATEWAY: the same sites
// behind socialgate with the dev provider), signs in once through the dev
// provider, and drives the rows alternately with wrk, or with a built-in Go
// client when wrk is not installed. It prints a Markdown table.
//
//	go run ./perf/loadrun                       # defaults: 5 runs × 3s per row, ≈ 2 minutes
//	go run ./perf/loadrun -runs 5 -duration 10s -connections 64
//	go run ./perf/loadrun -cpuprofile gw.pprof  # also profile GATEWAY on row 1
//	go run ./perf/loadrun -cpuprofile fa.pprof -profile-row 6  # … or the verify endpoint
//	go run ./perf/loadrun -big-store 1000000    # also the million-user store row (≈ 8 more minutes)
//
// Rows: plain reverse_proxy; authenticated pass-through; the same on the
// PostgreSQL store (GATEWAY_PG, a third Caddy process on a private
// PostgreSQL server started under the temporary directory, when the
// server binaries are installed; else the row says why it was skipped);
// with `require dev`;
// with `forward_token dev` (when the binary supports it); whole sign-in
// flows per second; a refresh storm; and forward auth (when nginx is
// installed): nginx with auth_request in front of the same upstream,
// asking the gateway's verify endpoint (FORWARD_AUTH, the binary as a
// standalone auth server) or oauth2-proxy v7 (built from its Go module),
// once per -nginx-workers setting, beside auth servers that do no work
// (nginx's own answer, Go's net/http, Caddy's respond: what the set-up
// allows), and again with each auth server held to -auth-cpu cores. Every measured request is checked to
// have reached the upstream with the identity the row promises. Besides
// throughput and latency, each row shows the serving Caddy's (or auth
// server's) CPU time per request, which holds steady when other work
// competes for the cores.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/socialgate/socialgate/internal/testkit"
	"github.com/socialgate/socialgate/perf/internal/harness"
)

type config struct {
	duration, warmup time.Duration
	runs, conns      int
	threads          int
	flowConcurrency  int
	client           string
	cpuprofile       string
	profileRow       string
	keep             bool
	postgres         bool
	storm            bool
	bigStore         int
	forwardAuth      bool
	nginxWorkers     []int
	authCPU          float64
}

func main() {
	var cfg config
	serve := flag.String("serve-upstream", "", "internal: run as the upstream on this address")
	serveFloor := flag.String("serve-floor-auth", "", "internal: run as the floor auth server on this address")
	flag.DurationVar(&cfg.duration, "duration", 3*time.Second, "length of each measured run of each row")
	flag.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured load on each row before its first run")
	flag.IntVar(&cfg.runs, "runs", 5, "runs per row; the table shows medians")
	flag.IntVar(&cfg.conns, "connections", 16, "concurrent keep-alive connections")
	flag.IntVar(&cfg.threads, "threads", max(1, runtime.NumCPU()/4), "wrk threads")
	flag.IntVar(&cfg.flowConcurrency, "flow-concurrency", 4, "concurrent browsers in the sign-in row")
	flag.StringVar(&cfg.client, "client", "auto", "load client: auto (wrk if installed), wrk or go")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of GATEWAY under row-1 load to this file and print its top")
	flag.StringVar(&cfg.profileRow, "profile-row", "1", "the row whose gateway -cpuprofile profiles: 1 (GATEWAY), 1p (GATEWAY_PG) or 6 (FORWARD_AUTH's verify under the first nginx)")
	flag.BoolVar(&cfg.postgres, "postgres", true, "also measure row 1 on the PostgreSQL store (GATEWAY_PG), when PostgreSQL is installed")
	flag.BoolVar(&cfg.storm, "storm", true, fmt.Sprintf("also run the refresh storm (row 5: %d requests over %d users whose tokens just expired)", stormRequests, stormUsers))
	flag.BoolVar(&cfg.forwardAuth, "forward-auth", true, "also measure forward auth behind nginx auth_request (rows 6 and 7: socialgate's verify endpoint and oauth2-proxy), when nginx is installed")
	flag.Func("nginx-workers", "nginx worker_processes for the forward-auth rows, comma-separated; each gets its pair of rows (default 1,2)", func(v string) error {
		cfg.nginxWorkers = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return fmt.Errorf("%q is not a worker count", f)
			}
			cfg.nginxWorkers = append(cfg.nginxWorkers, n)
		}
		return nil
	})
	cfg.nginxWorkers = []int{1, 2}
	flag.Float64Var(&cfg.authCPU, "auth-cpu", 0.25, "also measure rows 6 and 7 with each auth server held to this many cores by a cgroup CPU limit (0: not)")
	flag.IntVar(&cfg.bigStore, "big-store", 0, "also run the big-store row: build a store of this many users (two accounts each) and compare it with a small one (go run ./caddymodule/internal/bigstore; 1000000 takes about 8 minutes)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (configs, logs, store)")
	flag.Parse()
	if addr := cmp.Or(*serve, *serveFloor); addr != "" {
		server := serveUpstream // each returns only when it cannot serve
		if *serve == "" {
			server = serveFloorAuth
		}
		fmt.Fprintln(os.Stderr, server(addr))
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "loadrun:", err)
		os.Exit(1)
	}
}

// row is one line of the table.
type row struct {
	name     string
	site     site            // zero for the sign-in row
	server   *harness.Proc   // the Caddy process serving site
	cookie   string          // the session cookie for site, when not the GATEWAY's
	proxy    *harness.Proc   // nginx, in front of server, for the forward-auth rows
	cpuCap   *harness.CPUCap // the server's cgroup, for the capped forward-auth rows
	capCores float64         // … and the cores it is held to while the row runs
	skipped  string
	runs     []measurement
	checks   []string // failed checks of the requests that reached the upstream
}

func run(ctx context.Context, cfg config) error {
	dir, err := os.MkdirTemp("", "loadrun-")
	if err != nil {
		return err
	}
	if cfg.keep {
		fmt.Printf("Temporary files: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	load, note, err := pickLoader(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "building ./cmd/socialgate …")
	bin, err := testkit.Build(dir, "./cmd/socialgate")
	if err != nil {
		return err
	}
	up, upstream, err := startUpstream(dir)
	if err != nil {
		return err
	}
	defer up.Stop()

	ports, err := harness.FreePorts(14)
	if err != nil {
		return err
	}
	plainAdmin, gwAdmin, devPort := ports[0], ports[1], ports[2]
	plainSite := site{row: "plain reverse_proxy", port: ports[3]}
	gwSites := []site{
		{row: "(1) authenticated pass-through", port: ports[4], handler: "socialgate"},
		{row: "(2) + require dev", port: ports[5], handler: "socialgate {\n\trequire dev\n}"},
		{row: "(3) + forward_token dev", port: ports[6], handler: "socialgate {\n\tforward_token dev\n}"},
	}
	rows := []*row{{name: plainSite.row, site: plainSite}}
	var running []site
	for _, s := range gwSites {
		r := &row{name: s.row, site: s}
		if ok, why := adapts(bin, dir, s.handler); !ok {
			r.skipped = "not supported by this build: `socialgate adapt` says: " + why
		} else {
			running = append(running, s)
		}
		rows = append(rows, r)
	}
	signInRow := &row{name: fmt.Sprintf("(4) sign-in flows/s (%d browsers)", cfg.flowConcurrency)}
	rows = append(rows, signInRow)

	// Every browser of the sign-in row is 127.0.0.1: lift the per-client
	// limits on starting and finishing sign-ins, where the build has them.
	var options []string
	noLimits := []string{"rate_limit start 0 1m", "rate_limit callback 0 1m"}
	if ok, _ := adapts(bin, dir, "socialgate", noLimits...); ok {
		options = noLimits
	}

	fmt.Fprintln(os.Stderr, "starting PLAIN and GATEWAY …")
	plain, err := harness.StartCaddy("PLAIN", bin, filepath.Join(dir, "plain"),
		caddyfile(filepath.Join(dir, "plain"), plainAdmin, 0, upstream, []site{plainSite}), plainSite.url())
	if err != nil {
		return err
	}
	defer plain.Stop()
	gwDir := filepath.Join(dir, "gateway")
	gw, err := harness.StartCaddy("GATEWAY", bin, gwDir, caddyfile(gwDir, gwAdmin, devPort, upstream, running, options...), urls(running)...)
	if err != nil && len(running) > 1 {
		// A directive that adapts may still fail to provision; measure the rest.
		for _, r := range rows[2:4] {
			if r.skipped == "" {
				r.skipped = "GATEWAY failed to start with it: " + harness.LastLine(err.Error())
			}
		}
		running = running[:1]
		gw, err = harness.StartCaddy("GATEWAY", bin, gwDir, caddyfile(gwDir, gwAdmin, devPort, upstream, running, options...), urls(running)...)
	}
	if err != nil {
		return err
	}
	defer gw.Stop()
	rows[0].server = plain
	for _, r := range rows[1:4] {
		r.server = gw
	}

	devURL := fmt.Sprintf("http://127.0.0.1:%d", devPort)
	first := testkit.NewBrowser(http.DefaultTransport)
	if err := first.SignInDev(ctx, running[0].url(), devURL, testkit.Ada); err != nil {
		return fmt.Errorf("signing in through the dev provider: %w\n%s", err, gw.Tail())
	}
	cookie, err := first.SessionHeader(running[0].url())
	if err != nil {
		return err
	}

	// GATEWAY_PG: the same gateway on the PostgreSQL store, when a private
	// server can be started.
	pgRow := &row{name: "(1p) authenticated pass-through (PostgreSQL store)",
		site: site{row: "(1p) authenticated pass-through (PostgreSQL store)", port: ports[9], handler: "socialgate"}}
	if !cfg.postgres {
		pgRow.skipped = "no PostgreSQL row: -postgres=false"
	} else if gwPG, err := startGatewayPG(ctx, bin, dir, upstream, ports[7], ports[8], pgRow.site, options); err != nil {
		pgRow.skipped = "no PostgreSQL row: " + err.Error()
		fmt.Fprintln(os.Stderr, "skipping the PostgreSQL row:", err)
	} else {
		defer gwPG.stop()
		pgRow.server, pgRow.cookie = gwPG.caddy, gwPG.cookie
	}

	pgNote := "GATEWAY_PG (row 1p): GATEWAY's config with `storage postgres { dsn …; secret … }`, on a private " +
		"PostgreSQL server on loopback (fsync off); the server's own CPU time is not in Caddy CPU/request"
	if pgRow.skipped != "" {
		pgNote = "row 1p (PostgreSQL store) skipped: " + strings.TrimPrefix(pgRow.skipped, "no PostgreSQL row: ")
	}
	fa := startForwardAuth(ctx, cfg, bin, dir, upstream)
	defer fa.stop()
	printHeader(bin, load, note, cfg, options, append([]string{pgNote}, fa.notes...)...)
	measured := slices.DeleteFunc(slices.Clone(rows[:4]), func(r *row) bool { return r.skipped != "" })
	if pgRow.skipped == "" {
		measured = slices.Insert(measured, min(2, len(measured)), pgRow)
	}
	measured = append(measured, slices.DeleteFunc(fa.rows(), func(r *row) bool { return r.skipped != "" })...)
	for _, r := range measured {
		if err := preflight(ctx, r, r.cookieOr(cookie), upstream); err != nil {
			r.skipped = err.Error()
		}
	}
	measured = slices.DeleteFunc(measured, func(r *row) bool { return r.skipped != "" })
	for _, r := range measured {
		fmt.Fprintf(os.Stderr, "warming up %s …\n", r.name)
		if err := r.capped(func() error {
			load.run(ctx, r.site.url(), r.cookieOr(cookie), cfg.warmup) // a failure shows in the runs
			return nil
		}); err != nil {
			return fmt.Errorf("warming up %s: %w", r.name, err)
		}
	}
	if _, err := settledStats(upstream); err != nil {
		return err
	}
	if err := measure(ctx, cfg, load, measured, cookie, upstream); err != nil {
		return err
	}
	measureSignIns(ctx, cfg, signInRow, running[0].url(), devURL)
	storms, stormSkipped := measureStorms(ctx, cfg, bin, filepath.Join(dir, "storm"), upstream, ports[10:14], options)
	printTable(slices.Insert(slices.Clone(rows), 2, pgRow))
	printStorm(storms, stormSkipped)
	printForwardAuth(fa, rows[1])
	fmt.Printf("Load average after the runs: %s\n\n", harness.LoadAverage())

	if cfg.bigStore > 0 {
		if err := runBigStore(ctx, cfg.bigStore); err != nil {
			return fmt.Errorf("big store: %w", err)
		}
	}
	if cfg.cpuprofile != "" {
		r, admin := rows[1], gwAdmin
		switch {
		case cfg.profileRow == "1p":
			r, admin = pgRow, ports[7]
		case cfg.profileRow == "6" && len(fa.pairs) > 0:
			r, admin = fa.pairs[0].socialgate, fa.gwAdmin
		case cfg.profileRow == "6":
			r = &row{skipped: fa.skipped}
		}
		if err := profile(ctx, cfg, load, bin, admin, r, r.cookieOr(cookie)); err != nil {
			return fmt.Errorf("profiling: %w", err)
		}
	}
	return nil
}

// measure drives the rows in turn, cfg.runs times, and checks each run's
// requests against what reached the upstream.
func measure(ctx context.Context, cfg config, load loader, rows []*row, cookie, upstream string) error {
	for i := range cfg.runs {
		for _, r := range rows {
			if err := ctx.Err(); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "run %d/%d: %s …\n", i+1, cfg.runs, r.name)
			before, err := readStats(upstream)
			if err != nil {
				return err
			}
			cpu0, proxy0, t0 := r.serverCPU(), r.proxyCPU(), time.Now()
			// Plain gets the same Cookie header: both parse the same request.
			var m measurement
			err = r.capped(func() (err error) {
				m, err = load.run(ctx, r.site.url(), r.cookieOr(cookie), cfg.duration)
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			m.cpuPerRequest = (r.serverCPU() - cpu0) / time.Duration(max(1, m.requests))
			if proxy := r.proxyCPU() - proxy0; proxy > 0 {
				m.proxyCPUPerRequest = proxy / time.Duration(max(1, m.requests))
				m.proxyBusy = proxy.Seconds() / time.Since(t0).Seconds()
			}
			after, err := settledStats(upstream)
			if err != nil {
				return err
			}
			r.runs = append(r.runs, m)
			r.checks = append(r.checks, check(r, m, after.minus(before), cfg.conns)...)
		}
	}
	return nil
}

// measureSignIns runs whole sign-in flows against site, cfg.runs times.
func measureSignIns(ctx context.Context, cfg config, signInRow *row, site, devURL string) {
	for i := range cfg.runs {
		fmt.Fprintf(os.Stderr, "run %d/%d: %s …\n", i+1, cfg.runs, signInRow.name)
		res := signInFlows(ctx, site, devURL, cfg.flowConcurrency, cfg.duration)
		if res.firstErr != nil {
			signInRow.checks = append(signInRow.checks, fmt.Sprintf("%d flows failed, first: %v", res.errors, res.firstErr))
		}
		if res.requests > 0 {
			signInRow.runs = append(signInRow.runs, res.measurement)
		}
	}
}

// measureStorms starts STORM and runs cfg.runs refresh storms on it; when it
// cannot, skipped says why.
func measureStorms(ctx context.Context, cfg config, bin, dir, upstream string, ports []int, options []string) (results []stormResult, skipped string) {
	if !cfg.storm {
		return nil, "-storm=false"
	}
	fmt.Fprintln(os.Stderr, "starting STORM and signing its users in …")
	st, err := startStorm(ctx, bin, dir, upstream, ports, options)
	if err != nil {
		fmt.Fprintln(os.Stderr, "skipping the refresh storm:", err)
		return nil, harness.LastLine(err.Error())
	}
	defer st.caddy.Stop()
	for i := range cfg.runs {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "run %d/%d: (5) refresh storm …\n", i+1, cfg.runs)
		res, err := st.run(ctx, upstream)
		if err != nil {
			return results, err.Error()
		}
		results = append(results, res)
	}
	return results, ""
}

// runBigStore runs the big-store row (caddymodule/internal/bigstore, which
// builds stores with the store package directly) and passes its table on.
func runBigStore(ctx context.Context, users int) error {
	root, err := testkit.ModuleRoot()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "big store: building %d users and measuring (go run ./caddymodule/internal/bigstore) …\n", users)
	cmd := exec.CommandContext(ctx, "go", "run", "./caddymodule/internal/bigstore", "-users", fmt.Sprint(users))
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stdout, os.Stderr
	return cmd.Run()
}

// serverCPU is the CPU time of the row's server (Caddy or auth server);
// zero for a row without one (the ceiling).
func (r *row) serverCPU() time.Duration {
	if r.server == nil {
		return 0
	}
	return r.server.CPU()
}

// proxyCPU is the CPU time of the row's nginx, master and workers; zero
// for the rows without one.
func (r *row) proxyCPU() time.Duration {
	if r.proxy == nil {
		return 0
	}
	return r.proxy.TreeCPU()
}

// cookieOr is the row's own cookie, else the GATEWAY's.
func (r *row) cookieOr(gateway string) string {
	if r.cookie != "" {
		return r.cookie
	}
	return gateway
}

// pickLoader chooses wrk or the Go client; note says why when it matters.
func pickLoader(cfg config) (loader, string, error) {
	path, err := exec.LookPath("wrk")
	switch {
	case cfg.client == "go":
		return &goLoader{conns: cfg.conns}, "the built-in Go client (-client go)", nil
	case err == nil && cfg.client != "go":
		return &wrkLoader{path: path, threads: min(cfg.threads, cfg.conns), conns: cfg.conns}, "", nil
	case cfg.client == "wrk":
		return nil, "", errors.New("wrk is not installed; on Debian or Ubuntu: apt-get update && apt-get install -y wrk")
	default:
		return &goLoader{conns: cfg.conns}, "wrk is not installed, so the built-in Go client drives the load " +
			"(install wrk for numbers comparable across machines: apt-get update && apt-get install -y wrk)", nil
	}
}
