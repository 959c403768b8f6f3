package main

import (
	"context"
	"fmt"
	"time"

	"github.com/socialgate/socialgate/perf/internal/harness"
)

// sample is one reading of a gateway's process.
type sample struct {
	at         time.Duration // since the start of the load
	rss        float64       // bytes, from /proc
	heap       float64       // Go heap in use, bytes (go_memstats_heap_alloc_bytes)
	goroutines float64       // go_goroutines
	fds        float64       // open file descriptors (process_open_fds)
}

// sampleEvery reads every gateway's RSS, Go heap, goroutines and open file
// descriptors (Caddy's admin /metrics) every interval until ctx ends.
func sampleEvery(ctx context.Context, gws []*gateway, interval time.Duration, start time.Time) map[string][]sample {
	out := map[string][]sample{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		for _, g := range gws {
			m, err := harness.Scrape("http://" + g.admin() + "/metrics")
			if err != nil {
				continue // a reload in progress; the next tick reads it
			}
			s := sample{at: time.Since(start), rss: float64(g.proc.RSS())}
			s.heap, _ = m.Value("go_memstats_heap_alloc_bytes")
			s.goroutines, _ = m.Value("go_goroutines")
			s.fds, _ = m.Value("process_open_fds")
			out[g.name] = append(out[g.name], s)
		}
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
	}
}

// trend is a series' first and last values and its least-squares slope
// per minute over the second half of the run.
type trend struct {
	first, last, slope float64
	n                  int
}

func trendOf(samples []sample, value func(sample) float64) trend {
	if len(samples) == 0 {
		return trend{}
	}
	t := trend{first: value(samples[0]), last: value(samples[len(samples)-1]), n: len(samples)}
	half := samples[len(samples)/2:]
	if len(half) < 2 {
		return t
	}
	var sx, sy, sxx, sxy float64
	for _, s := range half {
		x, y := s.at.Minutes(), value(s)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	n := float64(len(half))
	if d := n*sxx - sx*sx; d != 0 {
		t.slope = (n*sxy - sx*sy) / d
	}
	return t
}

func mib(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }
