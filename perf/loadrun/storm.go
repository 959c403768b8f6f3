package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/socialgate/socialgate/internal/testkit"
	"github.com/socialgate/socialgate/perf/internal/harness"
)

// The refresh storm (row 5): STORM, a fourth Caddy process, runs the gateway
// with `forward_token dev` and a dev provider whose access tokens live
// stormTokenLifetime. stormUsers users sign in; once all their tokens have
// expired, stormRequests requests (stormRequests/stormUsers per user) are
// sent at once, each on its own connection, and every one must reach the
// upstream with a fresh token. The row reports the storm's wall time and
// checks that the provider was asked for exactly one refresh per user.

const (
	stormUsers         = 100
	stormRequests      = 1000
	stormTokenLifetime = 4 * time.Second
	stormPath          = "/storm/"
	refreshMetric      = `socialgate_token_refreshes_total{outcome="success",provider="dev"}`
)

// storm is the running STORM process and its signed-in users.
type storm struct {
	caddy      *harness.Proc
	site       site
	metricsURL string
	cookies    []string  // one session cookie per user
	issued     time.Time // when the newest access token was issued
}

// stormResult is one storm.
type stormResult struct {
	wall, p50, p99 time.Duration
	refreshes      int64 // successful refreshes the gateway counted
	tokens         int64 // distinct new access tokens that reached the upstream
	problems       []string
}

// startStorm starts STORM on the given ports and signs its users in.
func startStorm(ctx context.Context, bin, dir, upstream string, ports []int, options []string) (*storm, error) {
	adminPort, devPort, sitePort, metricsPort := ports[0], ports[1], ports[2], ports[3]
	s := site{row: "(5) refresh storm", port: sitePort, handler: "socialgate {\n\tforward_token dev\n}"}
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n\tauto_https off\n\tstorage file_system %s\n", adminPort, filepath.Join(dir, "caddy"))
	fmt.Fprintf(&b, "\tsocialgate {\n\t\tstorage %s\n\t\tdev_provider 127.0.0.1:%d {\n\t\t\taccess_token_lifetime %s\n\t\t}\n",
		filepath.Join(dir, "socialgate"), devPort, stormTokenLifetime)
	// Tokens count as stale half-way through their life; the storm waits
	// until they have expired outright.
	fmt.Fprintf(&b, "\t\ttoken_refresh_skew %s\n", stormTokenLifetime/2)
	for _, o := range options {
		fmt.Fprintf(&b, "\t\t%s\n", o)
	}
	fmt.Fprintf(&b, "\t}\n}\nhttp://127.0.0.1:%d {\n\t%s\n\treverse_proxy %s\n}\n",
		s.port, strings.ReplaceAll(s.handler, "\n", "\n\t"), upstream)
	fmt.Fprintf(&b, "http://127.0.0.1:%d {\n\tmetrics\n}\n", metricsPort)
	p, err := harness.StartCaddy("STORM", bin, dir, b.String(), s.url())
	if err != nil {
		return nil, err
	}
	st := &storm{caddy: p, site: s, metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)}
	if err := st.signIn(ctx, fmt.Sprintf("http://127.0.0.1:%d", devPort)); err != nil {
		p.Stop()
		return nil, fmt.Errorf("signing the storm's users in: %w\n%s", err, p.Tail())
	}
	return st, nil
}

// signIn signs stormUsers distinct users in, four at a time.
func (st *storm) signIn(ctx context.Context, devURL string) error {
	st.cookies = make([]string, stormUsers)
	transport := &http.Transport{MaxIdleConnsPerHost: 4}
	defer transport.CloseIdleConnections()
	errs := make([]error, stormUsers)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				b := testkit.NewBrowser(transport)
				who := url.Values{"name": {fmt.Sprintf("Storm %03d", i)},
					"email": {fmt.Sprintf("storm%03d@loadrun.example", i)}, "email_verified": {"on"}}
				if errs[i] = b.SignInDev(ctx, st.site.url(), devURL, who); errs[i] == nil {
					st.cookies[i], errs[i] = b.SessionHeader(st.site.url())
				}
			}
		}()
	}
	for i := range stormUsers {
		work <- i
	}
	close(work)
	wg.Wait()
	st.issued = time.Now()
	return errors.Join(errs...)
}

