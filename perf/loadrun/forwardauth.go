package main

// The forward-auth rows: nginx with auth_request in front of the same
// upstream, asking either the gateway's verify endpoint (FORWARD_AUTH, the
// binary as a standalone auth server; through its Caddy site, row 6, or
// forward_auth's own listener, row 6l) or oauth2-proxy v7, once per nginx
// worker_processes setting. They alternate with the other rows.

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/socialgate/socialgate/internal/testkit"
	"github.com/socialgate/socialgate/perf/internal/harness"
)

// faPair is the rows behind one nginx: the two auth servers and, unless
// the pair is capped, the baselines (floor.go). A capped pair runs the same
// auth server processes behind the first nginx, each held to capCores CPUs
// for its runs.
type faPair struct {
	workers                       int
	capCores                      float64
	socialgate, listener, o2proxy *row
	baselines                     []*row // rows 8–10, for uncapped pairs
}

// forwardAuth is the section: its rows, the processes to stop, and the
// FORWARD_AUTH gateway's admin port (for -profile-row fa).
type forwardAuth struct {
	pairs   []faPair
	skipped string // why no row ran at all
	gwAdmin int
	procs   []*harness.Proc
	caps    []*harness.CPUCap
	notes   []string
}

// rows are the section's rows, pair by pair.
func (fa *forwardAuth) rows() []*row {
	var out []*row
	for _, p := range fa.pairs {
		out = append(out, p.socialgate, p.listener, p.o2proxy)
		out = append(out, p.baselines...)
	}
	return out
}

func (fa *forwardAuth) stop() {
	for _, p := range slices.Backward(fa.procs) {
		p.Stop()
	}
	for _, c := range fa.caps {
		c.Remove()
	}
}

// forwardAuthCaddyfile is the gateway as a pure auth server, as in
// docs/forward-auth.md: only the gateway's own site, where browsers sign
// in, with forward_auth on and loopback as the trusted proxy, and
// forward_auth's own listener (docs/forward-auth-listener.md) on
// listenPort.
func forwardAuthCaddyfile(dir string, adminPort, devPort, sitePort, listenPort int) string {
	return fmt.Sprintf(`{
	admin 127.0.0.1:%[2]d
	persist_config off
	auto_https off
	storage file_system %[1]s/caddy
	servers {
		trusted_proxies static 127.0.0.1/32
		trusted_proxies_strict
	}
	socialgate {
		storage %[1]s/socialgate
		dev_provider 127.0.0.1:%[3]d
		forward_auth http://127.0.0.1:%[4]d {
			listen 127.0.0.1:%[5]d
		}
	}
}
http://127.0.0.1:%[4]d {
	socialgate
	respond "Signed in."
}
`, dir, adminPort, devPort, sitePort, listenPort)
}

