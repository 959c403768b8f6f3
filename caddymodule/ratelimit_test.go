package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

func TestRateLimit_FloodsGet429AndNoOutboundCall(t *testing.T) {
	e, op := newOIDCEnv(t, "rate_limit callback 5 1m\n\t\trate_limit start 3 1m\n\t\trate_limit api 2 1m\n\t\trate_limit logout 2 1m")
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
	// The back-channel logout endpoint takes anyone's requests: limited
	// too (found open by the second red team), before any key fetch.
	jwksCalls := op.Calls("jwks")
	for i := 0; i < 3; i++ {
		resp, err := http.PostForm(e.Base+"/_auth/oauth/corp/backchannel-logout", url.Values{"logout_token": {"a.b.c"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{true: http.StatusTooManyRequests, false: http.StatusBadRequest}[i == 2]; resp.StatusCode != want {
			t.Errorf("back-channel logout %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if op.Calls("jwks") > jwksCalls+1 {
		t.Errorf("junk logout tokens fetched the keys %d times", op.Calls("jwks")-jwksCalls)
	}
	// Protected pages are not limited.
	for i := 0; i < 40; i++ {
		if status, _ := apiGet(t, http.DefaultClient, e.Base+"/page", nil); status != http.StatusUnauthorized {
			t.Fatalf("protected page %d: %d", i, status)
		}
	}
}

// Retry-After is the time until the client's bucket frees a request,
// rounded up: a client that waits what it was told gets through, and is
// not told to wait longer than the window. One request per 1.4 s: refused
// at once, the wait is a little under 1.4 s, which Retry-After must round
// up to 2, not down to 1.
func TestRateLimit_RetryAfterIsWhenTheNextRequestIsAllowed(t *testing.T) {
	e, _ := newOIDCEnv(t, "rate_limit api 1 1400ms")
	if status, _, _ := apiCall(t, e, "GET", "/users"); status == http.StatusTooManyRequests {
		t.Fatal("the first request was limited")
	}
	status, h, _ := apiCall(t, e, "GET", "/users")
	wait, err := strconv.Atoi(h.Get("Retry-After"))
	if status != http.StatusTooManyRequests || err != nil || wait < 1 || wait > 2 {
		t.Fatalf("second request: %d, Retry-After %q, want 429 with 1 or 2 (the window is 1.4 s)", status, h.Get("Retry-After"))
	}
	time.Sleep(time.Duration(wait) * time.Second)
	if status, h, _ := apiCall(t, e, "GET", "/users"); status == http.StatusTooManyRequests {
		t.Errorf("after waiting the Retry-After of %d s: 429 again, Retry-After %q", wait, h.Get("Retry-After"))
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

// readmeProxyServers returns the lines of the servers block of the "Run
// behind another proxy" recipe of docs/recipes.md, the front proxy on
// loopback.
func readmeProxyServers(t *testing.T) []string {
	t.Helper()
	var servers []string
	in := false
	for _, line := range strings.Split(docBlock(t, "docs/recipes.md", "## Run behind another proxy"), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "servers {":
			in = true
		case in && line == "}":
			in = false
		case in:
			servers = append(servers, strings.ReplaceAll(line, "10.0.0.0/8", "127.0.0.0/8"))
		}
	}
	if len(servers) == 0 {
		t.Fatal("the proxy recipe of docs/recipes.md has no servers block")
	}
	return servers
}

// Behind a front proxy that appends the address it saw to X-Forwarded-For
// (nginx's $proxy_add_x_forwarded_for, cloud load balancers), the abuse
// limits count the client that proxy saw, not an address the client wrote
// before it: with the recipe of docs/recipes.md (trusted_proxies_strict), and without
// the strict mode, where Caddy's client_ip is the client's pick and the
// gateway reads the right-most address itself. Found open by a red-team run.
func TestRateLimit_BehindAProxyCountsTheClientTheProxySaw(t *testing.T) {
	recipe := readmeProxyServers(t)
	notStrict := []string{}
	for _, line := range recipe {
		if line != "trusted_proxies_strict" {
			notStrict = append(notStrict, line)
		}
	}
	if len(notStrict) == len(recipe) {
		t.Fatal("the proxy recipe of docs/recipes.md does not set trusted_proxies_strict")
	}
	op := startOP(t, testop.Options{})
	for _, tc := range []struct {
		name    string
		servers []string
		// forwarded is the X-Forwarded-For of the i-th request: what the
		// client wrote, then what the proxies appended.
		forwarded func(i int) string
	}{
		{"the recipe", recipe, func(i int) string { return fmt.Sprintf("203.0.113.%d, 198.51.100.7", i+1) }},
		{"without trusted_proxies_strict", notStrict, func(i int) string { return fmt.Sprintf("203.0.113.%d, 198.51.100.7", i+1) }},
		{"the recipe, two proxies", recipe, func(i int) string { return fmt.Sprintf("203.0.113.%d, 198.51.100.7, 127.0.0.9", i+1) }},
		{"a client-sent list of many", recipe, func(i int) string {
			return strings.Repeat(fmt.Sprintf("203.0.113.%d,", i+1), 20) + "garbage, 198.51.100.7"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, options{
				Server: "servers {\n\t\t" + strings.Join(tc.servers, "\n\t\t") + "\n\t}",
				Global: fmt.Sprintf("provider oidc corp {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret test-secret\n\t\t}\n\t\trate_limit start 3 1m", op.URL()),
			})
			addr := strings.TrimPrefix(e.Base, "http://")
			var statuses []int
			limited := 0
			for i := range 6 {
				resp, _ := advRawFrom(t, "127.0.0.1", addr, "POST /_auth/oauth/corp/start HTTP/1.1\r\nHost: "+addr+
					"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n"+
					"X-Forwarded-For: "+tc.forwarded(i)+"\r\nConnection: close\r\n\r\n")
				statuses = append(statuses, resp.StatusCode)
				if resp.StatusCode == http.StatusTooManyRequests {
					limited++
				}
			}
			if limited != 3 {
				t.Errorf("6 starts of one client (3 allowed per minute), each claiming another address before the proxy's: statuses %v, want the last 3 refused with 429", statuses)
			}
			// Another client behind the same proxy has a limit of its own.
			resp, _ := advRawFrom(t, "127.0.0.1", addr, "POST /_auth/oauth/corp/start HTTP/1.1\r\nHost: "+addr+
				"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n"+
				"X-Forwarded-For: 198.51.100.8\r\nConnection: close\r\n\r\n")
			if resp.StatusCode == http.StatusTooManyRequests {
				t.Error("another client behind the same proxy was refused")
			}
		})
	}
}
