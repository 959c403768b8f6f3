package caddymodule_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// Cookie tossing (docs/security.md, "Duplicates fail safe"): a sibling subdomain, or anyone who answers
// one plain-HTTP request for the host, can set cookies the browser then
// sends to the gateway beside its own. Over HTTPS only __Host- cookies
// count; duplicates fail safe and lock no one out.

const (
	plainSession = "socialgate_session"
	hostSession  = "__Host-socialgate_session"
	plainFlow    = "socialgate_flow"
	hostFlow     = "__Host-socialgate_flow"
)

// tossEnv is a gateway with the dev provider and the test OP as "corp",
// over HTTPS when tls is set.
func tossEnv(t *testing.T, tls bool) (*env, *testop.Server) {
	t.Helper()
	op := startOP(t, testop.Options{})
	e := newEnv(t, options{TLS: tls, Global: fmt.Sprintf(`provider oidc corp {
			issuer %s
			client_id test-client
			client_secret test-secret
		}`, op.URL())})
	return e, op
}

// whoIs answers who the gateway takes a raw Cookie header for: the user id
// the upstream sees, or "" when the request did not get through.
func whoIs(t *testing.T, e *env, cookie string) string {
	t.Helper()
	c := &http.Client{Transport: testTransport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, e.Base+"/whoami", nil)
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		t.Errorf("Cookie %.80q: status %d", cookie, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return e.Upstream.Last(t).Get("X-Auth-User-Id")
}

// signedInPair signs a victim and an attacker in and returns their browsers,
// session cookie values and user ids.
func signedInPair(t *testing.T, e *env, name string) (victim, attacker *browser, v, w, victimID, attackerID string) {
	t.Helper()
	victim, attacker = newBrowser(t), newBrowser(t)
	victim.signInDev(e, "/", ada)
	attacker.signInDev(e, "/", person("Mallory", "mallory@example.com", true))
	v, w = victim.cookie(e.Base, name), attacker.cookie(e.Base, name)
	if v == "" || w == "" {
		t.Fatalf("after sign-in the browsers hold no %s cookie", name)
	}
	victimID, attackerID = whoIs(t, e, name+"="+v), whoIs(t, e, name+"="+w)
	if victimID == "" || attackerID == "" || victimID == attackerID {
		t.Fatalf("setup: victim %q, attacker %q", victimID, attackerID)
	}
	return
}

func TestCookieTossing_OverHTTPSOnlyTheHostCookieCounts(t *testing.T) {
	e, _ := tossEnv(t, true)
	victim, _, v, w, victimID, attackerID := signedInPair(t, e, hostSession)
	if victim.cookie(e.Base, plainSession) != "" {
		t.Error("over HTTPS the gateway set an unprefixed session cookie")
	}
	for _, tc := range []struct {
		cookie, want string
	}{
		{plainSession + "=" + w, ""}, // tossed alone: a sign-in as the attacker
		{plainSession + "=" + w + "; " + hostSession + "=" + v, victimID},
		{hostSession + "=" + v + "; " + plainSession + "=" + w, victimID},
		{plainSession + "=" + v, ""},
		{hostSession + "=junk; " + hostSession + "=" + v, victimID}, // garbage beside: no lock-out
	} {
		if got := whoIs(t, e, tc.cookie); got != tc.want {
			who := map[string]string{victimID: "the victim", attackerID: "the attacker", "": "no one"}[got]
			t.Errorf("Cookie %.60q… was taken for %s", tc.cookie, who)
		}
	}
	// A browser holding the victim's cookie, with the attacker's tossed for
	// /app as a sibling subdomain or a plain-HTTP answer can: still the victim.
	victim.c.Jar.SetCookies(mustURL(e.Base+"/app/"), []*http.Cookie{{Name: plainSession, Value: w, Path: "/app"}})
	resp, _ := victim.get(e.Base + "/app/settings")
	if got := e.Upstream.Last(t).Get("X-Auth-User-Id"); resp.StatusCode != http.StatusOK || got != victimID {
		t.Errorf("with a tossed cookie: status %d as user %q, want the victim %s", resp.StatusCode, got, victimID)
	}
	// Last, since it ends both: two live sessions are ambiguous, no one.
	if got := whoIs(t, e, hostSession+"="+v+"; "+hostSession+"="+w); got != "" {
		t.Errorf("two live sessions' cookies were taken for %q", got)
	}
}

func TestCookieTossing_AGarbageDuplicateLocksNoOneOut(t *testing.T) {
	e, _ := tossEnv(t, false)
	victim, quitter := newBrowser(t), newBrowser(t)
	victim.signInDev(e, "/", ada)
	quitter.signInDev(e, "/", person("Quinn", "quinn@example.com", true))
	v, dead := victim.cookie(e.Base, plainSession), quitter.cookie(e.Base, plainSession)
	_, page := quitter.get(e.Base + "/_auth/sign-out")
	quitter.post(e.Base+"/_auth/sign-out", url.Values{"csrf_token": {html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))}})
	victimID := whoIs(t, e, plainSession+"="+v)
	tampered := []byte(v)
	tampered[len(tampered)/2] ^= 1
	for _, planted := range []string{"junk", "", string(tampered), dead, strings.Repeat("A", 60)} {
		for _, cookie := range []string{plainSession + "=" + planted + "; " + plainSession + "=" + v, plainSession + "=" + v + "; " + plainSession + "=" + planted} {
			if got := whoIs(t, e, cookie); got != victimID {
				t.Errorf("Cookie %.70q…: taken for %q, want the victim", cookie, got)
			}
		}
	}
	// In a browser: a garbage cookie tossed for a path does not sign the
	// victim out there.
	victim.c.Jar.SetCookies(mustURL(e.Base+"/app/"), []*http.Cookie{{Name: plainSession, Value: "garbage", Path: "/app"}})
	if resp, _ := victim.get(e.Base + "/app/x"); resp.StatusCode != http.StatusOK {
		t.Errorf("a tossed garbage cookie locked the victim out: status %d", resp.StatusCode)
	}
}