// startForwardAuth starts what the section needs and returns its rows;
// what cannot run is skipped with the reason in its rows.
func startForwardAuth(ctx context.Context, cfg config, bin, dir, upstream string) *forwardAuth {
	fa := &forwardAuth{}
	nginx := nginxBin()
	switch {
	case !cfg.forwardAuth:
		fa.skipped = "-forward-auth=false"
	case nginx == "":
		fa.skipped = "nginx is not installed (on Debian or Ubuntu: apt-get install -y nginx)"
	case len(cfg.nginxWorkers) == 0:
		fa.skipped = "-nginx-workers is empty"
	}
	if fa.skipped != "" {
		return fa
	}
	ports, err := harness.FreePorts(6 + 7*len(cfg.nginxWorkers))
	if err != nil {
		fa.skipped = err.Error()
		return fa
	}
	fa.gwAdmin = ports[0]
	devPort, sitePort, o2pPort, listenPort := ports[1], ports[2], ports[3], ports[5]
	siteURL := fmt.Sprintf("http://127.0.0.1:%d/", sitePort)

	fmt.Fprintln(os.Stderr, "starting FORWARD_AUTH (the gateway as a standalone auth server) …")
	gwDir := filepath.Join(dir, "forward-auth")
	gw, err := harness.StartCaddy("FORWARD_AUTH", bin, gwDir, forwardAuthCaddyfile(gwDir, fa.gwAdmin, devPort, sitePort, listenPort), siteURL)
	if err != nil {
		fa.skipped = "FORWARD_AUTH did not start: " + harness.LastLine(err.Error())
		return fa
	}
	fa.procs = append(fa.procs, gw)
	b := testkit.NewBrowser(http.DefaultTransport)
	devURL := fmt.Sprintf("http://127.0.0.1:%d", devPort)
	if err := b.SignInDev(ctx, siteURL, devURL, testkit.Ada); err != nil {
		fa.skipped = "signing in through FORWARD_AUTH: " + err.Error()
		return fa
	}
	sgCookie, err := b.SessionHeader(siteURL)
	if err != nil {
		fa.skipped = err.Error()
		return fa
	}

	fmt.Fprintln(os.Stderr, "building and starting oauth2-proxy …")
	o2pName := "oauth2-proxy /oauth2/auth"
	o2p, o2pErr := startOAuth2Proxy(filepath.Join(dir, "oauth2-proxy"), o2pPort, devURL)
	if o2pErr != nil {
		fmt.Fprintln(os.Stderr, "skipping the oauth2-proxy rows:", o2pErr)
	} else {
		fa.procs = append(fa.procs, o2p.proc)
		o2pName = fmt.Sprintf("oauth2-proxy %s /oauth2/auth", o2p.version)
	}

	fa.notes = append(fa.notes, fmt.Sprintf("forward-auth rows (6, 7): nginx %s with auth_request (keep-alive to "+
		"every backend) in front of the same upstream; FORWARD_AUTH is this binary as a standalone auth server "+
		"(forward_auth, trusted_proxies 127.0.0.1/32, Badger store), signed in through its dev provider; row 6l asks the same "+
		"process's forward_auth listener (a plain net/http server, loopback trusted) instead of its Caddy site", nginxVersion(nginx)))
	if o2p != nil {
		fa.notes = append(fa.notes, "oauth2-proxy: its nginx guide's settings (--reverse-proxy --trusted-proxy-ip=127.0.0.1/32 "+
			"--set-xauthrequest --skip-provider-button, no upstream), cookie sessions with --session-cookie-minimal, "+
			"--request-logging=false; OIDC provider: FORWARD_AUTH's dev provider; its session cookie minted with its "+
			"own cookie session store (perf/loadrun/oauth2proxy), as an OIDC sign-in would leave it")
	}
	bases := startBaselines(bin, dir, ports[4])
	for _, b := range bases {
		if b.server != nil {
			fa.procs = append(fa.procs, b.server)
		}
	}
	for i, w := range cfg.nginxWorkers {
		p := ports[6+7*i:]
		sgPort, o2Port, lPort := p[0], p[1], p[6]
		host := fmt.Sprintf("127.0.0.1:%d", sitePort)
		servers := []authServer{socialgateAuth(sgPort, host, host), socialgateAuth(lPort, fmt.Sprintf("127.0.0.1:%d", listenPort), host)}
		if o2p != nil {
			servers = append(servers, oauth2ProxyAuth(o2Port, o2p.addr))
		}
		pair := faPair{workers: w,
			socialgate: &row{name: fmt.Sprintf("(6) socialgate /_auth/verify, nginx × %d", w), site: site{port: sgPort},
				server: gw, cookie: sgCookie},
			listener: &row{name: fmt.Sprintf("(6l) socialgate verify listener, nginx × %d", w), site: site{port: lPort},
				server: gw, cookie: sgCookie},
			o2proxy: &row{name: fmt.Sprintf("(7) %s, nginx × %d", o2pName, w), site: site{port: o2Port}},
		}
		if o2p == nil {
			pair.o2proxy.skipped = "oauth2-proxy did not start: " + harness.LastLine(o2pErr.Error())
		} else {
			pair.o2proxy.server, pair.o2proxy.cookie = o2p.proc, o2p.cookie
		}
		for j, b := range bases {
			port := p[2+j]
			// A cookie as long as socialgate's, but none of the gateway's,
			// which nginx passes on here.
			r := &row{name: fmt.Sprintf("%s, nginx × %d", b.name, w), site: site{port: port}, server: b.server, skipped: b.skipped,
				cookie: "app=" + strings.Repeat("x", max(1, len(sgCookie)-4))}
			if r.skipped == "" {
				servers = append(servers, b.auth(port, p[5]))
			}
			pair.baselines = append(pair.baselines, r)
		}
		ngx, err := startNginx(nginx, filepath.Join(dir, fmt.Sprintf("nginx-%d", w)), w, upstream, servers)
		for _, r := range append([]*row{pair.socialgate, pair.listener, pair.o2proxy}, pair.baselines...) {
			if err != nil {
				r.skipped = cmp.Or(r.skipped, "nginx did not start: "+harness.LastLine(err.Error()))
			}
			r.proxy = ngx
		}
		if err == nil {
			fa.procs = append(fa.procs, ngx)
		}
		fa.pairs = append(fa.pairs, pair)
	}
	if cfg.authCPU > 0 {
		fa.addCapped(cfg.authCPU)
	}
	return fa
}

