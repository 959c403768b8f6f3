package caddymodule_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A sibling host (or a plain-HTTP answer) tosses a live session cookie of
// its own for the sign-out path: the browser sends it there beside the
// victim's. Found open by a red-team run: the page then said "You are
// signed out" with no form while the victim's session lived on. Now it
// offers sign-out, and the form ends every live session presented, each
// under its own CSRF token, and expires the cookie where it was tossed.

// rawAt sends a request with the given Cookie header, without a jar.
func rawAt(t *testing.T, method, u, cookie string, form url.Values) (*http.Response, string) {
	t.Helper()
	var req *http.Request
	if form != nil {
		req, _ = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, _ = http.NewRequest(method, u, nil)
	}
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept", "text/html")
	c := &http.Client{Transport: testTransport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String()
}

// csrfTokens returns the csrf_token values of a page's forms.
func csrfTokens(page string) []string {
	var out []string
	for _, part := range strings.Split(page, `name="csrf_token" value="`)[1:] {
		out = append(out, html.UnescapeString(part[:strings.IndexByte(part, '"')]))
	}
	return out
}

func TestSignOut_ATossedSessionCookieNeverMakesThePageSaySignedOut(t *testing.T) {
	for _, tc := range []struct {
		name, global, cookie string
		tls                  bool
	}{
		{"http", "", plainSession, false},
		{"https with cookie_domain", "cookie_domain sso.test", "__Secure-socialgate_session", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, options{TLS: tc.tls, Global: tc.global})
			signIn := func(p url.Values) string {
				b := newBrowser(t)
				rec := &setCookieRecorder{rt: b.c.Transport}
				b.c.Transport = rec
				b.signInDev(e, "/", p)
				return rec.last(tc.cookie)
			}
			v, w := signIn(ada), signIn(person("Mallory", "mallory@example.com", true))
			if v == "" || w == "" || whoIs(t, e, tc.cookie+"="+v) == "" || whoIs(t, e, tc.cookie+"="+w) == "" {
				t.Fatal("setup: the two sessions are not live")
			}
			// On the sign-out path the browser sends the tossed cookie (the
			// narrower path) first.
			both := tc.cookie + "=" + w + "; " + tc.cookie + "=" + v
			signOut := e.Base + "/_auth/sign-out"
			resp, page := rawAt(t, http.MethodGet, signOut, both, nil)
			tokens := csrfTokens(page)
			if resp.StatusCode != http.StatusOK || strings.Contains(page, "You are signed out") || len(tokens) != 2 {
				t.Fatalf("the sign-out page with two live sessions: status %d, %d tokens, says signed out %v",
					resp.StatusCode, len(tokens), strings.Contains(page, "You are signed out"))
			}
			// A form without a valid token ends nothing.
			if resp, _ := rawAt(t, http.MethodPost, signOut, both, url.Values{"csrf_token": {"forged"}}); resp.StatusCode != http.StatusForbidden ||
				whoIs(t, e, tc.cookie+"="+v) == "" {
				t.Fatalf("a forged sign-out: status %d, the victim still signed in %v", resp.StatusCode, whoIs(t, e, tc.cookie+"="+v) != "")
			}
			// Each session ends under its own token: the first token alone
			// ends the tossed session only, and the page then offers the
			// victim's sign-out.
			if resp, _ := rawAt(t, http.MethodPost, signOut, both, url.Values{"csrf_token": tokens[:1]}); resp.StatusCode != http.StatusSeeOther ||
				whoIs(t, e, tc.cookie+"="+w) != "" || whoIs(t, e, tc.cookie+"="+v) == "" {
				t.Fatalf("signing out with the tossed session's token: status %d; want it ended, the victim's live", resp.StatusCode)
			}
			if _, page := rawAt(t, http.MethodGet, signOut, both, nil); len(csrfTokens(page)) != 1 || strings.Contains(page, "You are signed out") {
				t.Fatalf("the sign-out page with the victim's session left: %d tokens", len(csrfTokens(page)))
			}
			resp, _ = rawAt(t, http.MethodPost, signOut, both, url.Values{"csrf_token": tokens})
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("signing out: status %d", resp.StatusCode)
			}
			if whoIs(t, e, tc.cookie+"="+v) != "" || whoIs(t, e, tc.cookie+"="+w) != "" {
				t.Error("a session presented to the sign-out outlived it")
			}
			expired := map[string]bool{}
			for _, c := range resp.Cookies() {
				if c.Name == tc.cookie && c.MaxAge < 0 {
					expired[c.Path+" "+c.Domain] = true
				}
			}
			for _, want := range []string{"/ ", "/_auth/sign-out "} {
				if !expired[want] {
					t.Errorf("the sign-out did not expire %s at Path=%s (expired: %v)", tc.cookie, want, expired)
				}
			}
			if tc.global != "" && (!expired["/ sso.test"] || !expired["/_auth/sign-out sso.test"]) {
				t.Errorf("the sign-out did not expire %s for Domain=sso.test (expired: %v)", tc.cookie, expired)
			}
		})
	}
}

// A live session tossed for a path the sign-in pages never see locks no
// one out for good. With cookie_domain, a sibling host sets its own live
// session cookie for the parent domain and an app's path: the browser
// sends it there first, beside the person's, and two live sessions count
// as none. Found by the third attack pass (F3): the sign-in, on /_auth,
// never received that cookie to end it, so the person was sent to sign in
// again and again while the tossed session lived. Now the first protected
// request that carries both ends both, and the next sign-in holds.
func TestCookieTossing_ATossedLiveSessionLocksNoOneOutForGood(t *testing.T) {
	const name = "__Secure-socialgate_session"
	e := newEnv(t, options{TLS: true, Global: "cookie_domain sso.test"})
	signIn := func(p url.Values) string {
		b := newBrowser(t)
		rec := &setCookieRecorder{rt: b.c.Transport}
		b.c.Transport = rec
		b.signInDev(e, "/", p)
		return rec.last(name)
	}
	v, w := signIn(ada), signIn(person("Mallory", "mallory@example.com", true))
	victimID := whoIs(t, e, name+"="+v)
	if victimID == "" || whoIs(t, e, name+"="+w) == "" {
		t.Fatal("setup: the two sessions are not live")
	}
	if got := whoIs(t, e, name+"="+w+"; "+name+"="+v); got != "" {
		t.Fatalf("the app's path with the tossed cookie first was taken for %q", got)
	}
	if whoIs(t, e, name+"="+w) != "" || whoIs(t, e, name+"="+v) != "" {
		t.Error("a request that carried both left a session live")
	}
	again := signIn(ada)
	if got := whoIs(t, e, name+"="+w+"; "+name+"="+again); got != victimID {
		t.Errorf("after signing in again, with the tossed cookie still sent first: taken for %q, want the person %s", got, victimID)
	}
}
