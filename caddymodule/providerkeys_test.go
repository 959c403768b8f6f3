package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// jwksMinLifetime is the shortest time the gateway caches a provider's
// JWKS, whatever the provider's Cache-Control says (keyset.go).
const jwksMinLifetime = 5 * time.Second

// TestProviderKeys_FollowRotationAndSurviveOutages: a provider that rotates
// its signing key, removes one and loses its JWKS, seen through browsers
// signing in. The gateway used to cache the JWKS forever (a removed key kept
// verifying), refused a new key for up to a minute after the last fetch, and
// reported a JWKS outage as a token that "could not be verified".
func TestProviderKeys_FollowRotationAndSurviveOutages(t *testing.T) {
	op := startOP(t, testop.Options{JWKSCacheControl: "max-age=1"}) // the gateway keeps it jwksMinLifetime
	e := newEnv(t, options{NoDev: true, Site: "handle /metrics {\n\t\tmetrics\n\t}", Global: fmt.Sprintf(`provider oidc corp {
			issuer %s
			client_id test-client
			client_secret test-secret
		}`, op.URL())})
	signIn := func(step string, wantStatus int, wantText string) *browser {
		t.Helper()
		b := newBrowser(t)
		resp, body := signInCorp(b, e)
		if resp.StatusCode != wantStatus || !strings.Contains(body, wantText) {
			t.Fatalf("%s: status %d, want %d with %q:\n%s", step, resp.StatusCode, wantStatus, wantText, body)
		}
		return b
	}
	const (
		rejected    = "could not be verified"
		unavailable = "is not reachable right now"
	)
	first := op.Kid()
	signIn("first sign-in", http.StatusOK, "")

	op.RotateKey()
	signIn("at once with a key published a moment ago", http.StatusOK, "")

	op.RemoveKey(first)
	op.SignWith(first)
	time.Sleep(jwksMinLifetime + 500*time.Millisecond)
	signIn("with the removed key once the cached JWKS expired", http.StatusBadGateway, rejected)

	op.RotateKey()
	b := signIn("with the next key", http.StatusOK, "") // reads /metrics, behind the gateway
	jwksCalls := op.Calls("jwks")

	op.SetFault(testop.FaultJWKSUnavailable)
	time.Sleep(jwksMinLifetime + 500*time.Millisecond)
	signIn("during a JWKS outage, with a key fetched before", http.StatusOK, "")
	if op.Calls("jwks") == jwksCalls {
		t.Fatal("the expired JWKS was not fetched again")
	}

	_, before := b.get(e.Base + "/metrics")
	op.RotateKey()
	signIn("during a JWKS outage, with a key the gateway could not fetch", http.StatusBadGateway, unavailable)
	_, after := b.get(e.Base + "/metrics")
	for _, m := range []struct{ name, labels string }{
		{"socialgate_flow_errors_total", `reason="provider_unavailable"`},
		{"socialgate_sign_ins_total", `outcome="provider_unavailable",provider="corp"`},
	} {
		if got := metricValue(after, m.name, m.labels) - metricValue(before, m.name, m.labels); got != 1 {
			t.Errorf("%s{%s} grew by %v, want 1", m.name, m.labels, got)
		}
	}
	if got := metricValue(after, "socialgate_flow_errors_total", `reason="provider_rejected"`) - metricValue(before, "socialgate_flow_errors_total", `reason="provider_rejected"`); got != 0 {
		t.Errorf("the outage counted as %v rejected tokens", got)
	}

	// Failed fetches are retried after 1 s, then 2 s, …: the provider's
	// return is noticed within seconds, not after a minute.
	op.SetFault(testop.FaultNone)
	time.Sleep(2100 * time.Millisecond)
	signIn("once the JWKS is back", http.StatusOK, "")
}
