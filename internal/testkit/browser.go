package testkit

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

// BrowserTimeout is the timeout of a Browser's requests unless its caller
// sets another on Client. It outlasts the gateway's longest wait on a
// provider (its provider client's 10 s timeout, and on PostgreSQL up to
// 10 s more for an account's lock), so that a provider that hangs shows as
// the gateway's answer rather than as a browser that gave up first.
const BrowserTimeout = 30 * time.Second

// Browser is a cookie-keeping client that does not follow redirects by
// itself, so that its caller sees every hop.
type Browser struct {
	// Client has the browser's cookie jar; its CheckRedirect returns the
	// redirect itself instead of following it.
	Client *http.Client
}

// NewBrowser is a browser with an empty cookie jar over rt (nil means
// http.DefaultTransport) and a BrowserTimeout.
func NewBrowser(rt http.RoundTripper) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{Client: &http.Client{Transport: rt, Jar: jar, Timeout: BrowserTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// NewRequest is a request as a browser sends it: it asks for HTML, and when
// form is not nil it carries form as its url-encoded body.
func NewRequest(ctx context.Context, method, target string, form url.Values) (*http.Request, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req, nil
}

// Send sends req and returns the response with its whole body.
func (b *Browser) Send(req *http.Request) (*http.Response, string, error) {
	resp, err := b.Client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	return resp, string(page), err
}

// Do sends one request as a browser would (a form when form is not nil,
// see NewRequest) and returns the response with its whole body.
func (b *Browser) Do(ctx context.Context, method, target string, form url.Values) (*http.Response, string, error) {
	req, err := NewRequest(ctx, method, target, form)
	if err != nil {
		return nil, "", err
	}
	return b.Send(req)
}

// Cookie is the value of the browser's cookie name for rawURL; empty when
// it has none.
func (b *Browser) Cookie(rawURL, name string) string {
	u, _ := url.Parse(rawURL)
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// CookieHeader is the Cookie header the browser would send to rawURL: all
// its cookies for it, or empty.
func (b *Browser) CookieHeader(rawURL string) string {
	u, _ := url.Parse(rawURL)
	var parts []string
	for _, c := range b.Client.Jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// Next is the target of a redirect response, resolved against its
// request's URL; a *StatusError for any other response.
func Next(resp *http.Response) (string, error) {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return "", &StatusError{Method: resp.Request.Method, Path: resp.Request.URL.Path, Status: resp.StatusCode}
	}
	loc, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("redirect without Location: %w", err)
	}
	return loc.String(), nil
}

// StatusError is a step of a flow that answered an unexpected status.
type StatusError struct {
	// Method and Path are the step's request.
	Method, Path string
	// Status is what it answered.
	Status int
}

// Error says the step and its status.
func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d, want a redirect", e.Method, e.Path, e.Status)
}

var (
	startForm = regexp.MustCompile(`<form method="post" action="([^"]*/oauth/([^/"]+)/start)"`)
	returnTo  = regexp.MustCompile(`name="return_to" value="([^"]*)"`)
)

// SignInButton reads the gateway's sign-in page: the action of the form of
// provider's button (a path, like /_auth/oauth/dev/start) and the
// return_to it posts, both unescaped. It is an error when the page has no
// button for provider.
func SignInButton(page, provider string) (action, back string, err error) {
	for _, m := range startForm.FindAllStringSubmatch(page, -1) {
		if m[2] == provider {
			action = m[1]
		}
	}
	r := returnTo.FindStringSubmatch(page)
	if action == "" || r == nil {
		return "", "", errors.New("the sign-in page has no " + provider + " button")
	}
	return html.UnescapeString(action), html.UnescapeString(r[1]), nil
}