// corpCallback has b start a sign-in at corp and the OP answer it: the
// callback URL, not yet visited.
func corpCallback(t *testing.T, e *env, b *browser) string {
	t.Helper()
	resp, _ := b.post(e.Base+"/_auth/oauth/corp/start", url.Values{"return_to": {"/inbox"}})
	resp, _ = b.get(location(t, resp))
	return location(t, resp)
}

func TestCookieTossing_APlantedFlowCookieIsNoLoginCSRF(t *testing.T) {
	for _, tls := range []bool{true, false} {
		t.Run(fmt.Sprintf("https=%v", tls), func(t *testing.T) {
			e, op := tossEnv(t, tls)
			flowName := plainFlow
			if tls {
				flowName = hostFlow
			}
			// The attacker starts a sign-in of their own and stops at the
			// callback, whose URL they will make the victim open.
			attacker := newBrowser(t)
			csrfURL := corpCallback(t, e, attacker)
			planted := attacker.cookie(e.Base, flowName)
			if planted == "" {
				t.Fatalf("the start set no %s cookie", flowName)
			}
			// The victim started a sign-in too, then meets the attacker's
			// binding, tossed for the callback path (the plain name: what
			// another host can set).
			victim := newBrowser(t)
			own := corpCallback(t, e, victim)
			victim.c.Jar.SetCookies(mustURL(e.Base+"/_auth/oauth/corp/"), []*http.Cookie{{Name: plainFlow, Value: planted, Path: "/_auth/oauth/corp"}})
			tokens := op.Calls("token")
			resp, body := victim.get(csrfURL)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid or has expired") {
				t.Errorf("the attacker's callback in the victim's browser: status %d", resp.StatusCode)
			}
			if op.Calls("token") != tokens || victim.cookie(e.Base, hostSession)+victim.cookie(e.Base, plainSession) != "" {
				t.Fatal("login CSRF: the attacker's flow signed the victim in")
			}
			if !tls {
				return // over plain HTTP the planted binding is ambiguous with the victim's for its TTL
			}
			// Over HTTPS the planted cookie is not even read: the victim's
			// own sign-in still finishes.
			resp, _ = victim.follow(victim.get(own))
			if resp.StatusCode != http.StatusOK || victim.cookie(e.Base, hostSession) == "" {
				t.Errorf("the victim's own sign-in failed beside a planted flow cookie: status %d", resp.StatusCode)
			}
		})
	}
}

func TestSignIn_ASecondFlowRenewsTheBindingCookie(t *testing.T) {
	// With a 4 s flow timeout, a sign-in started 2.5 s into another one
	// must have its whole 4 s, not the 1.5 s left of the first flow's
	// cookie: it comes back 1.6 s after its start (the first flow's
	// cookie is then past its end), with 2.4 s to spare on a loaded machine.
	e := newEnv(t, options{Global: "flow_timeout 4s"})
	b := newBrowser(t)
	location(t, b.startSignIn(e, "/", "dev")) // abandoned in another tab
	time.Sleep(2500 * time.Millisecond)
	authURL := location(t, b.startSignIn(e, "/inbox", "dev"))
	time.Sleep(1600 * time.Millisecond)
	u, _ := url.Parse(authURL)
	form := u.Query()
	form.Set("user", "ada")
	resp, _ := b.follow(b.post(e.DevURL+"/authorize", form))
	if resp.StatusCode != http.StatusOK || e.Upstream.Last(t).Get("X-Auth-User-Id") == "" {
		t.Fatalf("a sign-in finished 1.6 s after its start (4.1 s after an earlier one) failed: status %d", resp.StatusCode)
	}
}

