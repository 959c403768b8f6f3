package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

const sessionCookie = "socialgate_session"

var (
	startForm = regexp.MustCompile(`<form method="post" action="([^"]*/oauth/dev/start)"`)
	returnTo  = regexp.MustCompile(`name="return_to" value="([^"]*)"`)
)

// browser is a cookie-keeping client that sees every redirect.
type browser struct {
	c   *http.Client
	jar http.CookieJar
}

func newBrowser(t http.RoundTripper) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{jar: jar, c: &http.Client{Transport: t, Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(ctx context.Context, method, target string, form url.Values) (*http.Response, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	return resp, string(page), err
}

func next(resp *http.Response) (string, error) {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return "", fmt.Errorf("%s %s: status %d, want a redirect", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode)
	}
	loc, err := resp.Location()
	if err != nil {
		return "", err
	}
	return loc.String(), nil
}

// ada is the dev provider's preset test user that most rows sign in as.
var ada = url.Values{"user": {"ada"}}

// signIn is the browser's whole sign-in through the dev provider as who (a
// preset user, or name, email and email_verified as typed into the dev
// provider's form), starting at a protected page of site and ending back on
// it (200 from the upstream): 7 requests, 5 to the gateway and 2 to the dev
// provider.
func (b *browser) signIn(ctx context.Context, site, devURL string, who url.Values) error {
	resp, _, err := b.do(ctx, http.MethodGet, site, nil)
	if err != nil {
		return err
	}
	signInPage, err := next(resp)
	if err != nil {
		return err
	}
	_, page, err := b.do(ctx, http.MethodGet, signInPage, nil)
	if err != nil {
		return err
	}
	action, back := startForm.FindStringSubmatch(page), returnTo.FindStringSubmatch(page)
	if action == nil || back == nil {
		return errors.New("the sign-in page has no dev provider button")
	}
	resp, _, err = b.do(ctx, http.MethodPost, strings.TrimSuffix(site, "/")+html.UnescapeString(action[1]),
		url.Values{"return_to": {html.UnescapeString(back[1])}})
	if err != nil {
		return err
	}
	authorize, err := next(resp)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(authorize, devURL+"/authorize?") {
		return fmt.Errorf("start sent the browser to %s, want the dev provider", authorize)
	}
	if _, _, err := b.do(ctx, http.MethodGet, authorize, nil); err != nil {
		return err
	}
	u, _ := url.Parse(authorize)
	form := u.Query()
	for k, v := range who {
		form[k] = v
	}
	resp, _, err = b.do(ctx, http.MethodPost, devURL+"/authorize", form)
	for i := 0; err == nil && resp.StatusCode >= 300 && resp.StatusCode <= 399; i++ {
		if i == 5 {
			return errors.New("too many redirects after the dev provider")
		}
		var loc string
		if loc, err = next(resp); err == nil {
			resp, _, err = b.do(ctx, http.MethodGet, loc, nil)
		}
	}
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != site {
		return fmt.Errorf("after sign-in: status %d at %s, want 200 at %s", resp.StatusCode, resp.Request.URL, site)
	}
	return nil
}

// cookieHeader is the Cookie header that carries the browser's session.
func (b *browser) cookieHeader(site string) (string, error) {
	u, _ := url.Parse(site)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == sessionCookie {
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", errors.New("no session cookie after sign-in")
}

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
				err := newBrowser(transport).signIn(ctx, site, devURL, ada)
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
