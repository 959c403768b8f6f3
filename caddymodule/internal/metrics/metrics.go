// Package metrics holds socialgate's Prometheus collectors. They are process
// wide, so counts survive config reloads; Register adds them to a config's
// registry (Caddy's metrics endpoint shows them).
package metrics

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "socialgate"

var (
	// SignIns counts completed and failed sign-ins by provider and outcome
	// (success, sign_up, linked_by_email, and the failure reasons of the
	// flow).
	SignIns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sign_ins_total",
		Help: "Sign-ins by provider and outcome (success, sign_up, linked_by_email, or the reason of a failure).",
	}, []string{"provider", "outcome"})

	// Links counts accounts linked to a signed-in user, by provider.
	Links = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "links_total", Help: "Provider accounts linked to a signed-in user.",
	}, []string{"provider"})

	// Unlinks counts disconnected accounts, by provider.
	Unlinks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "unlinks_total", Help: "Provider accounts disconnected.",
	}, []string{"provider"})

	// Refreshes counts the provider token refreshes that came due, by
	// provider and outcome: success; invalid_grant (the grant is gone);
	// error (the provider failed, was slow or answered garbage: the account
	// backs off); backoff (not tried: the account is backing off after an
	// error); busy (not tried: the account's lock stayed held, by another
	// gateway's refresh or because every lock slot was taken); store_error
	// (the outcome could not be stored; after a success, the log says
	// whether a rotated refresh token may be lost).
	Refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "token_refreshes_total",
		Help: "Provider token refreshes that came due, by provider and outcome (success, invalid_grant, error, backoff, busy, store_error).",
	}, []string{"provider", "outcome"})

	// StaleTokensServed counts requests handed a still-valid token inside
	// the refresh skew because its refresh failed, is backing off, could not
	// take the account's lock or was slow.
	StaleTokensServed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "stale_tokens_served_total",
		Help: "Still-valid provider tokens handed out inside the refresh skew because their refresh failed, is backing off, was busy or slow.",
	}, []string{"provider"})

	// Reauthorizations counts accounts that came to need reauthorization.
	Reauthorizations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "reauthorization_required_total",
		Help: "Linked accounts whose grant ended (revoked or expired refresh token): the user must reconnect.",
	}, []string{"provider"})

	// Sessions counts sessions started and ended (by how they ended).
	Sessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "sessions_total",
		Help: "Session events: created, ended (sign-out), revoked.",
	}, []string{"event"})

	// FlowErrors counts refused flows by reason (invalid_state, provider_rejected, …).
	FlowErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "flow_errors_total", Help: "Refused sign-in, connect and reauthorize flows by reason.",
	}, []string{"reason"})

	// ProviderCalls measures outbound calls to providers by provider and status class.
	ProviderCalls = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "provider_request_duration_seconds",
		Help:    "Latency of calls to providers by provider and outcome (2xx, 4xx, 5xx, error).",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"provider", "outcome"})

	// RateLimited counts requests refused by the abuse limits, by endpoint class.
	RateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "rate_limited_total", Help: "Requests answered 429 by the per-client limits.",
	}, []string{"endpoint"})

	// NotAdmitted counts signed-in requests refused because allow_emails
	// and allow_groups do not admit the user (refused sign-ins are in
	// SignIns, outcome not_admitted).
	NotAdmitted = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "requests_not_admitted_total",
		Help: "Signed-in requests refused (403) because allow_emails and allow_groups do not admit the user.",
	})

	// WebhookDeliveries counts webhook delivery attempts by endpoint and
	// outcome: delivered, failed (retried later) or given_up (the last
	// attempt at an event failed; the endpoint moves past it).
	WebhookDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "webhook_deliveries_total",
		Help: "Webhook delivery attempts by endpoint and outcome (delivered, failed: retried later, given_up).",
	}, []string{"endpoint", "outcome"})
)

var all = []prometheus.Collector{SignIns, Links, Unlinks, Refreshes, StaleTokensServed, Reauthorizations, Sessions, FlowErrors, ProviderCalls, RateLimited,
	NotAdmitted, WebhookDeliveries}

// Register adds the collectors to reg. A collector already there (the same
// process-wide one, from an earlier config) is fine.
func Register(reg prometheus.Registerer) error {
	for _, c := range all {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// Transport times every call to a provider.
func Transport(next http.RoundTripper, provider string) http.RoundTripper {
	return timedTransport{next: next, provider: provider}
}

type timedTransport struct {
	next     http.RoundTripper
	provider string
}

func (t timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	outcome := "error"
	if err == nil {
		outcome = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}[min(max(resp.StatusCode/100, 1), 5)-1]
	}
	ProviderCalls.WithLabelValues(t.provider, outcome).Observe(time.Since(start).Seconds())
	return resp, err
}
