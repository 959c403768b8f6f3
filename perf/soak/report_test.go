package main

import (
	"testing"
	"time"
)

// TestExplain_OnlyProviderFaultsOnProviderRequests holds the soak's rule for
// calling a failure explained: an injected fault on the same person's token
// call, recent enough, on a request that needs the provider, answered as an
// outage, and never while the person's token was surely still valid.
func TestExplain_OnlyProviderFaultsOnProviderRequests(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rep := &report{
		cfg: config{tokenLifetime: 15 * time.Second, faultWindow: 20 * time.Second},
		injected: []injection{
			{At: at(-30), Fault: "FaultTokenHTML", Grant: "refresh_token", Subject: "ann"},
			{At: at(-3), Fault: "FaultTokenServerError", Grant: "refresh_token", Subject: "ann"},
			{At: at(0.5), Fault: "FaultTokenHTML", Grant: "authorization_code", Subject: "bob"},
			{At: at(-1), Fault: "FaultTokenServerError", Grant: "authorization_code", Subject: "cy"},
		},
	}
	old := 12 * time.Second // received longer ago than the lifetime minus freshMargin
	tests := []struct {
		name   string
		r      result
		want   bool
		fault  string
		reason string
	}{
		{"a refused token after a failed refresh", result{kind: kindToken, user: "ann", status: 503, tokenAge: old}, true, "FaultTokenServerError", ""},
		{"the API's token after a failed refresh", result{kind: kindAPIToken, user: "ann", status: 503, tokenAge: old}, true, "FaultTokenServerError", ""},
		{"an expired token after a failed refresh", result{kind: kindExpired, user: "ann", status: 503, tokenAge: 20 * time.Second}, true, "FaultTokenServerError", ""},
		{"a sign-in whose code exchange failed", result{kind: kindSignIn, user: "bob", status: 502, tokenAge: -1}, true, "FaultTokenHTML", ""},
		{"a token that was surely still valid", result{kind: kindToken, user: "ann", status: 503, tokenAge: 9 * time.Second}, false, "", "the gateway must serve a still-valid token"},
		{"a page that needs no provider", result{kind: kindPass, user: "ann", status: 503, tokenAge: -1}, false, "", "only provider requests"},
		{"the account page", result{kind: kindAccount, user: "ann", status: 503, tokenAge: -1}, false, "", "only provider requests"},
		{"another person's fault", result{kind: kindToken, user: "dee", status: 503, tokenAge: old}, false, "", "the same person"},
		{"an answer that is not an outage", result{kind: kindToken, user: "ann", status: 500, tokenAge: old}, false, "", "502, 503, 504"},
		{"a sign-in after an earlier code exchange failed", result{kind: kindSignIn, user: "cy", status: 502, tokenAge: -1}, false, "", "its own code exchange"},
		{"a token request by a refresh fault on a code exchange", result{kind: kindToken, user: "bob", status: 503, tokenAge: old}, false, "", "a refresh fault"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.start, tt.r.end = at(0), at(1)
			in, ok := rep.explain(tt.r)
			if ok != tt.want || in.Fault != tt.fault {
				t.Errorf("explain = %q, %v; want %q, %v (%s)", in.Fault, ok, tt.fault, tt.want, tt.reason)
			}
		})
	}
	// A fault older than the window explains nothing.
	late := result{kind: kindToken, user: "ann", status: 503, tokenAge: old, start: at(20), end: at(21)}
	if in, ok := rep.explain(late); ok {
		t.Errorf("a fault 23 s before explained %+v", in)
	}
}

// TestReceived_TokenSinceIsTheLastSightingOfThePreviousToken holds the
// client's bound on when its current token was issued: not before the last
// request that still brought the previous one.
func TestReceived_TokenSinceIsTheLastSightingOfThePreviousToken(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	c := &client{tokenSince: t0, lastSeen: t0} // just signed in
	c.received("one", t0.Add(time.Second))
	c.received("one", t0.Add(4*time.Second))
	if !c.tokenSince.Equal(t0) {
		t.Fatalf("after the sign-in's token: since %v, want the sign-in's start", c.tokenSince.Sub(t0))
	}
	c.received("two", t0.Add(9*time.Second))
	if want := t0.Add(4 * time.Second); !c.tokenSince.Equal(want) || c.token != "two" {
		t.Fatalf("after a new token: %q since %v, want two since 4s", c.token, c.tokenSince.Sub(t0))
	}
}
