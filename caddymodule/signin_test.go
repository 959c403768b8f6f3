package caddymodule_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestSignIn_DevProviderEndToEnd(t *testing.T) {
	e := newEnv(t, options{})
	b := newBrowser(t)

	resp, body := b.signInDev(e, "/reports?year=2026", ada)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after sign-in: status %d: %s", resp.StatusCode, body)
	}
	if resp.Request.URL.RequestURI() != "/reports?year=2026" {
		t.Errorf("returned to %s, want /reports?year=2026", resp.Request.URL.RequestURI())
	}
	h := e.Upstream.Last(t)
	if !strings.HasPrefix(h.Get("X-Auth-User-Id"), "user_") {
		t.Errorf("X-Auth-User-Id = %q", h.Get("X-Auth-User-Id"))
	}
	if h.Get("X-Auth-User-Email") != "ada@example.com" || h.Get("X-Auth-User-Name") != "Ada Lovelace" {
		t.Errorf("identity headers: email %q, name %q", h.Get("X-Auth-User-Email"), h.Get("X-Auth-User-Name"))
	}
	if !strings.HasPrefix(h.Get("X-Auth-Session-Id"), "sess_") {
		t.Errorf("X-Auth-Session-Id = %q", h.Get("X-Auth-Session-Id"))
	}
	if strings.Contains(h.Get("Cookie"), "socialgate_") {
		t.Errorf("the gateway's cookies reached the upstream: %q", h.Get("Cookie"))
	}
}

func TestSignIn_SecondSignInFindsTheSameUser(t *testing.T) {
	e := newEnv(t, options{})
	first := newBrowser(t)
	first.signInDev(e, "/", ada)
	firstID := e.Upstream.Last(t).Get("X-Auth-User-Id")
	firstSession := e.Upstream.Last(t).Get("X-Auth-Session-Id")

	second := newBrowser(t)
	second.signInDev(e, "/", ada)
	if got := e.Upstream.Last(t).Get("X-Auth-User-Id"); got != firstID {
		t.Errorf("second sign-in got user %s, want %s", got, firstID)
	}
	if got := e.Upstream.Last(t).Get("X-Auth-Session-Id"); got == firstSession {
		t.Error("second sign-in reused the first session id")
	}

	third := newBrowser(t)
	third.signInDev(e, "/", person("Grace Hopper", "grace@example.com", true))
	if got := e.Upstream.Last(t).Get("X-Auth-User-Id"); got == firstID {
		t.Error("another person signed in as the first user")
	}
}

func TestSignIn_SignOutKillsTheCookie(t *testing.T) {
	e := newEnv(t, options{})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	stolen := b.cookie(e.Base, "socialgate_session")
	if stolen == "" {
		t.Fatal("no session cookie after sign-in")
	}

	resp, page := b.get(e.Base + "/_auth/sign-out")
	token := html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))
	if resp.StatusCode != http.StatusOK || token == "" {
		t.Fatalf("sign-out page: status %d, csrf token %q", resp.StatusCode, token)
	}
	resp, _ = b.post(e.Base+"/_auth/sign-out", url.Values{"csrf_token": {"forged"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-out with a forged CSRF token: status %d, want 403", resp.StatusCode)
	}
	resp, _ = b.post(e.Base+"/_auth/sign-out", url.Values{"csrf_token": {token}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: status %d, want 303", resp.StatusCode)
	}
	if b.cookie(e.Base, "socialgate_session") != "" {
		t.Error("the session cookie survived sign-out in the browser")
	}

	// A copy of the cookie taken before sign-out is dead: the record is gone.
	req, _ := http.NewRequest(http.MethodGet, e.Base+"/private", nil)
	req.Header.Set("Cookie", "socialgate_session="+stolen)
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed cookie after sign-out: status %d, want 401", res.StatusCode)
	}
}

func TestSignIn_UnauthenticatedAPIRequestGets401JSON(t *testing.T) {
	e := newEnv(t, options{})
	before := len(e.Upstream.Requests())
	status, body := apiGet(t, http.DefaultClient, e.Base+"/api/items?page=2", nil)
	if status != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", status)
	}
	if body["sign_in_url"] != "/_auth/sign-in?return_to=%2Fapi%2Fitems%3Fpage%3D2" {
		t.Errorf("sign_in_url = %v", body["sign_in_url"])
	}
	errs, _ := body["errors"].([]any)
	if len(errs) != 1 || errs[0].(map[string]any)["code"] != "unauthenticated" {
		t.Errorf("errors = %v", body["errors"])
	}
	if len(e.Upstream.Requests()) != before {
		t.Error("an unauthenticated request reached the upstream")
	}
}

func TestSignIn_MeReturnsTheUserAsJSON(t *testing.T) {
	e := newEnv(t, options{})
	b := newBrowser(t)
	b.signInDev(e, "/", person("Edsger Dijkstra", "edsger@example.com", true))
	status, me := apiGet(t, b.c, e.Base+"/_auth/me", nil)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if me["object"] != "user" || me["name"] != "Edsger Dijkstra" || me["primary_email_address"] != "edsger@example.com" {
		t.Errorf("me = %v", me)
	}
	eacs, _ := me["external_accounts"].([]any)
	if len(eacs) != 1 || eacs[0].(map[string]any)["provider"] != "oauth_custom_dev" {
		t.Fatalf("external_accounts = %v", me["external_accounts"])
	}
	if strings.Contains(mustJSON(t, me), "access_token") {
		t.Error("me exposes token material")
	}
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	return s[:j]
}