// run waits until every user's access token has expired, then sends the
// storm and checks what reached the upstream and the provider.
func (st *storm) run(ctx context.Context, upstream string) (stormResult, error) {
	var res stormResult
	if wait := time.Until(st.issued.Add(stormTokenLifetime + 100*time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	before, err := readStats(upstream)
	if err != nil {
		return res, err
	}
	refreshesBefore, err := st.refreshes()
	if err != nil {
		return res, err
	}
	// One connection per request, dialed before the clock starts.
	host := fmt.Sprintf("127.0.0.1:%d", st.site.port)
	conns := make([]net.Conn, stormRequests)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		if conns[i], err = net.DialTimeout("tcp", host, 2*time.Second); err != nil {
			return res, fmt.Errorf("dialing STORM: %w", err)
		}
	}
	var (
		release = make(chan struct{})
		lat     = make([]time.Duration, stormRequests)
		failed  = make([]error, stormRequests)
		wg      sync.WaitGroup
	)
	for i, c := range conns {
		req := []byte(fmt.Sprintf("GET %s%d HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n\r\n",
			stormPath, i, host, st.cookies[i%stormUsers]))
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			<-release
			t0 := time.Now()
			status, _, err := roundTrip(c, bufio.NewReader(c), req)
			lat[i] = time.Since(t0)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("status %d", status)
			}
			failed[i] = err
		}()
	}
	start := time.Now()
	close(release)
	wg.Wait()
	res.wall = time.Since(start)
	st.issued = start.Add(res.wall)

	if err := errors.Join(failed...); err != nil {
		n := len(slices.DeleteFunc(failed, func(e error) bool { return e == nil }))
		res.problems = append(res.problems, fmt.Sprintf("%d of %d storm requests failed: %v", n, stormRequests, strings.SplitN(err.Error(), "\n", 2)[0]))
	}
	slices.Sort(lat)
	res.p50, res.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	refreshesAfter, err := st.refreshes()
	if err != nil {
		return res, err
	}
	res.refreshes = refreshesAfter - refreshesBefore
	after, err := settledStats(upstream)
	if err != nil {
		return res, err
	}
	seen := after.minus(before)
	res.tokens = seen.Tokens
	if seen.Requests != stormRequests || seen.WithToken != stormRequests {
		res.problems = append(res.problems, fmt.Sprintf("the upstream saw %d storm requests, %d with a token; want %d each",
			seen.Requests, seen.WithToken, stormRequests))
	}
	if res.refreshes != stormUsers {
		res.problems = append(res.problems, fmt.Sprintf("%d refreshes for %d users, want exactly one each", res.refreshes, stormUsers))
	}
	if res.tokens != stormUsers {
		res.problems = append(res.problems, fmt.Sprintf("%d distinct new tokens reached the upstream, want %d (one per user)", res.tokens, stormUsers))
	}
	return res, nil
}

// refreshes reads STORM's count of successful dev-provider refreshes from
// its metrics endpoint.
func (st *storm) refreshes() (int64, error) {
	m, err := harness.Scrape(st.metricsURL)
	if err != nil {
		return 0, err
	}
	v, _ := m.Value(refreshMetric) // no refresh yet: the series does not exist
	return int64(v), nil
}

// printStorm prints the storm's table: medians over the runs.
func printStorm(results []stormResult, skipped string) {
	fmt.Printf("Refresh storm: %d requests at once, each on its own connection, over %d signed-in users whose\n", stormRequests, stormUsers)
	fmt.Printf("dev-provider access tokens (lifetime %s) have just expired; `forward_token dev` must send each\n", stormTokenLifetime)
	fmt.Println("upstream request a fresh token. Refresh calls: the gateway's socialgate_token_refreshes_total; new")
	fmt.Println("tokens: distinct access tokens that reached the upstream.")
	fmt.Println()
	fmt.Println("| row | requests | users | refresh calls | new tokens upstream | wall time | p50 | p99 |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	if skipped != "" || len(results) == 0 {
		fmt.Printf("| (5) refresh storm | skipped: %s | | | | | | |\n\n", skipped)
		return
	}
	med := func(f func(stormResult) time.Duration) time.Duration {
		v := make([]time.Duration, len(results))
		for i, r := range results {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	var refreshes, tokens []string
	var problems []string
	for _, r := range results {
		refreshes = append(refreshes, strconv.FormatInt(r.refreshes, 10))
		tokens = append(tokens, strconv.FormatInt(r.tokens, 10))
		problems = append(problems, r.problems...)
	}
	mark := ""
	if len(problems) > 0 {
		mark = " ⚠"
	}
	fmt.Printf("| (5) refresh storm%s | %d | %d | %s | %s | %s | %s | %s |\n\n", mark, stormRequests, stormUsers,
		strings.Join(slices.Compact(refreshes), ", "), strings.Join(slices.Compact(tokens), ", "),
		fmtDuration(med(func(r stormResult) time.Duration { return r.wall })),
		fmtDuration(med(func(r stormResult) time.Duration { return r.p50 })),
		fmtDuration(med(func(r stormResult) time.Duration { return r.p99 })))
	var walls []string
	for _, r := range results {
		walls = append(walls, fmtDuration(r.wall))
	}
	fmt.Printf("Wall time per storm: %s (median above).\n", strings.Join(walls, " | "))
	for _, p := range slices.Compact(problems) {
		fmt.Printf("- ⚠ (5) refresh storm: %s\n", p)
	}
	fmt.Println()
}
