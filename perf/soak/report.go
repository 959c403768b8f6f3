package main

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/socialgate/socialgate/perf/internal/harness"
)

// report is one store's soak.
type report struct {
	cfg                            config
	store, version                 string
	loadBefore, loadMid, loadAfter string
	elapsed, drainTook             time.Duration
	results                        []result
	samples                        map[string][]sample
	reloads                        []reload
	fast, slow                     receiverStats
	endpoints                      map[string]endpointState
	injected                       []injection
	refreshes                      []string
	checks                         []check
}

// check is one storage-check run.
type check struct {
	how    string
	output string
	code   int
}

// checkRun runs `socialgate storage-check` on the store: through g's admin
// API while it serves, or offline on the Badger directory when g is nil
// (storageDir names the Badger directory, "" for PostgreSQL). The output is
// the verdict on standard output, and on a failure what standard error said.
func checkRun(how, bin string, g *gateway, storageDir string) check {
	args := []string{"storage-check"}
	if g != nil {
		args = append(args, "--admin", g.admin())
	}
	if storageDir != "" {
		args = append(args, "--storage", storageDir)
	}
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	c := check{how: how, output: strings.TrimSpace(string(out))}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		c.code = exit.ExitCode()
		c.output = strings.TrimSpace(c.output + "\n" + stderr.String())
	case err != nil:
		c.code, c.output = -1, err.Error()
	}
	return c
}

// unavailable are the answers that say the provider cannot be reached now:
// what a refresh or a code exchange that met a fault should turn into.
var unavailable = map[int]bool{502: true, 503: true, 504: true}

// needsProvider are the kinds of request whose answer depends on the
// provider's token endpoint: a fault there may fail them, and nothing else.
var needsProvider = map[string]bool{kindSignIn: true, kindToken: true, kindExpired: true, kindAPIToken: true}

// explain finds the injected fault that explains a failed request: one on
// the same person's token call, during the request or at most -fault-window
// before it, with an answer that says the provider is unavailable. Only the
// requests that need the provider can be explained so: a sign-in, by a fault
// on its own code exchange; a request for the provider token, by a fault on
// a refresh. A token request refused while the person's token was surely
// still valid (first received less than its lifetime minus freshMargin ago)
// is never explained: the gateway must serve a still-valid token whatever
// the provider does.
func (rep *report) explain(r result) (injection, bool) {
	if !needsProvider[r.kind] || !unavailable[r.status] ||
		(r.tokenAge >= 0 && r.tokenAge < rep.cfg.tokenLifetime-freshMargin) {
		return injection{}, false
	}
	from := r.start.Add(-rep.cfg.faultWindow)
	if r.kind == kindSignIn {
		from = r.start
	}
	// The latest one: the fault that the answer is about.
	for i := len(rep.injected) - 1; i >= 0; i-- {
		in := rep.injected[i]
		if in.Subject != r.user || in.At.Before(from) || in.At.After(r.end) {
			continue
		}
		if (r.kind == kindSignIn) == (in.Grant == "authorization_code") {
			return in, true
		}
	}
	return injection{}, false
}

// freshMargin bounds how long before a client first received a token it
// may have been issued: the refresh that made it began at or after an
// earlier request of the same client, which waits at most a few seconds.
const freshMargin = 5 * time.Second

// tally is one row of the requests table.
type tally struct {
	total, ok, explained, unexplained int
	lat                               []time.Duration
}

func (rep *report) healthy() bool {
	return len(rep.problems()) == 0
}