// Found by the second red team: a form posted from another site to a start
// endpoint comes without the SameSite=Lax flow cookie, and the fresh
// binding in the answer replaced the browser's, so a sign-in the person had
// under way in another tab failed (invalid_state). Such a start now sets no
// cookie: it sends the browser back to the same start with a GET, a
// top-level navigation that carries the cookie and keeps the binding.
func TestSignIn_AStartPostedFromAnotherSiteKeepsTheBinding(t *testing.T) {
	e := newEnv(t, options{})
	victim := newBrowser(t)
	authURL := location(t, victim.startSignIn(e, "/inbox", "dev")) // at the provider, in one tab
	for _, tc := range []struct {
		header http.Header
		form   url.Values
	}{
		{http.Header{"Origin": {"https://evil.example"}}, url.Values{"return_to": {"/"}}},
		{http.Header{"Sec-Fetch-Site": {"cross-site"}}, url.Values{"return_to": {"/"}, "redirect_url": {"myapp://cb"}, "code_challenge": {strings.Repeat("c", 43)}}},
	} {
		header, form := tc.header, tc.form
		req, _ := http.NewRequest(http.MethodPost, e.Base+"/_auth/oauth/dev/start", strings.NewReader(form.Encode()))
		req.Header = header
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		c := &http.Client{Transport: testTransport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		victim.c.Jar.SetCookies(mustURL(e.Base+"/"), resp.Cookies()) // the browser applies the answer's cookies
		if len(resp.Cookies()) != 0 || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/_auth/oauth/dev/start?"+form.Encode() {
			t.Errorf("a start posted from another site (%v): %d to %q, cookies %v; want 303 to the same start as a GET, no cookie",
				header, resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
		}
	}
	resp2, body, _ := victim.atDevProvider(authURL, ada)
	final, _ := victim.follow(resp2, body)
	if final.StatusCode != http.StatusOK {
		t.Errorf("the victim's own sign-in failed after a cross-site POST to start: status %d", final.StatusCode)
	}
}

// Found by the second red team: four planted session cookies that verify but whose sessions
// have ended hide the victim's live one. docs/security.md promises that
// "session cookies that verify but whose session has ended are ignored" and
// that planted values, "however many come before the gateway's own", never
// hide it; session.maxSessionCookies stopped the scan after four verified ids,
// dead or alive, so the fifth (the victim's) was never looked at. Plain HTTP
// only (over HTTPS nobody else can set the __Host- cookie).
func TestCookieTossing_PlantedCookiesOfEndedSessionsHideNoOne(t *testing.T) {
	e, _ := tossEnv(t, false)
	victim := newBrowser(t)
	victim.signInDev(e, "/", ada)
	v := victim.cookie(e.Base, plainSession)
	victimID := whoIs(t, e, plainSession+"="+v)
	if victimID == "" {
		t.Fatal("the victim is not signed in")
	}
	// The attacker collects four cookies of sessions of their own and signs
	// each out: four values that verify, of sessions that have ended.
	var dead []string
	for i := 0; i < 4; i++ {
		a := newBrowser(t)
		a.signInDev(e, "/", person("Mallory", "mallory@example.com", true))
		dead = append(dead, a.cookie(e.Base, plainSession))
		_, page := a.get(e.Base + "/_auth/sign-out")
		a.post(e.Base+"/_auth/sign-out", url.Values{"csrf_token": {html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))}})
		if whoIs(t, e, plainSession+"="+dead[i]) != "" {
			t.Fatal("an attacker cookie is still live after its sign-out")
		}
	}
	// One dead cookie in front of the victim's is ignored (as
	// TestCookieTossing_AGarbageDuplicateLocksNoOneOut checks)…
	if got := whoIs(t, e, plainSession+"="+dead[0]+"; "+plainSession+"="+v); got != victimID {
		t.Fatalf("one dead cookie: taken for %q", got)
	}
	// …four are not.
	cookie := plainSession + "=" + strings.Join(dead, "; "+plainSession+"=") + "; " + plainSession + "=" + v
	if got := whoIs(t, e, cookie); got != victimID {
		t.Errorf("four dead planted cookies before the victim's: taken for %q, want the victim %s", got, victimID)
	}
	// In a browser: tossed for nested paths under /app (a sibling subdomain
	// or a plain-HTTP answer can), they come first and lock the victim out
	// of /app; signing in again does not help.
	for i, d := range dead {
		p := "/app" + strings.Repeat("/x", i)
		victim.c.Jar.SetCookies(mustURL(e.Base+p+"/"), []*http.Cookie{{Name: plainSession, Value: d, Path: p}})
	}
	resp, _ := victim.get(e.Base + "/app/x/x/x/page")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("dead cookies tossed for /app lock the signed-in victim out: status %d (Location %q)", resp.StatusCode, resp.Header.Get("Location"))
	}
}