// addCapped adds the capped pair: the first nginx's rows again, with each
// auth server process held to cores CPUs while its row runs, as a
// container's CPU limit would hold it. Then the auth server, not the
// machine the rows share, bounds the throughput.
func (fa *forwardAuth) addCapped(cores float64) {
	first := fa.pairs[0]
	capped := func(r *row) *row {
		c := *r
		c.name = fmt.Sprintf("%s, auth server ≤ %.2g core", r.name, cores)
		return &c
	}
	pair := faPair{workers: first.workers, capCores: cores, socialgate: capped(first.socialgate),
		listener: capped(first.listener), o2proxy: capped(first.o2proxy)}
	fa.pairs = append(fa.pairs, pair)
	// Rows 6 and 6l share a process, hence its cgroup: a process is in one.
	caps := map[*harness.Proc]*harness.CPUCap{}
	for _, r := range []*row{pair.socialgate, pair.listener, pair.o2proxy} {
		if r.skipped != "" {
			continue
		}
		cap, ok := caps[r.server]
		if !ok {
			var err error
			cap, err = harness.NewCPUCap(fmt.Sprintf("socialgate-loadrun-%d-%d", os.Getpid(), r.server.Cmd.Process.Pid), r.server.Cmd.Process.Pid)
			if err != nil {
				r.skipped = "no CPU cap: " + err.Error()
				continue
			}
			caps[r.server] = cap
			fa.caps = append(fa.caps, cap)
		}
		r.cpuCap, r.capCores = cap, cores
	}
	fa.notes = append(fa.notes, fmt.Sprintf("capped forward-auth rows: the same auth server processes and nginx × %d, "+
		"each auth server in a cgroup of its own whose CPU bandwidth is limited to %.2g core (CFS quota, 10 ms period) "+
		"while its row runs, as a container's CPU limit would hold it (both are Go programs, built by the same toolchain)", first.workers, cores))
}

