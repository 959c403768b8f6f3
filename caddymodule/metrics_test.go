package caddymodule_test

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// metricValue reads one sample from a Prometheus text page.
func metricValue(page, name, labels string) float64 {
	series := name + "{" + labels + "}"
	if labels == "" {
		series = name // a metric without labels
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)`).FindStringSubmatch(page)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func TestMetrics_AppearOnCaddysMetricsEndpoint(t *testing.T) {
	e := newEnv(t, options{Site: "handle /metrics {\n\t\tmetrics\n\t}"})
	b := newBrowser(t)
	b.signInDev(e, "/", person("Metric Person", "metric@example.com", true))
	_, before := b.get(e.Base + "/metrics")
	signUps := metricValue(before, "socialgate_sign_ins_total", `outcome="sign_up",provider="dev"`)
	if signUps < 1 {
		t.Fatalf("no sign_up counted:\n%s", before)
	}
	newBrowser(t).get(e.Base + "/_auth/oauth/dev/callback?state=forged&code=x")
	b2 := newBrowser(t)
	b2.signInDev(e, "/", person("Metric Person", "metric@example.com", true))

	resp, after := b.get(e.Base + "/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	checks := []struct {
		name, labels string
		delta        float64
	}{
		{"socialgate_sign_ins_total", `outcome="success",provider="dev"`, 1},
		{"socialgate_sign_ins_total", `outcome="invalid_state",provider="dev"`, 1},
		{"socialgate_flow_errors_total", `reason="invalid_state"`, 1},
		{"socialgate_sessions_total", `event="created"`, 1},
	}
	for _, c := range checks {
		if got := metricValue(after, c.name, c.labels) - metricValue(before, c.name, c.labels); got != c.delta {
			t.Errorf("%s{%s} grew by %v, want %v", c.name, c.labels, got, c.delta)
		}
	}
	if metricValue(after, "socialgate_provider_request_duration_seconds_count", `outcome="2xx",provider="dev"`) == 0 {
		t.Error("provider call latency is not recorded")
	}
}
