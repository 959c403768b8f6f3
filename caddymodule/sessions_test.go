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

func TestSessionIdleTimeout_EndsOnlyUnusedSessions(t *testing.T) {
	e := newEnv(t, options{Global: "session_idle_timeout 3s\n\t\tsession_cache 1s\n\t\tapi_key " + apiKey})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	userID := e.Upstream.Last(t).Get("X-Auth-User-Id")
	sessions := func() []any {
		status, out := apiGet(t, http.DefaultClient, e.Base+"/_auth/api/v1/sessions?paginated=true&user_id="+userID, http.Header{"Authorization": {"Bearer " + apiKey}})
		if status != http.StatusOK {
			t.Fatalf("listing sessions: %d %v", status, out)
		}
		list, ok := out["data"].([]any)
		if !ok {
			t.Fatalf("listing sessions: %v", out)
		}
		return list
	}
	// Used every half second for twice the idle timeout: alive.
	for i := range 12 {
		time.Sleep(500 * time.Millisecond)
		if status, _ := apiGet(t, b.c, e.Base+"/busy", nil); status != http.StatusOK {
			t.Fatalf("a session in use ended after %v (idle timeout 3s): status %d", time.Duration(i+1)*500*time.Millisecond, status)
		}
	}
	// The activity is written in batches, off the request path: wait for
	// the batch that holds the last use (at least 4 s after the sign-in).
	activeFor := func(list []any) float64 {
		s := list[0].(map[string]any)
		return s["last_active_at"].(float64) - s["created_at"].(float64)
	}
	waitFor(t, "the last use to be recorded", func() bool {
		list := sessions()
		return len(list) != 1 || activeFor(list) >= 4000
	})
	if list := sessions(); len(list) != 1 {
		t.Fatalf("the API lists %d sessions, want the one in use", len(list))
	} else if s := list[0].(map[string]any); activeFor(list) < 4000 || s["expire_at"].(float64)-s["last_active_at"].(float64) != 3000 {
		t.Errorf("the API shows the session created %v, last active %v, expiring %v: want its activity and its idle expiry",
			s["created_at"], s["last_active_at"], s["expire_at"])
	}
	// Unused for longer than the timeout: dead, and its listing gone.
	time.Sleep(3500 * time.Millisecond)
	if status, _ := apiGet(t, b.c, e.Base+"/after-idle", nil); status != http.StatusUnauthorized {
		t.Errorf("a session unused for longer than the idle timeout: status %d, want 401", status)
	}
	if list := sessions(); len(list) != 0 {
		t.Errorf("the API still lists %d sessions unused for longer than the idle timeout", len(list))
	}
}

// accountForm posts an account action's form with the session's CSRF
// token (read from the sign-out page, which always has a form).
func accountForm(t *testing.T, e *env, b *browser, action string, extra url.Values) *http.Response {
	t.Helper()
	_, page := b.get(e.Base + "/_auth/sign-out")
	form := url.Values{"csrf_token": {html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))}}
	for k, v := range extra {
		form[k] = v
	}
	resp, _ := b.post(e.Base+"/_auth/account/"+action, form)
	return resp
}

// devReauthenticate answers the dev provider's sign-in page of a
// re-authentication as who, and returns the gateway's final answer.
func devReauthenticate(t *testing.T, e *env, b *browser, authURL string, who url.Values) (*http.Response, string) {
	t.Helper()
	u, _ := url.Parse(authURL)
	q := u.Query()
	if !strings.HasPrefix(authURL, e.DevURL+"/authorize?") || q.Get("prompt") != "login" || q.Get("max_age") != "0" {
		t.Fatalf("a stale sensitive action sent the browser to %s, want the dev provider with prompt=login and max_age=0", authURL)
	}
	for k, v := range who {
		q[k] = v
	}
	return b.follow(b.post(e.DevURL+"/authorize", q))
}