// printForwardAuth prints the section's table and what it shows against
// the budgets: socialgate ≥ 2× oauth2-proxy's throughput, and verify's CPU
// per request within 20% of the authenticated pass-through's (row 1).
func printForwardAuth(fa *forwardAuth, passThrough *row) {
	if fa.skipped != "" {
		fmt.Printf("| (6, 7) forward auth behind nginx | skipped: %s |\n\n", fa.skipped)
		return
	}
	fmt.Println("| auth server behind nginx auth_request | requests/s | p50 | p99 | auth server CPU/request | nginx CPU/request | nginx busy (cores) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	rows := fa.rows()
	for _, r := range rows {
		if r.skipped != "" || len(r.runs) == 0 {
			fmt.Printf("| %s | skipped: %s | | | | | |\n", r.name, cmp.Or(r.skipped, strings.Join(r.checks, "; ")))
			continue
		}
		mark := ""
		if len(r.checks) > 0 {
			mark = " ⚠"
		}
		authCPU := "— (in nginx)"
		if r.server != nil {
			authCPU = fmtDuration(r.cpu())
		}
		fmt.Printf("| %s%s | %.0f | %s | %s | %s | %s | %.2f |\n", r.name, mark, r.rps(),
			fmtDuration(median(r.runs, func(m measurement) time.Duration { return m.p50 })),
			fmtDuration(median(r.runs, func(m measurement) time.Duration { return m.p99 })),
			authCPU, fmtDuration(median(r.runs, func(m measurement) time.Duration { return m.proxyCPUPerRequest })),
			median(r.runs, func(m measurement) float64 { return m.proxyBusy }))
	}
	fmt.Println()
	for _, p := range fa.pairs {
		sg, o2 := p.socialgate, p.o2proxy
		if len(sg.runs) == 0 {
			continue
		}
		if failed := slices.ContainsFunc([]*row{sg, p.listener, o2}, func(r *row) bool { return len(r.checks) > 0 }); failed {
			// Refused or unchecked answers are not throughput.
			fmt.Printf("- nginx × %d: not compared: a row failed its checks (⚠ below)\n", p.workers)
			continue
		}
		var parts []string
		if len(o2.runs) > 0 {
			parts = append(parts, fmt.Sprintf("socialgate ÷ oauth2-proxy throughput %.2f× (budget ≥ 2×), auth server CPU/request %.2f×",
				sg.rps()/o2.rps(), float64(sg.cpu())/float64(o2.cpu())))
			if l := p.listener; len(l.runs) > 0 {
				parts = append(parts, fmt.Sprintf("(6l) ÷ oauth2-proxy throughput %.2f×, auth server CPU/request %.2f×",
					l.rps()/o2.rps(), float64(l.cpu())/float64(o2.cpu())))
			}
			for _, b := range p.baselines {
				if len(b.runs) > 0 && len(b.checks) == 0 {
					parts = append(parts, fmt.Sprintf("%s ÷ oauth2-proxy %.2f×", b.name[:strings.Index(b.name, ")")+1], b.rps()/o2.rps()))
				}
			}
		}
		if passThrough != nil && len(passThrough.runs) > 0 && p.capCores == 0 {
			parts = append(parts, fmt.Sprintf("verify's CPU/request ÷ row (1)'s Caddy CPU/request %.2f (budget ≤ 1.20)",
				float64(sg.cpu())/float64(passThrough.cpu())))
		}
		what := fmt.Sprintf("nginx × %d", p.workers)
		if p.capCores > 0 {
			what += fmt.Sprintf(", auth servers ≤ %.2g core", p.capCores)
		}
		fmt.Printf("- %s: %s\n", what, strings.Join(parts, "; "))
	}
	fmt.Println()
	fmt.Println("Auth server CPU/request is the auth server process's user+system CPU time during a run over the")
	fmt.Println("requests nginx served; nginx's (master and workers) likewise, and nginx busy is its CPU time over")
	fmt.Println("the run's wall time: near the worker count, nginx itself is what bounds the row. socialgate's")
	fmt.Println("rows give the app verify's Cookie (docs/forward-auth.md): no request may reach the upstream")
	fmt.Println("with a gateway cookie.")
	fmt.Println("Rows 8–10 are auth servers that do no work, answering 200 at once: nginx itself (a server")
	fmt.Println("block of its own), a bare Go net/http server, and Caddy's `respond` (this binary, no gateway).")
	fmt.Println("Their throughput is the most any auth server, any Go one, and any Caddy module could reach here;")
	fmt.Println("their CPU/request is what each pays before doing any work of its own.")
	fmt.Println("In the capped rows each auth server may use only its CPU limit, so the auth server bounds them.")
	fmt.Println()
	printRuns(rows)
}

// rps is the row's median requests/s.
func (r *row) rps() float64 {
	return median(r.runs, func(m measurement) float64 { return m.perSecond })
}

// cpu is the row's median CPU time per request of its server.
func (r *row) cpu() time.Duration {
	return median(r.runs, func(m measurement) time.Duration { return m.cpuPerRequest })
}

// capped runs f with the row's auth server held to its CPU cap, if the row
// has one, and lifts the cap after.
func (r *row) capped(f func() error) error {
	if r.cpuCap == nil {
		return f()
	}
	if err := r.cpuCap.Set(r.capCores); err != nil {
		return err
	}
	defer r.cpuCap.Set(0)
	return f()
}
