package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/socialgate/socialgate/internal/testkit"
)

// The kinds of request a client makes.
const (
	kindSignIn    = "sign-in (whole flow)"
	kindPass      = "pass-through"
	kindToken     = "forward_token"
	kindExpired   = "forward_token after an idle pause (token expired)"
	kindAccount   = "account page"
	kindSignOut   = "sign-out"
	kindAPIUsers  = "API: list users"
	kindAPIToken  = "API: user's token"
	tokenPath     = "/tok/"
	upstreamMark  = "soak upstream\n"
	seenUserHead  = "X-Soak-Seen-User"
	seenTokenHead = "X-Soak-Seen-Token"
)

// result is one request (a sign-in: one whole flow) and how it ended.
type result struct {
	kind       string
	user       string // the client's login_hint: the provider's subject
	gateway    string
	start, end time.Time
	status     int    // the answer that decided the outcome; 0: none
	problem    string // empty when it went as it should
	// tokenAge is, for the requests that need the provider token, how long
	// before this request the client first received its current token;
	// -1 for the others and before the first.
	tokenAge time.Duration
}

// client is one person with one browser, on one gateway.
type client struct {
	hint   string
	gw     *gateway
	issuer string
	b      *testkit.Browser
	userID string // the gateway's user id, once seen
	in     bool   // signed in
	tr     http.RoundTripper
	// idle clients sometimes step away for longer than a token lives, and
	// come back to a forward_token route: its refresh cannot fall back on
	// a still-valid token.
	idle, back bool
	// token is a digest of the provider token the client last received
	// ("" before the first after a sign-in); tokenSince is a time it
	// cannot have been issued much before: the sign-in's start, or the
	// start of the last request that still brought the token before it;
	// lastSeen is the start of the last request that brought it.
	token                string
	tokenSince, lastSeen time.Time
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// runClients runs n clients spread over the gateways until ctx ends, each
// pausing up to think between requests, and returns every result. Every
// third client is idle: after a request, one time in ten, it pauses longer
// than an access token lives (tokenLifetime).
func runClients(ctx context.Context, gws []*gateway, issuer string, n int, think, tokenLifetime time.Duration) []result {
	var (
		mu  sync.Mutex
		out []result
		wg  sync.WaitGroup
	)
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	defer tr.CloseIdleConnections()
	for i := range n {
		c := &client{hint: fmt.Sprintf("soak-%02d", i), gw: gws[i%len(gws)], issuer: issuer, tr: tr, idle: i%3 == 2}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				r := c.step(ctx)
				if ctx.Err() != nil && r.problem != "" {
					break // cut short by the end of the run: not counted
				}
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
				pause := time.Duration(rand.Int64N(int64(think)))
				if c.idle && c.in && rand.IntN(10) == 0 {
					pause, c.back = tokenLifetime+time.Second+time.Duration(rand.Int64N(int64(3*time.Second))), true
				}
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// step makes the client's next request: a sign-in when signed out, else one
// of the signed-in kinds (weights in the switch).
func (c *client) step(ctx context.Context) result {
	r := result{user: c.hint, gateway: c.gw.name, start: time.Now(), tokenAge: -1}
	if !c.tokenSince.IsZero() {
		r.tokenAge = r.start.Sub(c.tokenSince)
	}
	if !c.in {
		r.kind, r.tokenAge = kindSignIn, -1
		r.status, r.problem = c.signIn(ctx)
		if c.in {
			c.token, c.tokenSince, c.lastSeen = "", r.start, r.start
		}
		r.end = time.Now()
		return r
	}
	if c.back {
		c.back = false
		r.kind = kindExpired
		r.status, r.problem = c.proxied(ctx, tokenPath+"data", true)
		r.end = time.Now()
		return r
	}

	switch n := rand.IntN(100); {
	case n < 40:
		r.kind, r.tokenAge = kindPass, -1
		r.status, r.problem = c.proxied(ctx, "/page", false)
	case n < 70:
		r.kind = kindToken
		r.status, r.problem = c.proxied(ctx, tokenPath+"data", true)
	case n < 80:
		r.kind, r.tokenAge = kindAccount, -1
		r.status, r.problem = c.page(ctx, "/_auth/account")
	case n < 88:
		r.kind, r.tokenAge = kindAPIUsers, -1
		r.status, r.problem = c.api(ctx, "/users?limit=5")
	case n < 99 && c.userID != "":
		r.kind = kindAPIToken
		r.status, r.problem = c.api(ctx, "/users/"+url.PathEscape(c.userID)+"/oauth_access_tokens/corp")
	default:
		r.kind, r.tokenAge = kindSignOut, -1
		r.status, r.problem = c.signOut(ctx)
	}
	r.end = time.Now()
	return r
}

// signIn runs the whole flow in a fresh browser; at the provider the person
// types their name (login_hint) and is approved at once.
func (c *client) signIn(ctx context.Context) (int, string) {
	c.b = testkit.NewBrowser(c.tr)
	err := c.b.SignIn(ctx, c.gw.site(), "corp", c.issuer+"/authorize", func(authorize string) (*http.Response, error) {
		resp, _, err := c.b.Do(ctx, http.MethodGet, authorize+"&login_hint="+url.QueryEscape(c.hint), nil)
		return resp, err
	})
	var end *testkit.SignInEnd
	var step *testkit.StatusError
	switch {
	case err == nil:
		c.in = true
		return http.StatusOK, ""
	case errors.As(err, &end):
		u, _ := url.Parse(end.At)
		return end.Status, fmt.Sprintf("ended with %d at %s", end.Status, u.Path)
	case errors.As(err, &step):
		return step.Status, err.Error()
	default:
		return 0, err.Error()
	}
}

// proxied gets a protected path, which must reach the upstream with the
// user's identity (and the provider token where wantToken).
func (c *client) proxied(ctx context.Context, path string, wantToken bool) (int, string) {
	start := time.Now()
	resp, body, err := c.b.Do(ctx, http.MethodGet, strings.TrimSuffix(c.gw.site(), "/")+path, nil)
	if err != nil {
		return 0, err.Error()
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		return resp.StatusCode, fmt.Sprintf("status %d", resp.StatusCode)
	case body != upstreamMark:
		return resp.StatusCode, "200 not from the upstream"
	case resp.Header.Get(seenUserHead) == "":
		return resp.StatusCode, "the upstream saw no X-Auth-User-Id"
	case wantToken && resp.Header.Get(seenTokenHead) == "":
		return resp.StatusCode, "the upstream saw no X-Auth-Token-Corp"
	}
	c.userID = resp.Header.Get(seenUserHead)
	if wantToken {
		c.received(resp.Header.Get(seenTokenHead), start)
	}
	return resp.StatusCode, ""
}

// received notes the provider token a request that started at start
// brought (its digest).
func (c *client) received(token string, start time.Time) {
	if token != c.token && c.token != "" {
		c.tokenSince = c.lastSeen
	}
	c.token, c.lastSeen = token, start
}

// page gets one of the gateway's own pages, which must answer 200.
func (c *client) page(ctx context.Context, path string) (int, string) {
	resp, _, err := c.b.Do(ctx, http.MethodGet, strings.TrimSuffix(c.gw.site(), "/")+path, nil)
	if err != nil {
		return 0, err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Sprintf("status %d", resp.StatusCode)
	}
	return resp.StatusCode, ""
}

// api calls the backend API with the API key; it must answer 200 JSON.
func (c *client) api(ctx context.Context, path string) (int, string) {
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.gw.site(), "/")+"/_auth/api/v1"+path, nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := (&http.Client{Transport: c.tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Errors []struct{ Code string } `json:"errors"`
		}
		json.Unmarshal(body, &e)
		if len(e.Errors) > 0 {
			return resp.StatusCode, fmt.Sprintf("status %d %s", resp.StatusCode, e.Errors[0].Code)
		}
		return resp.StatusCode, fmt.Sprintf("status %d", resp.StatusCode)
	}
	var tokens []struct {
		Token string `json:"token"`
	}
	switch {
	case !json.Valid(body):
		return resp.StatusCode, "200 without JSON"
	case strings.HasSuffix(path, "/oauth_access_tokens/corp"):
		if json.Unmarshal(body, &tokens) != nil || len(tokens) != 1 || tokens[0].Token == "" {
			return resp.StatusCode, "200 without the one token"
		}
		c.received(digest(tokens[0].Token), start)
	}
	return resp.StatusCode, ""
}

// digest names a token without keeping it.
func digest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// signOut confirms the sign-out page's form; the client is signed out after
// it whatever happened.
func (c *client) signOut(ctx context.Context) (int, string) {
	c.in = false
	site := strings.TrimSuffix(c.gw.site(), "/")
	resp, page, err := c.b.Do(ctx, http.MethodGet, site+"/_auth/sign-out", nil)
	if err != nil {
		return 0, err.Error()
	}
	m := csrfField.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		return resp.StatusCode, fmt.Sprintf("sign-out page: status %d, CSRF token found: %v", resp.StatusCode, m != nil)
	}
	resp, _, err = c.b.Do(ctx, http.MethodPost, site+"/_auth/sign-out", url.Values{"csrf_token": {m[1]}})
	if err != nil {
		return 0, err.Error()
	}
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return resp.StatusCode, fmt.Sprintf("sign-out: status %d, want a redirect", resp.StatusCode)
	}
	return resp.StatusCode, ""
}

// upstreamHandler answers every proxied request with upstreamMark and tells
// the client, in headers, whether the identity and the token arrived.
func upstreamHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(seenUserHead, r.Header.Get("X-Auth-User-Id"))
		if token := r.Header.Get("X-Auth-Token-Corp"); token != "" {
			w.Header().Set(seenTokenHead, digest(token))
		}
		if strings.Contains(r.Header.Get("Cookie"), "socialgate_") {
			http.Error(w, "the gateway's cookie reached the upstream", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, upstreamMark)
	})
}
