package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// measurement is one run of one row.
type measurement struct {
	requests      int64 // completed, as the client counts them
	perSecond     float64
	p50, p90, p99 time.Duration
	errors        int64         // socket errors, timeouts, non-2xx/3xx (wrk) or non-200 (go)
	cpuPerRequest time.Duration // the serving Caddy's (or auth server's) CPU time over requests

	// The forward-auth rows' nginx: its CPU time over requests, and over
	// the run's wall time (cores busy).
	proxyCPUPerRequest time.Duration
	proxyBusy          float64
}

// loader drives keep-alive GET load at a URL with a Cookie header.
type loader interface {
	name() string
	run(ctx context.Context, target, cookie string, d time.Duration) (measurement, error)
}

// wrkLoader runs wrk (https://github.com/wg/wrk).
type wrkLoader struct {
	path              string
	threads, conns    int
	printedInvocation bool
}

func (w *wrkLoader) name() string { return "wrk" }

func (w *wrkLoader) args(target, cookie string, d time.Duration) []string {
	args := []string{"-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conns),
		"-d", fmt.Sprintf("%ds", max(1, int(d.Round(time.Second)/time.Second))), "--latency", "--timeout", "5s"}
	if cookie != "" {
		args = append(args, "-H", "Cookie: "+cookie)
	}
	return append(args, target)
}

func (w *wrkLoader) run(ctx context.Context, target, cookie string, d time.Duration) (measurement, error) {
	ctx, cancel := context.WithTimeout(ctx, d+15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, w.path, w.args(target, cookie, d)...).CombinedOutput()
	if err != nil {
		return measurement{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	return parseWrk(string(out))
}

var (
	wrkPercentile = regexp.MustCompile(`(?m)^\s+(50|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$`)
	wrkRequests   = regexp.MustCompile(`(?m)^\s+(\d+) requests in ([\d.]+)(us|ms|s|m|h)`)
	wrkRate       = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkNon2xx     = regexp.MustCompile(`(?m)Non-2xx or 3xx responses: (\d+)`)
	wrkSocket     = regexp.MustCompile(`(?m)Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads wrk --latency output.
func parseWrk(out string) (measurement, error) {
	var m measurement
	for _, p := range wrkPercentile.FindAllStringSubmatch(out, -1) {
		d := parseDuration(p[2], p[3])
		switch p[1] {
		case "50":
			m.p50 = d
		case "90":
			m.p90 = d
		case "99":
			m.p99 = d
		}
	}
	req, rate := wrkRequests.FindStringSubmatch(out), wrkRate.FindStringSubmatch(out)
	if req == nil || rate == nil || m.p99 == 0 {
		return m, fmt.Errorf("unexpected wrk output:\n%s", out)
	}
	m.requests, _ = strconv.ParseInt(req[1], 10, 64)
	m.perSecond, _ = strconv.ParseFloat(rate[1], 64)
	if n := wrkNon2xx.FindStringSubmatch(out); n != nil {
		v, _ := strconv.ParseInt(n[1], 10, 64)
		m.errors += v
	}
	if s := wrkSocket.FindStringSubmatch(out); s != nil {
		for _, f := range s[1:] {
			v, _ := strconv.ParseInt(f, 10, 64)
			m.errors += v
		}
	}
	return m, nil
}

func parseDuration(num, unit string) time.Duration {
	f, _ := strconv.ParseFloat(num, 64)
	scale := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	return time.Duration(f * float64(scale))
}

// goLoader is the built-in client: like wrk, one keep-alive HTTP/1.1
// connection per worker, closed loop, a pre-built request and a minimal
// response reader, so the client costs the shared CPUs little.
type goLoader struct{ conns int }

func (g *goLoader) name() string { return "go" }

func (g *goLoader) run(ctx context.Context, target, cookie string, d time.Duration) (measurement, error) {
	u, err := url.Parse(target)
	if err != nil {
		return measurement{}, err
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: loadrun\r\nAccept: */*\r\n", u.RequestURI(), u.Host)
	if cookie != "" {
		fmt.Fprintf(&req, "Cookie: %s\r\n", cookie)
	}
	req.WriteString("\r\n")

	start := time.Now()
	deadline := start.Add(d)
	var (
		mu       sync.Mutex
		all      []time.Duration
		failures int64
		wg       sync.WaitGroup
	)
	for range g.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat, failed := g.worker(ctx, u.Host, req.Bytes(), deadline)
			mu.Lock()
			all = append(all, lat...)
			failures += failed
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(all) == 0 {
		return measurement{}, fmt.Errorf("no request to %s completed (%d failures)", target, failures)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	return measurement{requests: int64(len(all)), perSecond: float64(len(all)) / elapsed.Seconds(),
		p50: pct(0.50), p90: pct(0.90), p99: pct(0.99), errors: failures}, nil
}

// worker sends requests on one connection until deadline; it redials after
// an error. Latencies of non-200 answers are not recorded.
func (g *goLoader) worker(ctx context.Context, host string, req []byte, deadline time.Time) (lat []time.Duration, failed int64) {
	lat = make([]time.Duration, 0, 1<<14)
	var conn net.Conn
	var br *bufio.Reader
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if conn == nil {
			c, err := net.DialTimeout("tcp", host, 2*time.Second)
			if err != nil {
				failed++
				time.Sleep(10 * time.Millisecond)
				continue
			}
			conn, br = c, bufio.NewReaderSize(c, 16<<10)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		t0 := time.Now()
		status, keep, err := roundTrip(conn, br, req)
		took := time.Since(t0)
		if err != nil || !keep {
			conn.Close()
			conn = nil
		}
		if err != nil || status != 200 {
			failed++
			continue
		}
		lat = append(lat, took)
	}
	return lat, failed
}

var errBadResponse = errors.New("malformed HTTP response")

// roundTrip writes req and reads one response, discarding its body. keep is
// false when the server closes the connection.
func roundTrip(conn net.Conn, br *bufio.Reader, req []byte) (status int, keep bool, err error) {
	if _, err := conn.Write(req); err != nil {
		return 0, false, err
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, errBadResponse
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, errBadResponse
	}
	length, chunked, keep := -1, false, true
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		if len(line) <= 2 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, errBadResponse
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, false, errBadResponse
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		return status, keep, discardChunked(br)
	case length >= 0:
		_, err = br.Discard(length)
		return status, keep, err
	default:
		return status, false, nil // the body runs to the close; don't reuse
	}
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := strings.Cut(strings.TrimSpace(string(line)), ";")
		n, err := strconv.ParseInt(size, 16, 64)
		if err != nil {
			return errBadResponse
		}
		if n == 0 {
			for { // trailers, then the blank line
				line, err := br.ReadSlice('\n')
				if err != nil || len(line) <= 2 {
					return err
				}
			}
		}
		if _, err := br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
