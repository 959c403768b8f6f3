package caddymodule_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A native app signs out with its session token: POST /_auth/sign-out with
// Authorization: Bearer ends the session that token names, whatever the
// request's cookies, and answers JSON (the ended session) rather than a
// redirect meant for a browser. It needs no CSRF token (nothing sends an
// Authorization header on its own) but accepts one, as a client that read
// the sign-out page sends it. Found open by a red-team run: the sign-out
// "succeeded" (303, logged, counted) and the token kept working.
func TestSignOut_ASessionTokenEndsItsSession(t *testing.T) {
	e, _ := newAdvEnv(t, "")
	reaches := func(token string) int {
		t.Helper()
		resp, _ := advDo(t, http.MethodGet, e.Base+"/p", http.Header{"Authorization": {"Bearer " + token}, "Accept": {"application/json"}}, nil)
		return resp.StatusCode
	}
	signOut := func(token string, form url.Values) (*http.Response, map[string]any) {
		t.Helper()
		resp, body := advDo(t, http.MethodPost, e.Base+"/_auth/sign-out", http.Header{
			"Authorization": {"Bearer " + token}, "Content-Type": {"application/x-www-form-urlencoded"},
		}, strings.NewReader(form.Encode()))
		var out map[string]any
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("sign-out answered %d, not JSON: %.200s", resp.StatusCode, body)
		}
		return resp, out
	}

	for _, how := range []string{"as a browser would (the sign-out page's CSRF token)", "without a CSRF token"} {
		t.Run(how, func(t *testing.T) {
			token, sessionID := signInNative(t, e)
			other, _ := signInNative(t, e)
			if reaches(token) != http.StatusOK {
				t.Fatal("the fresh session token does not reach the app")
			}
			form := url.Values{}
			if strings.HasPrefix(how, "as a browser") {
				resp, page := advDo(t, http.MethodGet, e.Base+"/_auth/sign-out", http.Header{"Authorization": {"Bearer " + token}}, nil)
				csrf := html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))
				if resp.StatusCode != http.StatusOK || csrf == "" {
					t.Fatalf("the sign-out page for the token: status %d, csrf %q", resp.StatusCode, csrf)
				}
				form.Set("csrf_token", csrf)
			}
			resp, out := signOut(token, form)
			if resp.StatusCode != http.StatusOK || out["id"] != sessionID || out["status"] != "ended" {
				t.Fatalf("sign-out: status %d %v, want 200 and the session %s ended", resp.StatusCode, out, sessionID)
			}
			if got := reaches(token); got != http.StatusUnauthorized {
				t.Errorf("after a successful sign-out the session token still reaches the app: status %d, want 401", got)
			}
			if reaches(other) != http.StatusOK {
				t.Error("another session of the app ended")
			}
			// Signing out again with the dead token: 401, as everywhere.
			if resp, out := signOut(token, nil); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("a sign-out with a dead token: status %d %v, want 401", resp.StatusCode, out)
			}
		})
	}

	// A browser's cookie still needs the CSRF token: the sign-out of a
	// cookie can be forged by another site, a token's cannot.
	t.Run("a cookie without a CSRF token", func(t *testing.T) {
		b := newBrowser(t)
		signInCorp(b, e)
		if resp, _ := b.post(e.Base+"/_auth/sign-out", url.Values{}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a cookie's sign-out without a CSRF token: status %d, want 403", resp.StatusCode)
		}
		if !b.signedIn(e) {
			t.Error("the refused sign-out ended the session")
		}
	})
}

// Found by the second red team (logout CSRF): a cross-site page that
// auto-submits <form method=post action=https://app/_auth/sign-out> makes a
// top-level navigation in which the browser does not send the SameSite=Lax
// session cookie; the gateway saw no session, skipped the CSRF check and
// answered with a Set-Cookie expiring the session cookie, which browsers
// apply on a top-level navigation: any site signed the victim out. Without
// a live session a sign-out now needs the CSRF token of the session the
// cookie names; else 403, and no cookie is touched.
func TestSignOut_ACrossSiteFormWithoutTheCookieClearsNothing(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) { crossSiteSignOut(t, tls) })
	}
}

func crossSiteSignOut(t *testing.T, tls bool) {
	e := newEnv(t, options{TLS: tls})
	victim := newBrowser(t)
	victim.signInDev(e, "/", ada)
	if resp, _ := victim.get(e.Base + "/inbox"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the victim is not signed in: %d", resp.StatusCode)
	}
	// The cross-site POST: no cookie (Lax), no csrf_token, Origin of the
	// attacker's site.
	req, _ := http.NewRequest(http.MethodPost, e.Base+"/_auth/sign-out", strings.NewReader(url.Values{"return_to": {"/"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Accept", "text/html")
	c := &http.Client{Transport: testTransport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The browser applies the answer's cookies, as it does on any top-level
	// navigation.
	victim.c.Jar.SetCookies(mustURL(e.Base+"/_auth/sign-out"), resp.Cookies())
	if resp.StatusCode != http.StatusForbidden || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("a sign-out POST without csrf_token (and without the Lax cookie): %d, Set-Cookie %q; want 403 and none, as with a cookie",
			resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if r2, _ := victim.get(e.Base + "/inbox"); r2.StatusCode != http.StatusOK {
		t.Errorf("after visiting the attacker's page the victim is signed out: GET /inbox → %d %s", r2.StatusCode, r2.Header.Get("Location"))
	}
}

// The sign-out form of a session that has ended since it was shown (it
// expired, or was revoked) still clears its cookie: its CSRF token is that
// of the session the cookie names.
func TestSignOut_TheFormOfAnEndedSessionStillClearsItsCookie(t *testing.T) {
	e, _ := newAdvEnv(t, "")
	b := newBrowser(t)
	signInCorp(b, e)
	_, page := b.get(e.Base + "/_auth/sign-out")
	csrf := html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))
	cookie := b.cookie(e.Base, "socialgate_session")
	// The session ends elsewhere (another browser's sign-out with a copy).
	other := newBrowser(t)
	other.c.Jar.SetCookies(mustURL(e.Base+"/"), []*http.Cookie{{Name: "socialgate_session", Value: cookie, Path: "/"}})
	if resp, _ := other.post(e.Base+"/_auth/sign-out", url.Values{"csrf_token": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	resp, _ := b.post(e.Base+"/_auth/sign-out", url.Values{"csrf_token": {csrf}})
	if resp.StatusCode != http.StatusSeeOther || b.cookie(e.Base, "socialgate_session") != "" {
		t.Errorf("the form of an ended session: %d, cookie left %v; want 303 and the cookie cleared", resp.StatusCode, b.cookie(e.Base, "socialgate_session") != "")
	}
	// A token of another session clears nothing.
	signInCorp(b, e)
	if resp, _ := b.post(e.Base+"/_auth/sign-out", url.Values{"csrf_token": {csrf}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a CSRF token of another (ended) session: %d, want 403", resp.StatusCode)
	}
}
