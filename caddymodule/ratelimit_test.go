package caddymodule_test

import (
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
	} {
		if err := e.Load(options{Global: global}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", global, err, want)
		}
	}
}
