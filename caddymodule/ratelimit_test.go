package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestRateLimit_FloodsGet429AndNoOutboundCall(t *testing.T) {
	e, op := newOIDCEnv(t, "rate_limit callback 5 1m\n\t\trate_limit start 3 1m\n\t\trate_limit api 2 1m")
	b := newBrowser(t)
	tokenCalls := op.Calls("token")
	var limited *http.Response
	for i := 0; i < 50; i++ {
		resp, _ := b.get(e.Base + "/_auth/oauth/corp/callback?state=" + strings.Repeat("A", 43) + "&code=junk")
		if resp.StatusCode == http.StatusTooManyRequests {
			limited = resp
			break
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("junk callback %d: status %d", i, resp.StatusCode)
		}
	}
	if limited == nil || limited.Header.Get("Retry-After") == "" {
		t.Fatal("50 junk callbacks were never limited, or without Retry-After")
	}
	if op.Calls("token") != tokenCalls {
		t.Error("junk callbacks reached the provider")
	}
	for i := 0; i < 3; i++ {
		b.post(e.Base+"/_auth/oauth/corp/start", nil)
	}
	if resp, _ := b.post(e.Base+"/_auth/oauth/corp/start", nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("4th start: %d, want 429", resp.StatusCode)
	}
	for i := 0; i < 2; i++ {
		apiCall(t, e, "GET", "/users")
	}
	if status, h, _ := apiCall(t, e, "GET", "/users"); status != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("3rd API call: %d", status)
	}
	// Protected pages are not limited.
	for i := 0; i < 40; i++ {
		if status, _ := apiGet(t, http.DefaultClient, e.Base+"/page", nil); status != http.StatusUnauthorized {
			t.Fatalf("protected page %d: %d", i, status)
		}
	}
}

func TestRateLimit_BadConfigFailsAtLoad(t *testing.T) {
	e := newEnv(t, options{})
	for global, want := range map[string]string{
		"rate_limit signin 3 1m":   `unknown class "signin"`,
		"rate_limit start many 1m": "is not a number per duration",
		"rate_limit start 3":       "want <class> <events> <window>",
		"rate_limit start -1 1m":   "positive number of events",
		"rate_limit_ipv6_prefix 8": "not a prefix length between 32 and 128",
		"rate_limit_ipv6_prefix x": `"x" is not a prefix length`,
	} {
		if err := e.Load(options{Global: global}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", global, err, want)
		}
	}
}

// From loopback, every client is ::1 or 127.0.0.1: the test speaks as a
// trusted proxy, and the addresses it forwards are the clients.
func TestRateLimit_CountsAnIPv6NetworkAsOneClient(t *testing.T) {
	trusted := "servers {\n\t\ttrusted_proxies static 127.0.0.1/32 ::1/128\n\t}"
	e := newEnv(t, options{Server: trusted, Global: "rate_limit start 3 1m"})
	start := func(client string) int {
		t.Helper()
		resp, _ := advDo(t, http.MethodPost, e.Base+"/_auth/oauth/dev/start", http.Header{"X-Forwarded-For": {client},
			"Content-Type": {"application/x-www-form-urlencoded"}}, nil)
		return resp.StatusCode
	}
	for _, tc := range []struct {
		client string
		want   int
	}{
		{"2001:db8:1:2::a", http.StatusSeeOther},
		{"2001:db8:1:2::b", http.StatusSeeOther},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", http.StatusSeeOther},
		{"2001:db8:1:2:1234::1", http.StatusTooManyRequests}, // the same /64
		{"2001:db8:1:3::a", http.StatusSeeOther},             // the next /64
		{"198.51.100.7", http.StatusSeeOther},
		{"198.51.100.7", http.StatusSeeOther},
		{"198.51.100.7", http.StatusSeeOther},
		{"::ffff:198.51.100.7", http.StatusTooManyRequests}, // the same IPv4 client
		{"198.51.100.8", http.StatusSeeOther},               // IPv4 counts per address
	} {
		if got := start(tc.client); got != tc.want {
			t.Errorf("start from %s: %d, want %d", tc.client, got, tc.want)
		}
	}

	if err := e.Load(options{Server: trusted, Global: "rate_limit start 3 1m\n\t\trate_limit_ipv6_prefix 48"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if got := start(fmt.Sprintf("2001:db8:2:%x::1", i)); got != http.StatusSeeOther {
			t.Fatalf("start %d from a /48: %d", i, got)
		}
	}
	if got := start("2001:db8:2:ffff::1"); got != http.StatusTooManyRequests {
		t.Errorf("a 4th /64 of the same /48 with rate_limit_ipv6_prefix 48: %d, want 429", got)
	}
}
