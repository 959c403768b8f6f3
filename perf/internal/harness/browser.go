package harness

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
	"strings"
	"time"
)

// SessionCookie is the name of the gateway's session cookie.
const SessionCookie = "socialgate_session"

var (
	startForm = regexp.MustCompile(`<form method="post" action="([^"]*/oauth/([^/"]+)/start)"`)
	returnTo  = regexp.MustCompile(`name="return_to" value="([^"]*)"`)
)

// Browser is a cookie-keeping client that sees every redirect.
type Browser struct {
	c   *http.Client
	jar http.CookieJar
}

// browserTimeout outlasts the gateway's longest wait on a provider (its
// provider client's 10 s timeout, and on PostgreSQL up to 10 s more for an
// account's lock), so that a provider that hangs shows as the gateway's
// answer rather than as a browser that gave up first.
const browserTimeout = 30 * time.Second

// NewBrowser is a browser with an empty cookie jar over t.
func NewBrowser(t http.RoundTripper) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{jar: jar, c: &http.Client{Transport: t, Jar: jar, Timeout: browserTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Do sends one request as a browser would (a form when form is not nil)
// and returns the response with its whole body.
func (b *Browser) Do(ctx context.Context, method, target string, form url.Values) (*http.Response, string, error) {
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

// Next is the target of a redirect response; an error for any other.
func Next(resp *http.Response) (string, error) {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return "", &StatusError{Method: resp.Request.Method, Path: resp.Request.URL.Path, Status: resp.StatusCode}
	}
	loc, err := resp.Location()
	if err != nil {
		return "", err
	}
	return loc.String(), nil
}

// StatusError is a step of a flow that answered an unexpected status.
type StatusError struct {
	Method, Path string
	Status       int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d, want a redirect", e.Method, e.Path, e.Status)
}

// Ada is the dev provider's preset test user that most sign-ins use.
var Ada = url.Values{"user": {"ada"}}

// SignInDev is the browser's whole sign-in through the dev provider at
// devURL as who (a preset user, or name, email and email_verified as typed
// into the dev provider's form), starting at a protected page of site and
// ending back on it (200 from the upstream): 7 requests, 5 to the gateway
// and 2 to the dev provider.
func (b *Browser) SignInDev(ctx context.Context, site, devURL string, who url.Values) error {
	return b.SignIn(ctx, site, "dev", devURL+"/authorize", func(authorize string) (*http.Response, error) {
		if _, _, err := b.Do(ctx, http.MethodGet, authorize, nil); err != nil {
			return nil, err
		}
		u, _ := url.Parse(authorize)
		form := u.Query()
		for k, v := range who {
			form[k] = v
		}
		resp, _, err := b.Do(ctx, http.MethodPost, devURL+"/authorize", form)
		return resp, err
	})
}

// SignIn is the browser's whole sign-in at provider (the name of its
// button on the sign-in page), starting at a protected page of site and
// ending back on it (200 from the upstream). The gateway must send the
// browser to a URL starting with authorizeURL; atProvider plays the person
// there and returns the provider's redirect back to the gateway, which the
// browser then follows.
func (b *Browser) SignIn(ctx context.Context, site, provider, authorizeURL string, atProvider func(authorize string) (*http.Response, error)) error {
	resp, _, err := b.Do(ctx, http.MethodGet, site, nil)
	if err != nil {
		return err
	}
	signInPage, err := Next(resp)
	if err != nil {
		return err
	}
	_, page, err := b.Do(ctx, http.MethodGet, signInPage, nil)
	if err != nil {
		return err
	}
	var action string
	for _, m := range startForm.FindAllStringSubmatch(page, -1) {
		if m[2] == provider {
			action = m[1]
		}
	}
	back := returnTo.FindStringSubmatch(page)
	if action == "" || back == nil {
		return fmt.Errorf("the sign-in page has no %s button", provider)
	}
	resp, _, err = b.Do(ctx, http.MethodPost, strings.TrimSuffix(site, "/")+html.UnescapeString(action),
		url.Values{"return_to": {html.UnescapeString(back[1])}})
	if err != nil {
		return err
	}
	authorize, err := Next(resp)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(authorize, authorizeURL+"?") {
		return fmt.Errorf("start sent the browser to %s, want %s", authorize, authorizeURL)
	}
	resp, err = atProvider(authorize)
	for i := 0; err == nil && resp.StatusCode >= 300 && resp.StatusCode <= 399; i++ {
		if i == 5 {
			return errors.New("too many redirects after the provider")
		}
		var loc string
		if loc, err = Next(resp); err == nil {
			resp, _, err = b.Do(ctx, http.MethodGet, loc, nil)
		}
	}
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != site {
		return &SignInEnd{Status: resp.StatusCode, At: resp.Request.URL.String(), Want: site}
	}
	return nil
}

// SignInEnd is a sign-in that did not end with 200 back at the site.
type SignInEnd struct {
	Status   int
	At, Want string
}

func (e *SignInEnd) Error() string {
	return fmt.Sprintf("after sign-in: status %d at %s, want 200 at %s", e.Status, e.At, e.Want)
}

// CookieHeader is the Cookie header that carries the browser's session.
func (b *Browser) CookieHeader(site string) (string, error) {
	u, _ := url.Parse(site)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == SessionCookie {
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", errors.New("no session cookie after sign-in")
}