func TestAccountActions_NeedARecentSignIn(t *testing.T) {
	e := newEnv(t, options{Global: "reauthenticate_after 2s"})
	b, other := newBrowser(t), newBrowser(t)
	b.signInDev(e, "/", ada)
	other.signInDev(e, "/", ada) // the same person on another device
	stillIn := func() bool { status, _ := apiGet(t, other.c, e.Base+"/x", nil); return status == http.StatusOK }

	// Fresh from sign-in: the action happens at once.
	if loc := location(t, accountForm(t, e, b, "sessions/revoke-others", nil)); !strings.HasSuffix(loc, "notice=signed_out_other") || stillIn() {
		t.Fatalf("a fresh session signing out the others went to %s", loc)
	}
	other.signInDev(e, "/", ada)
	time.Sleep(2500 * time.Millisecond)

	// Stale: the provider first; nothing happens meanwhile.
	for _, action := range []string{"sessions/revoke-others", "connect", "disconnect"} {
		resp := accountForm(t, e, b, action, url.Values{"provider": {"dev"}, "account_id": {"eac_x"}})
		if loc := location(t, resp); !strings.HasPrefix(loc, e.DevURL+"/authorize?") {
			t.Errorf("%s with a stale sign-in went to %s, not to the provider", action, loc)
		}
	}
	if !stillIn() {
		t.Fatal("a stale session signed out the others without signing in again")
	}
	// Someone else at the provider does not count.
	resp, page := devReauthenticate(t, e, b, location(t, accountForm(t, e, b, "sessions/revoke-others", nil)),
		person("Mallory", "mallory@example.com", true))
	if resp.StatusCode != http.StatusConflict || !stillIn() {
		t.Errorf("re-authenticating as someone else: status %d, other session signed in %v\n%.300s", resp.StatusCode, stillIn(), page)
	}
	if status, me := apiGet(t, b.c, e.Base+"/_auth/me", nil); status != http.StatusOK || !strings.Contains(fmt.Sprint(me), "Ada") {
		t.Fatalf("a refused re-authentication signed ada out or in as someone else: %d %v", status, me)
	}
	// The same person, signing in again: back on the account page, then the
	// action goes through.
	resp, page = devReauthenticate(t, e, b, location(t, accountForm(t, e, b, "sessions/revoke-others", nil)), ada)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "confirming it") {
		t.Fatalf("after re-authenticating: status %d\n%.300s", resp.StatusCode, page)
	}
	if loc := location(t, accountForm(t, e, b, "sessions/revoke-others", nil)); !strings.HasSuffix(loc, "notice=signed_out_other") || stillIn() {
		t.Errorf("after re-authenticating, signing out the others went to %s (other still in: %v)", loc, stillIn())
	}
}

func TestAccountActions_AProviderThatSkipsTheSignInIsRefused(t *testing.T) {
	op := startOP(t, testop.Options{})
	e := newEnv(t, options{NoDev: true, Global: fmt.Sprintf(`provider oidc corp {
			issuer %s
			client_id test-client
			client_secret test-secret
		}
		reauthenticate_after 1m`, op.URL())})
	op.SetLoginTime(time.Now().Add(-time.Hour)) // an hour-old session at the provider
	b := newBrowser(t)
	resp, _ := b.follow(b.get(corpCallback(t, e, b)))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	// The sign-in itself was an hour ago at the provider: too old already.
	authURL := location(t, accountForm(t, e, b, "sessions/revoke-others", nil))
	if q := mustURL(authURL).Query(); !strings.HasPrefix(authURL, op.URL()) || q.Get("prompt") != "login" || q.Get("max_age") != "0" {
		t.Fatalf("re-authentication went to %s", authURL)
	}
	// A provider that answers without asking: refused, nothing changes.
	op.SetFault(testop.FaultStaleAuthTime)
	resp, page := b.follow(b.get(location(t, func() *http.Response { r, _ := b.get(authURL); return r }())))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "did not ask you to sign in again") {
		t.Errorf("a provider ignoring prompt=login: status %d\n%.300s", resp.StatusCode, page)
	}
	// An honest one asks: the action proceeds.
	op.SetFault(testop.FaultNone)
	authURL = location(t, accountForm(t, e, b, "sessions/revoke-others", nil))
	resp, _ = b.get(authURL)
	resp, page = b.follow(b.get(location(t, resp)))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "confirming it") {
		t.Errorf("after an honest re-authentication: status %d", resp.StatusCode)
	}
}
