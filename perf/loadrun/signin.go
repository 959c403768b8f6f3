package main

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/socialgate/socialgate/internal/testkit"
)

// flowResult is one run of the sign-in row.
type flowResult struct {
	measurement
	firstErr error
}

// signInFlows runs whole sign-ins, each in a fresh browser, with
// concurrency browsers at a time for d.
func signInFlows(ctx context.Context, site, devURL string, concurrency int, d time.Duration) flowResult {
	transport := &http.Transport{MaxIdleConnsPerHost: concurrency, DisableCompression: true}
	defer transport.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d+15*time.Second)
	defer cancel()
	start := time.Now()
	deadline := start.Add(d)
	var (
		mu  sync.Mutex
		res flowResult
		all []time.Duration
		wg  sync.WaitGroup
	)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				err := testkit.NewBrowser(transport).SignInDev(ctx, site, devURL, testkit.Ada)
				took := time.Since(t0)
				mu.Lock()
				if err != nil {
					res.errors++
					if res.firstErr == nil {
						res.firstErr = err
					}
				} else {
					all = append(all, took)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(all) > 0 {
		slices.Sort(all)
		pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
		res.requests = int64(len(all))
		res.perSecond = float64(len(all)) / elapsed.Seconds()
		res.p50, res.p90, res.p99 = pct(0.50), pct(0.90), pct(0.99)
	}
	return res
}