// problems lists what is wrong, one line each.
func (rep *report) problems() []string {
	var out []string
	if n := rep.unexplainedCount(); n > 0 {
		out = append(out, fmt.Sprintf("%d failed requests that no injected fault explains", n))
	}
	for _, r := range rep.reloads {
		if r.err != nil {
			out = append(out, fmt.Sprintf("reload of %s failed: %v", r.gateway, r.err))
			break
		}
	}
	if rep.drainTook < 0 || !sameEvents(rep.fast.ids, rep.slow.ids) {
		out = append(out, "the webhook receivers did not end up with the same events")
	}
	if rep.fast.badSig+rep.slow.badSig+rep.fast.badBody+rep.slow.badBody > 0 {
		out = append(out, "deliveries with a bad signature or body")
	}
	for _, c := range rep.checks {
		if c.code != 0 {
			out = append(out, fmt.Sprintf("storage-check (%s) exit %d", c.how, c.code))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rep.samples)) {
		s := rep.samples[name]
		if g := trendOf(s, func(s sample) float64 { return s.goroutines }); growing(g, 0.05, 20) {
			out = append(out, fmt.Sprintf("%s: goroutines grow (%.0f → %.0f, %+.1f/min in the second half)", name, g.first, g.last, g.slope))
		}
		if f := trendOf(s, func(s sample) float64 { return s.fds }); growing(f, 0.05, 10) {
			out = append(out, fmt.Sprintf("%s: file descriptors grow (%.0f → %.0f, %+.1f/min in the second half)", name, f.first, f.last, f.slope))
		}
		if h := trendOf(s, func(s sample) float64 { return s.rss }); growing(h, 0.10, 8<<20) {
			out = append(out, fmt.Sprintf("%s: RSS grows (%s → %s, %+.2f MiB/min in the second half)", name, mib(h.first), mib(h.last), h.slope/(1<<20)))
		}
	}
	return out
}

// growing is a series whose second-half slope, over a minute, is more than
// frac of its mean level and more than floor.
func growing(t trend, frac, floor float64) bool {
	level := (t.first + t.last) / 2
	return t.n >= 6 && t.slope > frac*level && t.slope > floor/10
}

func (rep *report) unexplainedCount() int {
	n := 0
	for _, r := range rep.results {
		if r.problem != "" {
			if _, ok := rep.explain(r); !ok {
				n++
			}
		}
	}
	return n
}

func (rep *report) print() {
	cfg := rep.cfg
	fmt.Printf("\n## Soak: %s store\n\n", rep.store)
	gws := len(rep.samples)
	fmt.Printf("- %s of load, %d clients over %d gateway(s), think ≤ %s; reload every %s; binary %s\n", rep.elapsed.Round(time.Second), cfg.clients, gws, cfg.think, cfg.reload, rep.version)
	fmt.Printf("- provider: test OP, access tokens live %s (token_refresh_skew %s); %.0f%% of token calls fail (%s); fault window %s\n",
		cfg.tokenLifetime, cfg.skew, cfg.faultRate*100, cfg.faults, cfg.faultWindow)
	fmt.Printf("- load average (1/5/15 min): before %s, half-way %s, after %s\n\n", rep.loadBefore, rep.loadMid, rep.loadAfter)

	rep.printRequests()
	rep.printFailures()
	rep.printTrends()
	rep.printWebhooks()
	rep.printRest()
	if p := rep.problems(); len(p) > 0 {
		fmt.Printf("**Not healthy:**\n")
		for _, l := range p {
			fmt.Printf("- %s\n", l)
		}
	} else {
		fmt.Printf("**Healthy:** every failure explained, memory, goroutines and file descriptors flat, webhooks complete, store consistent.\n")
	}
	fmt.Println()
}

