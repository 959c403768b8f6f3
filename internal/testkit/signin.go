package testkit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

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
// browser then follows. A step that does not redirect where it should is a
// *StatusError; an end elsewhere than 200 at site is a *SignInEnd.
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
	action, back, err := SignInButton(page, provider)
	if err != nil {
		return err
	}
	resp, _, err = b.Do(ctx, http.MethodPost, strings.TrimSuffix(site, "/")+action, url.Values{"return_to": {back}})
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
	// Status is the last answer's status, At its URL.
	Status int
	At     string
	// Want is the site the sign-in should have ended on.
	Want string
}

// Error says where the sign-in ended and where it should have.
func (e *SignInEnd) Error() string {
	return fmt.Sprintf("after sign-in: status %d at %s, want 200 at %s", e.Status, e.At, e.Want)
}

// SessionHeader is the Cookie header that carries the browser's session at
// site; an error when it has none.
func (b *Browser) SessionHeader(site string) (string, error) {
	if v := b.Cookie(site, SessionCookie); v != "" {
		return SessionCookie + "=" + v, nil
	}
	return "", errors.New("no session cookie after sign-in")
}
