package main

// The forward-auth rows: nginx with auth_request in front of the same
// upstream, asking either the gateway's verify endpoint (FORWARD_AUTH, the
// binary as a standalone auth server) or oauth2-proxy v7, once per nginx
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

// faPair is the two rows behind one nginx.
type faPair struct {
	workers             int
	socialgate, o2proxy *row
}

// forwardAuth is the section: its rows, the processes to stop, and the
// FORWARD_AUTH gateway's admin port (for -profile-row fa).
type forwardAuth struct {
	pairs   []faPair
	skipped string // why no row ran at all
	gwAdmin int
	procs   []*harness.Proc
	notes   []string
}

// rows are the section's rows, pair by pair.
func (fa *forwardAuth) rows() []*row {
	var out []*row
	for _, p := range fa.pairs {
		out = append(out, p.socialgate, p.o2proxy)
	}
	return out
}

func (fa *forwardAuth) stop() {
	for _, p := range slices.Backward(fa.procs) {
		p.Stop()
	}
}

// forwardAuthCaddyfile is the gateway as a pure auth server, as in
// docs/forward-auth.md: only the gateway's own site, where browsers sign
// in, with forward_auth on and loopback as the trusted proxy.
func forwardAuthCaddyfile(dir string, adminPort, devPort, sitePort int) string {
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
		forward_auth http://127.0.0.1:%[4]d
	}
}
http://127.0.0.1:%[4]d {
	socialgate
	respond "Signed in."
}
`, dir, adminPort, devPort, sitePort)
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
	ports, err := harness.FreePorts(4 + 2*len(cfg.nginxWorkers))
	if err != nil {
		fa.skipped = err.Error()
		return fa
	}
	fa.gwAdmin = ports[0]
	devPort, sitePort, o2pPort := ports[1], ports[2], ports[3]
	siteURL := fmt.Sprintf("http://127.0.0.1:%d/", sitePort)

	fmt.Fprintln(os.Stderr, "starting FORWARD_AUTH (the gateway as a standalone auth server) …")
	gwDir := filepath.Join(dir, "forward-auth")
	gw, err := harness.StartCaddy("FORWARD_AUTH", bin, gwDir, forwardAuthCaddyfile(gwDir, fa.gwAdmin, devPort, sitePort), siteURL)
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
		"(forward_auth, trusted_proxies 127.0.0.1/32, Badger store), signed in through its dev provider", nginxVersion(nginx)))
	if o2p != nil {
		fa.notes = append(fa.notes, "oauth2-proxy: its nginx guide's settings (--reverse-proxy --trusted-proxy-ip=127.0.0.1/32 "+
			"--set-xauthrequest --skip-provider-button, no upstream), cookie sessions with --session-cookie-minimal, "+
			"--request-logging=false; OIDC provider: FORWARD_AUTH's dev provider; its session cookie minted with its "+
			"own cookie session store (perf/loadrun/oauth2proxy), as an OIDC sign-in would leave it")
	}
	for i, w := range cfg.nginxWorkers {
		sgPort, o2Port := ports[4+2*i], ports[5+2*i]
		servers := []authServer{socialgateAuth(sgPort, fmt.Sprintf("127.0.0.1:%d", sitePort), fmt.Sprintf("127.0.0.1:%d", sitePort))}
		if o2p != nil {
			servers = append(servers, oauth2ProxyAuth(o2Port, o2p.addr))
		}
		pair := faPair{workers: w,
			socialgate: &row{name: fmt.Sprintf("(6) socialgate /_auth/verify, nginx × %d", w), site: site{port: sgPort},
				server: gw, cookie: sgCookie},
			o2proxy: &row{name: fmt.Sprintf("(7) %s, nginx × %d", o2pName, w), site: site{port: o2Port}},
		}
		if o2p == nil {
			pair.o2proxy.skipped = "oauth2-proxy did not start: " + harness.LastLine(o2pErr.Error())
		} else {
			pair.o2proxy.server, pair.o2proxy.cookie = o2p.proc, o2p.cookie
		}
		ngx, err := startNginx(nginx, filepath.Join(dir, fmt.Sprintf("nginx-%d", w)), w, upstream, servers)
		if err != nil {
			why := "nginx did not start: " + harness.LastLine(err.Error())
			pair.socialgate.skipped, pair.o2proxy.skipped = why, why
		} else {
			fa.procs = append(fa.procs, ngx)
			pair.socialgate.proxy, pair.o2proxy.proxy = ngx, ngx
		}
		fa.pairs = append(fa.pairs, pair)
	}
	return fa
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
		fmt.Printf("| %s%s | %.0f | %s | %s | %s | %s | %.2f |\n", r.name, mark, r.rps(),
			fmtDuration(median(r.runs, func(m measurement) time.Duration { return m.p50 })),
			fmtDuration(median(r.runs, func(m measurement) time.Duration { return m.p99 })),
			fmtDuration(r.cpu()), fmtDuration(median(r.runs, func(m measurement) time.Duration { return m.proxyCPUPerRequest })),
			median(r.runs, func(m measurement) float64 { return m.proxyBusy }))
	}
	fmt.Println()
	for _, p := range fa.pairs {
		sg, o2 := p.socialgate, p.o2proxy
		if len(sg.runs) == 0 {
			continue
		}
		if failed := slices.ContainsFunc([]*row{sg, o2}, func(r *row) bool { return len(r.checks) > 0 }); failed {
			// Refused or unchecked answers are not throughput.
			fmt.Printf("- nginx × %d: not compared: a row failed its checks (⚠ below)\n", p.workers)
			continue
		}
		var parts []string
		if len(o2.runs) > 0 {
			parts = append(parts, fmt.Sprintf("socialgate ÷ oauth2-proxy throughput %.2f× (budget ≥ 2×), auth server CPU/request %.2f×",
				sg.rps()/o2.rps(), float64(sg.cpu())/float64(o2.cpu())))
		}
		if passThrough != nil && len(passThrough.runs) > 0 {
			parts = append(parts, fmt.Sprintf("verify's CPU/request ÷ row (1)'s Caddy CPU/request %.2f (budget ≤ 1.20)",
				float64(sg.cpu())/float64(passThrough.cpu())))
		}
		fmt.Printf("- nginx × %d: %s\n", p.workers, strings.Join(parts, "; "))
	}
	fmt.Println()
	fmt.Println("Auth server CPU/request is the auth server process's user+system CPU time during a run over the")
	fmt.Println("requests nginx served; nginx's (master and workers) likewise, and nginx busy is its CPU time over")
	fmt.Println("the run's wall time: near the worker count, nginx itself is what bounds the row. nginx passes the")
	fmt.Println("client's Cookie header on to the upstream, so these rows do not check that it was stripped.")
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