func (rep *report) printRequests() {
	kinds := map[string]*tally{}
	var order []string
	for _, r := range rep.results {
		t := kinds[r.kind]
		if t == nil {
			t = &tally{}
			kinds[r.kind] = t
			order = append(order, r.kind)
		}
		t.total++
		t.lat = append(t.lat, r.end.Sub(r.start))
		switch _, ok := rep.explain(r); {
		case r.problem == "":
			t.ok++
		case ok:
			t.explained++
		default:
			t.unexplained++
		}
	}
	slices.Sort(order)
	fmt.Println("| requests | total | ok | failed, explained | failed, unexplained | p50 | p99 | max |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	var all tally
	for _, k := range order {
		t := kinds[k]
		fmt.Printf("| %s | %d | %d | %d | %d | %s |\n", k, t.total, t.ok, t.explained, t.unexplained, percentiles(t.lat, 0.5, 0.99, 1))
		all.total, all.ok, all.explained, all.unexplained = all.total+t.total, all.ok+t.ok, all.explained+t.explained, all.unexplained+t.unexplained
		all.lat = append(all.lat, t.lat...)
	}
	fmt.Printf("| **all** (%.1f/s) | %d | %d | %d | %d | %s |\n\n", float64(all.total)/rep.elapsed.Seconds(), all.total, all.ok, all.explained, all.unexplained, percentiles(all.lat, 0.5, 0.99, 1))
}

var digits = regexp.MustCompile(`\d{2,}`)

func (rep *report) printFailures() {
	type key struct{ kind, what, by string }
	counts := map[key]int{}
	var unexplained []result
	for _, r := range rep.results {
		if r.problem == "" {
			continue
		}
		k := key{kind: r.kind, what: digits.ReplaceAllStringFunc(r.problem, func(s string) string {
			if len(s) == 3 {
				return s // a status
			}
			return "N"
		})}
		if in, ok := rep.explain(r); ok {
			k.by = "explained: " + in.Fault + " on " + in.Grant
		} else {
			k.by = "**unexplained**"
			unexplained = append(unexplained, r)
		}
		counts[k]++
	}
	if len(counts) == 0 {
		fmt.Printf("No failed requests.\n\n")
		return
	}
	fmt.Println("| failure | what | count | why |")
	fmt.Println("|---|---|---:|---|")
	for _, k := range slices.SortedFunc(maps.Keys(counts), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.what, b.what), cmp.Compare(a.by, b.by))
	}) {
		fmt.Printf("| %s | %s | %d | %s |\n", k.kind, k.what, counts[k], k.by)
	}
	fmt.Println()
	start := rep.results[0].start
	for _, r := range rep.results {
		if r.start.Before(start) {
			start = r.start
		}
	}
	for i, r := range unexplained {
		if i == 10 {
			fmt.Printf("- … and %d more\n", len(unexplained)-10)
			break
		}
		var near []string
		for _, in := range rep.injected {
			if in.Subject == r.user && in.At.After(r.start.Add(-time.Minute)) && in.At.Before(r.end.Add(time.Second)) {
				near = append(near, fmt.Sprintf("%s on %s at %+.1fs", in.Fault, in.Grant, in.At.Sub(r.start).Seconds()))
			}
		}
		age := ""
		if r.tokenAge >= 0 {
			age = fmt.Sprintf(" (its token first received %s before)", r.tokenAge.Round(time.Millisecond))
		}
		fmt.Printf("- unexplained: %s by %s on %s at %s (took %s)%s: %s; faults on %s's token calls in the minute before: %s\n",
			r.kind, r.user, r.gateway, r.start.Sub(start).Round(time.Millisecond), r.end.Sub(r.start).Round(time.Millisecond),
			age, r.problem, r.user, cmp.Or(strings.Join(near, ", "), "none"))
	}
	if len(unexplained) > 0 {
		fmt.Println()
	}
}

func (rep *report) printTrends() {
	fmt.Println("| gateway | samples | RSS first → last | RSS slope (2nd half) | heap first → last | heap slope | goroutines first → last | goroutine slope | fds first → last | fd slope |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, name := range slices.Sorted(maps.Keys(rep.samples)) {
		s := rep.samples[name]
		rss := trendOf(s, func(s sample) float64 { return s.rss })
		heap := trendOf(s, func(s sample) float64 { return s.heap })
		g := trendOf(s, func(s sample) float64 { return s.goroutines })
		fds := trendOf(s, func(s sample) float64 { return s.fds })
		fmt.Printf("| %s | %d | %s → %s | %+.2f MiB/min | %s → %s | %+.2f MiB/min | %.0f → %.0f | %+.1f/min | %.0f → %.0f | %+.1f/min |\n", name, len(s),
			mib(rss.first), mib(rss.last), rss.slope/(1<<20), mib(heap.first), mib(heap.last), heap.slope/(1<<20), g.first, g.last, g.slope,
			fds.first, fds.last, fds.slope)
	}
	fmt.Println()
}

