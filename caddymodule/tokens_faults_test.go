package caddymodule_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/testop"
	"github.com/socialgate/socialgate/internal/testkit"
)

// newFaultEnv runs the gateway on storage (an onBothStores line) with corp,
// a provider whose tokens live lifetime and rotate, behind forward_token
// corp, with a skew. The provider's faults are lifted when the test
// ends, so that no hung refresh outlives it.
func newFaultEnv(t *testing.T, storage string, lifetime, skew time.Duration) (*env, *testop.Server) {
	op := startOP(t, testop.Options{AccessTokenLifetime: lifetime, IssueRefreshToken: true})
	e := &env{t: t, Storage: t.TempDir(), Upstream: newUpstream(t), port: testkit.FreePort(t), devPort: testkit.FreePort(t)}
	e.Base = fmt.Sprintf("http://127.0.0.1:%d", e.port)
	e.handler = "forward_token corp"
	e.corp = fmt.Sprintf("%s\n\t\tprovider oidc corp {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret test-secret\n\t\t}\n\t\tapi_key %s\n\t\ttoken_refresh_skew %s",
		storage, op.URL(), apiKey, skew)
	if err := e.Load(options{Global: e.corp, NoDev: true}); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	e.stopAtCleanup()
	t.Cleanup(func() { op.SetFault(testop.FaultNone) }) // runs before the stop
	return e, op
}

// browserOf signs a new browser in at corp as subject.
func browserOf(t *testing.T, e *env, op *testop.Server, subject string) *browser {
	op.SetClaims(claimsWith(subject, subject+"@example.com"))
	b, status := signInWith(t, e, "corp")
	if status != http.StatusOK {
		t.Fatalf("signing in %s: %d", subject, status)
	}
	return b
}

// forwarded returns the corp token the upstream got for path.
func forwarded(e *env, path string) string {
	for _, h := range e.Upstream.Requests() {
		if h.Get("X-Test-Path") == path {
			return h.Get("X-Auth-Token-Corp")
		}
	}
	return ""
}

// counted reads a sample of the gateway's metrics (process wide, as on
// Caddy's metrics page): the counter name{labels}, labels as name=value.
func counted(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := metrics.Register(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetName()+"="+l.GetValue())
			}
			if slices.Equal(got, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// Fifteen users whose tokens are still valid but inside the skew, and a token
// endpoint that hangs: every request is answered at once with the token it
// has, on both stores (PostgreSQL used to queue them for max_conns/2 lock
// slots and answer 503).
func TestTokens_HungProviderStillServesValidTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for 15 tokens to enter the skew (about 12 s per store)")
	}
	onBothStores(t, func(t *testing.T, storage string) {
		const users = 15
		e, op := newFaultEnv(t, storage, 24*time.Second, 12*time.Second)
		browsers := make([]*browser, users)
		for i := range browsers {
			browsers[i] = browserOf(t, e, op, fmt.Sprint("user-", i))
		}
		lastSignIn := time.Now()
		time.Sleep(time.Until(lastSignIn.Add(12*time.Second + 500*time.Millisecond))) // inside the skew, valid for 10 s more
		op.SetFault(testop.FaultTokenHang)
		calls := op.Calls("token")

		type answer struct {
			status int
			took   time.Duration
		}
		answers := make([]answer, users)
		var wg sync.WaitGroup
		for i, b := range browsers {
			wg.Go(func() {
				start := time.Now()
				status, _ := apiGet(t, b.c, fmt.Sprintf("%s/u/%d", e.Base, i), nil)
				answers[i] = answer{status, time.Since(start)}
			})
		}
		wg.Wait()
		var ok int
		var slowest time.Duration
		for i, a := range answers {
			slowest = max(slowest, a.took)
			if a.status != http.StatusOK {
				continue
			}
			ok++
			if tok := forwarded(e, fmt.Sprintf("/u/%d", i)); !userinfoWorks(t, op.UserinfoURL(), tok) {
				t.Errorf("user %d: the token forwarded does not work at the provider", i)
			}
		}
		t.Logf("%d of %d requests answered 200, the slowest after %v; %d calls to the hung token endpoint",
			ok, users, slowest.Round(time.Millisecond), op.Calls("token")-calls)
		if ok != users || slowest > 5*time.Second {
			t.Errorf("%d of %d still-valid tokens served, the slowest after %v; want all, within seconds", ok, users, slowest)
		}
		if served := counted(t, "socialgate_stale_tokens_served_total", "provider=corp"); served < users {
			t.Errorf("socialgate_stale_tokens_served_total = %v, want at least %d", served, users)
		}
	})
}

