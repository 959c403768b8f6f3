package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/socialgate/socialgate/perf/internal/harness"
)

func printHeader(bin string, load loader, note string, cfg config, options []string, notes ...string) {
	fmt.Printf("## socialgate load run\n\n")
	fmt.Printf("- machine: %s, %d cores (GOMAXPROCS %d); load client, Caddy and upstream share them\n", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Printf("- Go: %s %s/%s; binary: %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, harness.CaddyVersion(bin))
	if w, ok := load.(*wrkLoader); ok {
		args := w.args("URL", "socialgate_session=…", cfg.duration)
		for i, a := range args {
			if strings.Contains(a, " ") {
				args[i] = "'" + a + "'"
			}
		}
		fmt.Printf("- load: wrk %s (same for every row)\n", strings.Join(args, " "))
	} else {
		fmt.Printf("- load: built-in Go client, %d keep-alive connections, closed loop\n", cfg.conns)
	}
	if note != "" {
		fmt.Printf("- note: %s\n", note)
	}
	if len(options) > 0 {
		fmt.Printf("- GATEWAY adds `%s`: every sign-in comes from 127.0.0.1\n", strings.Join(options, "`, `"))
	}
	for _, n := range notes {
		fmt.Printf("- %s\n", n)
	}
	fmt.Printf("- %d runs × %s per row, alternating rows; medians; warm-up %s per row\n", cfg.runs, cfg.duration, cfg.warmup)
	fmt.Printf("- load average before the runs: %s (other work on the machine skews every row)\n\n", harness.LoadAverage())
}

// cpuModel is the first model name in /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func median[T int64 | float64 | time.Duration](runs []measurement, f func(measurement) T) T {
	v := make([]T, len(runs))
	for i, m := range runs {
		v[i] = f(m)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func printTable(rows []*row) {
	fmt.Println("| row | requests/s | p50 | p90 | p99 | throughput vs plain | added p99 | Caddy CPU/request | added CPU/request |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	var base *row
	for _, r := range rows {
		if r.skipped != "" || len(r.runs) == 0 {
			why := r.skipped
			if why == "" {
				why = strings.Join(r.checks, "; ")
			}
			fmt.Printf("| %s | skipped: %s | | | | | | | |\n", r.name, why)
			continue
		}
		rps := median(r.runs, func(m measurement) float64 { return m.perSecond })
		p50 := median(r.runs, func(m measurement) time.Duration { return m.p50 })
		p90 := median(r.runs, func(m measurement) time.Duration { return m.p90 })
		p99 := median(r.runs, func(m measurement) time.Duration { return m.p99 })
		cpu := median(r.runs, func(m measurement) time.Duration { return m.cpuPerRequest })
		ratio, added, cpuCol, addedCPU := "", "", "", ""
		switch {
		case r.site.port == 0: // the sign-in row: flows, not requests
		case base == nil:
			base, ratio, added, cpuCol, addedCPU = r, "1.00", "—", fmtDuration(cpu), "—"
		default:
			baseRPS := median(base.runs, func(m measurement) float64 { return m.perSecond })
			baseP99 := median(base.runs, func(m measurement) time.Duration { return m.p99 })
			baseCPU := median(base.runs, func(m measurement) time.Duration { return m.cpuPerRequest })
			ratio = fmt.Sprintf("%.2f", rps/baseRPS)
			added = fmtDuration(p99 - baseP99)
			cpuCol, addedCPU = fmtDuration(cpu), fmtDuration(cpu-baseCPU)
		}
		mark := ""
		if len(r.checks) > 0 {
			mark = " ⚠"
		}
		fmt.Printf("| %s%s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", r.name, mark, rps,
			fmtDuration(p50), fmtDuration(p90), fmtDuration(p99), ratio, added, cpuCol, addedCPU)
	}
	fmt.Println()
	fmt.Println("Caddy CPU/request is the Caddy process's user+system CPU time during a run over the requests it")
	fmt.Println("served: unlike throughput, it barely moves when other work competes for the cores.")
	fmt.Println()
	printRuns(rows)
}

// printRuns lists each row's runs and its failed checks.
func printRuns(rows []*row) {
	fmt.Println("Per run (requests/s; p99):")
	for _, r := range rows {
		if len(r.runs) == 0 {
			continue
		}
		var parts []string
		for _, m := range r.runs {
			parts = append(parts, fmt.Sprintf("%.0f; %s", m.perSecond, fmtDuration(m.p99)))
		}
		fmt.Printf("- %s: %s\n", r.name, strings.Join(parts, " | "))
	}
	for _, r := range rows {
		for _, c := range slices.Compact(slices.Clone(r.checks)) {
			fmt.Printf("- ⚠ %s: %s\n", r.name, c)
		}
	}
	fmt.Println()
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + fmtDuration(-d)
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// profile drives row r while its gateway's admin endpoint records a CPU
// profile, saves it and prints its top functions.
func profile(ctx context.Context, cfg config, load loader, bin string, adminPort int, r *row, cookie string) error {
	if r.skipped != "" || r.server == nil {
		return fmt.Errorf("row %s did not run", cfg.profileRow)
	}
	seconds := max(1, int(cfg.duration/time.Second))
	fmt.Fprintf(os.Stderr, "profiling %s for %ds under row-%s load …\n", r.server.Name, seconds, cfg.profileRow)
	done := make(chan error, 1)
	go func() {
		_, err := load.run(ctx, r.site.url(), cookie, cfg.duration+2*time.Second)
		done <- err
	}()
	time.Sleep(time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", adminPort, seconds)
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(cfg.cpuprofile)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if err := <-done; err != nil {
		return err
	}
	fmt.Printf("CPU profile of %s under row-%s load: %s (binary %s)\n\n", r.server.Name, cfg.profileRow, cfg.cpuprofile, bin)
	for _, args := range [][]string{
		{"tool", "pprof", "-top", "-nodecount=25", bin, cfg.cpuprofile},
		// The handler's own work: its subtree without the reverse_proxy it calls.
		{"tool", "pprof", "-top", "-cum", "-nodecount=30", `-focus=caddymodule.\(\*Handler\).ServeHTTP`, "-ignore=reverseproxy", bin, cfg.cpuprofile},
	} {
		out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
		fmt.Printf("```\n$ go %s\n%s```\n\n", strings.Join(args, " "), out)
		if err != nil {
			return err
		}
	}
	return nil
}