func (rep *report) printWebhooks() {
	fmt.Println("| webhook receiver | events | deliveries (with repeats) | slowed | bad signature/body | missing (the other has) | lag p50 | p90 | p99 | max |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range []struct {
		name     string
		s, other receiverStats
	}{{"fast", rep.fast, rep.slow}, {"slow (20% slow, secret changes each reload)", rep.slow, rep.fast}} {
		missing := 0
		for id := range r.other.ids {
			if !r.s.ids[id] {
				missing++
			}
		}
		fmt.Printf("| %s | %d | %d | %d | %d | %d | %s |\n", r.name, len(r.s.ids), r.s.deliveries, r.s.slowed,
			r.s.badSig+r.s.badBody, missing, percentiles(r.s.lag, 0.5, 0.9, 0.99, 1))
	}
	drained := "not within the drain limit"
	if rep.drainTook >= 0 {
		drained = fmt.Sprintf("%s after the load stopped", rep.drainTook.Round(time.Second))
	}
	fmt.Printf("\nDeliveries caught up: %s.", drained)
	for _, name := range slices.Sorted(maps.Keys(rep.endpoints)) {
		e := rep.endpoints[name]
		fmt.Printf(" API %s: retrying %q, delivered %d, given up %d.", name, e.Pending, e.Delivered, e.Failed)
	}
	fmt.Println()
	fmt.Println()
}

func (rep *report) printRest() {
	var failed int
	var longest time.Duration
	for _, r := range rep.reloads {
		if r.err != nil {
			failed++
		}
		longest = max(longest, r.took)
	}
	fmt.Printf("- reloads: %d, failed %d, longest %s\n", len(rep.reloads), failed, longest.Round(time.Millisecond))
	byFault := map[string]int{}
	for _, in := range rep.injected {
		byFault[in.Fault+" on "+in.Grant]++
	}
	var faults []string
	for _, k := range slices.Sorted(maps.Keys(byFault)) {
		faults = append(faults, fmt.Sprintf("%s %d", k, byFault[k]))
	}
	fmt.Printf("- injected faults: %d (%s)\n", len(rep.injected), strings.Join(faults, ", "))
	if len(rep.refreshes) > 0 {
		fmt.Printf("- token refreshes (gateway counters): %s\n", strings.Join(rep.refreshes, ", "))
	}
	for _, c := range rep.checks {
		fmt.Printf("- storage-check (%s): exit %d: %s\n", c.how, c.code, strings.ReplaceAll(harness.LastLine(c.output), "\n", " "))
	}
	fmt.Println()
}

// refreshCounts are a gateway's socialgate_token_refreshes_total series.
func refreshCounts(gateway string, m []byte) []string {
	var out []string
	for _, line := range strings.Split(string(m), "\n") {
		if rest, ok := strings.CutPrefix(line, "socialgate_token_refreshes_total{"); ok {
			labels, value, _ := strings.Cut(rest, "} ")
			out = append(out, fmt.Sprintf("%s {%s} %s", gateway, labels, value))
		}
	}
	return out
}

// percentiles formats the given quantiles of d (1 is the maximum) as table
// cells.
func percentiles(d []time.Duration, qs ...float64) string {
	if len(d) == 0 {
		return strings.Repeat("— | ", len(qs)-1) + "—"
	}
	d = slices.Clone(d)
	slices.Sort(d)
	cells := make([]string, len(qs))
	for i, q := range qs {
		cells[i] = fmtDuration(d[min(len(d)-1, int(q*float64(len(d))))])
	}
	return strings.Join(cells, " | ")
}

func fmtDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
}