// A failing provider (500, garbage, hanging) is called once, not by every
// request: the account backs off, and the backoff shows in the metrics.
func TestTokens_FailingProviderIsCalledOncePerBackoff(t *testing.T) {
	for _, fault := range []testop.Fault{testop.FaultTokenServerError, testop.FaultTokenHTML, testop.FaultTokenHang} {
		t.Run(fault.String(), func(t *testing.T) {
			onBothStores(t, func(t *testing.T, storage string) {
				e, op := newFaultEnv(t, storage, 3*time.Second, time.Second)
				b := browserOf(t, e, op, "u1")
				time.Sleep(3 * time.Second) // the access token expires
				op.SetFault(fault)
				calls := op.Calls("token")
				backoffs := counted(t, "socialgate_token_refreshes_total", "outcome=backoff", "provider=corp")
				var took []time.Duration
				for i := range 3 {
					start := time.Now()
					req, _ := http.NewRequest(http.MethodGet, e.Base+"/needs-token", nil)
					req.Header.Set("Accept", "application/json")
					resp, err := b.c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					took = append(took, time.Since(start).Round(time.Millisecond))
					if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
						t.Errorf("request %d: %d, Retry-After %q; want 503 with Retry-After", i, resp.StatusCode, resp.Header.Get("Retry-After"))
					}
				}
				n := op.Calls("token") - calls
				t.Logf("3 requests: %d calls to the token endpoint, answered after %v", n, took)
				if n != 1 {
					t.Errorf("%d calls to a failing token endpoint for 3 requests, want 1", n)
				}
				if took[1] > time.Second || took[2] > time.Second {
					t.Errorf("requests after the failure took %v: they should not wait for the provider", took[1:])
				}
				if got := counted(t, "socialgate_token_refreshes_total", "outcome=backoff", "provider=corp") - backoffs; got != 2 {
					t.Errorf("socialgate_token_refreshes_total{outcome=backoff} grew by %v, want 2", got)
				}
				if status, _ := apiGet(t, b.c, e.Base+"/_auth/me", nil); status != http.StatusOK {
					t.Error("the session is affected by a provider outage")
				}
			})
		})
	}
}

// A provider whose tokens live less than token_refresh_skew: the skew is
// capped at half the lifetime, so requests do not each refresh (and rotate).
func TestTokens_ShortLivedTokensAreNotRefreshedOnEveryRequest(t *testing.T) {
	onBothStores(t, func(t *testing.T, storage string) {
		// 8 s tokens: the 20 requests have half of it (4 s, the skew) to
		// be made before a refresh is due, however loaded the machine.
		e, op := newFaultEnv(t, storage, 8*time.Second, 10*time.Second)
		issued := time.Now() // at or before the token's issue
		b := browserOf(t, e, op, "u1")
		calls := op.Calls("token")
		for i := range 20 {
			if status, _ := apiGet(t, b.c, fmt.Sprintf("%s/r/%d", e.Base, i), nil); status != http.StatusOK {
				t.Fatalf("request %d: %d", i, status)
			}
		}
		quick := op.Calls("token") - calls
		time.Sleep(time.Until(issued.Add(4500 * time.Millisecond))) // past half the lifetime
		if status, _ := apiGet(t, b.c, e.Base+"/r/later", nil); status != http.StatusOK {
			t.Fatalf("later request: %d", status)
		}
		later := op.Calls("token") - calls - quick
		t.Logf("8 s tokens, 10 s skew: %d refreshes for 20 requests in a row, %d for one request past half the lifetime", quick, later)
		if quick != 0 || later != 1 {
			t.Errorf("%d refreshes for 20 requests right after sign-in and %d past half the lifetime; want 0 and 1", quick, later)
		}
		if !userinfoWorks(t, op.UserinfoURL(), forwarded(e, "/r/later")) {
			t.Error("the refreshed token does not work at the provider")
		}
	})
}
