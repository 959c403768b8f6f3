package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// signOut presses the sign-out button of the page for returnTo and returns
// the answer to the POST.
func (b *browser) signOut(e *env, returnTo string) *http.Response {
	b.t.Helper()
	page := e.Base + "/_auth/sign-out"
	if returnTo != "" {
		page += "?return_to=" + url.QueryEscape(returnTo)
	}
	_, page = b.get(page)
	action := html.UnescapeString(between(page, `<form method="post" action="`, `"`))
	csrf := html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))
	resp, _ := b.post(e.Base+action, url.Values{"csrf_token": {csrf}})
	return resp
}

// signedIn reports whether a session cookie still gets through.
func signedIn(t *testing.T, e *env, cookie string) bool {
	t.Helper()
	status, _ := apiGet(t, http.DefaultClient, e.Base+"/_auth/me", http.Header{"Cookie": {cookie}})
	return status == http.StatusOK
}

func TestSignOut_AtTheProviderThenBackToTheReturnTo(t *testing.T) {
	e, op := newLinkEnv(t, "sign_out_at_provider on", "")
	b, status := signInWith(t, e, "corp")
	if status != http.StatusOK {
		t.Fatalf("sign-in: status %d", status)
	}
	cookie := sessionCookie(b, e)
	resp := b.signOut(e, "/inbox?tab=2")
	to := location(t, resp)
	if !strings.HasPrefix(to, op.EndSessionURL()+"?") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("sign-out sent the browser to %s (Cache-Control %q), want the provider's end_session_endpoint",
			to, resp.Header.Get("Cache-Control"))
	}
	// The gateway's own session ended before the browser left.
	if signedIn(t, e, cookie) {
		t.Error("the session still works while the browser is on its way to the provider")
	}
	q, _ := url.Parse(to)
	sent := q.Query()
	if sent.Get("client_id") != "test-client" || sent.Get("post_logout_redirect_uri") != e.Base+"/_auth/signed-out" ||
		len(sent.Get("state")) < 32 || !slices.Contains(op.Secrets(), sent.Get("id_token_hint")) {
		t.Errorf("end-session request = %v, want id_token_hint, client_id, post_logout_redirect_uri and state", sent)
	}
	recordSecret(sent.Get("state"))
	resp, _ = b.get(to) // the provider signs out and sends the browser back
	back := location(t, resp)
	if !strings.HasPrefix(back, e.Base+"/_auth/signed-out?") || op.Calls("end_session") != 1 {
		t.Fatalf("the provider sent the browser to %s", back)
	}
	resp, _ = b.get(back)
	if got := location(t, resp); got != e.Base+"/inbox?tab=2" {
		t.Errorf("after the provider's sign-out: sent to %s, want /inbox?tab=2", got)
	}
	// The state is single-use; an unknown one leads to the sign-in page.
	for _, again := range []string{back, e.Base + "/_auth/signed-out?state=" + strings.Repeat("A", 43), e.Base + "/_auth/signed-out"} {
		if resp, _ := b.get(again); location(t, resp) != e.Base+"/_auth/sign-in?notice=signed_out" {
			t.Errorf("%s: sent to %s, want the sign-in page", again, location(t, resp))
		}
	}
}

func TestSignOut_ReturnToIsSanitizedAcrossTheProviderRoundTrip(t *testing.T) {
	e, _ := newLinkEnv(t, "sign_out_at_provider on", "")
	for _, evil := range []string{"//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)"} {
		b, _ := signInWith(t, e, "corp")
		resp, _ := b.get(location(t, b.signOut(e, evil)))
		resp, _ = b.get(location(t, resp))
		if got := location(t, resp); got != e.Base+"/" {
			t.Errorf("return_to %q: sent to %s, want /", evil, got)
		}
	}
}

// Signing out leaves the provider alone unless the operator asked, and
// whatever other accounts are linked, only the sign-in's provider counts.
func TestSignOut_StaysHereByDefaultAndForLinkedProviders(t *testing.T) {
	e, op := newLinkEnv(t, "", "")
	b, _ := signInWith(t, e, "corp")
	if got := location(t, b.signOut(e, "/bye")); got != e.Base+"/bye" {
		t.Errorf("sign-out without sign_out_at_provider: sent to %s, want /bye", got)
	}
	b, _ = signInWith(t, e, "corp")
	if got := location(t, b.signOut(e, "")); got != e.Base+"/_auth/sign-in?notice=signed_out" {
		t.Errorf("sign-out without a return_to: sent to %s, want the sign-in page", got)
	}

	e2, op2 := newLinkEnv(t, "sign_out_at_provider on", "")
	dev := newBrowser(t)
	dev.signInDev(e2, "/", ada)
	dev.connectCorp(e2) // corp is linked, but dev signed this session in
	if got := location(t, dev.signOut(e2, "/bye")); got != e2.Base+"/bye" {
		t.Errorf("a dev sign-in with corp linked: sent to %s, want /bye", got)
	}
	if n := op.Calls("end_session") + op2.Calls("end_session"); n != 0 {
		t.Errorf("%d end_session calls, want none", n)
	}
}

// backChannel posts logout tokens to a gateway as a provider would.
func backChannel(t *testing.T, e *env, provider string, form url.Values) (int, http.Header, map[string]string) {
	t.Helper()
	resp, err := http.PostForm(e.Base+"/_auth/oauth/"+provider+"/backchannel-logout", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]string
	if len(body) > 0 {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("the answer is not JSON: %q", body)
		}
	}
	return resp.StatusCode, resp.Header, out
}

// holder is a browser's session, as a cookie, and the provider session
// of its sign-in.
type holder struct {
	name   string
	cookie string
	sid    string
}

// signInAs signs a new browser in through corp as sub.
func signInAs(t *testing.T, e *env, op *testop.Server, sub string) holder {
	t.Helper()
	op.SetClaims(map[string]any{"sub": sub, "email": sub + "@example.com", "email_verified": true, "name": sub})
	b, status := signInWith(t, e, "corp")
	if status != http.StatusOK {
		t.Fatalf("sign-in as %s: status %d", sub, status)
	}
	return holder{name: sub, cookie: sessionCookie(b, e), sid: op.LastSID()}
}

func TestBackChannelLogout_RefusesHostileTokensAndEndsNothing(t *testing.T) {
	e, op := newLinkEnv(t, "", "")
	evil := startOP(t, testop.Options{}) // another provider the gateway trusts for its own users
	e.corp += fmt.Sprintf("\n\t\tprovider oidc evil {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret test-secret\n\t\t}", evil.URL())
	if err := e.Load(options{Global: e.corp}); err != nil {
		t.Fatal(err)
	}
	ann, bob := signInAs(t, e, op, "ann"), signInAs(t, e, op, "bob")
	set := func(k string, v any) func(map[string]string, map[string]any) {
		return func(h map[string]string, c map[string]any) {
			if k == "kid" || k == "alg" || k == "typ" {
				h[k] = v.(string)
			} else if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
	}
	replayed := op.LogoutToken("ann", ann.sid, set("sub", "nobody"))
	if status, _, _ := backChannel(t, e, "corp", url.Values{"logout_token": {replayed}}); status != http.StatusOK {
		t.Fatalf("a valid token naming nobody known: status %d", status)
	}
	for _, tc := range []struct {
		name, provider string
		form           url.Values
		status         int
	}{
		{"signed with a key the provider does not publish", "corp", logoutForm(op.LogoutToken("ann", "", set("kid", "forged"))), 400},
		{"unsigned", "corp", logoutForm(op.LogoutToken("ann", "", set("alg", "none"))), 400},
		{"HS256 with the provider's public key", "corp", logoutForm(op.LogoutToken("ann", "", set("alg", "HS256"))), 400},
		{"for another client", "corp", logoutForm(op.LogoutToken("ann", "", set("aud", "other-client"))), 400},
		{"from another issuer", "corp", logoutForm(op.LogoutToken("ann", "", set("iss", "https://other.example"))), 400},
		{"another provider's token at corp", "corp", logoutForm(evil.LogoutToken("ann", "", nil)), 400},
		{"with a nonce", "corp", logoutForm(op.LogoutToken("ann", "", set("nonce", "n"))), 400},
		{"without the events claim", "corp", logoutForm(op.LogoutToken("ann", "", set("events", nil))), 400},
		{"an old one", "corp", logoutForm(op.LogoutToken("ann", "", set("iat", time.Now().Add(-time.Hour).Unix()))), 400},
		{"an ID token", "corp", logoutForm(op.Secrets()[len(op.Secrets())-1]), 400},
		{"a replay", "corp", logoutForm(replayed), 400},
		{"two tokens", "corp", url.Values{"logout_token": {op.LogoutToken("ann", "", nil), op.LogoutToken("bob", "", nil)}}, 400},
		{"no token", "corp", url.Values{"token": {op.LogoutToken("ann", "", nil)}}, 400},
		{"garbage", "corp", logoutForm("\x00not a jwt" + strings.Repeat("x", 10000)), 400},
		{"an unknown provider", "nope", logoutForm(op.LogoutToken("ann", "", nil)), 404},
		// Signed by the provider, but naming ann with bob's provider
		// session, or ann at another issuer: nothing of bob's or ann's ends.
		{"ann with bob's sid", "corp", logoutForm(op.LogoutToken("ann", bob.sid, nil)), 200},
		{"ann at another provider", "evil", logoutForm(evil.LogoutToken("ann", "", nil)), 200},
		{"bob's sid at another provider", "evil", logoutForm(evil.LogoutToken("", bob.sid, nil)), 200},
	} {
		status, h, body := backChannel(t, e, tc.provider, tc.form)
		if status != tc.status || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: status %d (Cache-Control %q), want %d", tc.name, status, h.Get("Cache-Control"), tc.status)
		}
		if status >= 400 && (body["error"] == "" || body["error_description"] == "") {
			t.Errorf("%s: error body %v, want error and error_description", tc.name, body)
		}
		for _, p := range []holder{ann, bob} {
			if !signedIn(t, e, p.cookie) {
				t.Fatalf("%s ended %s's session", tc.name, p.name)
			}
		}
	}
	resp, err := http.Get(e.Base + "/_auth/oauth/corp/backchannel-logout")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", resp.StatusCode)
	}
}

func logoutForm(raw string) url.Values { return url.Values{"logout_token": {raw}} }

func TestBackChannelLogout_EndsTheSessionsTheTokenNames(t *testing.T) {
	e, op := newLinkEnv(t, "", "")
	ann1, ann2, bob := signInAs(t, e, op, "ann"), signInAs(t, e, op, "ann"), signInAs(t, e, op, "bob")
	post := func(raw string) {
		t.Helper()
		if status, h, body := backChannel(t, e, "corp", logoutForm(raw)); status != http.StatusOK || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("status %d %v (Cache-Control %q), want 200", status, body, h.Get("Cache-Control"))
		}
	}
	live := func(want ...holder) {
		t.Helper()
		for _, p := range []holder{ann1, ann2, bob} {
			if got := signedIn(t, e, p.cookie); got != slices.Contains(want, p) {
				t.Errorf("%s's session with sid %s: live = %v", p.name, p.sid, got)
			}
		}
	}
	post(op.LogoutToken("ann", ann1.sid, nil)) // sub and sid: that session
	live(ann2, bob)
	post(op.LogoutToken("", bob.sid, nil)) // sid alone
	live(ann2)
	post(op.LogoutToken("ann", "", nil)) // sub alone: every session of ann
	live()
}

// Found by the second red team: docs/logout.md promises that for a back-channel logout token
// "an unknown key id causes at most one key-set fetch a minute". The
// endpoint is unauthenticated and had no rate limit, and each token sent
// past the key set's lifetime (5 s for this provider's no-store) or with a
// made-up key id fetched the set again: anyone on the internet made the
// gateway fetch the provider's JWKS six times a minute or more.
func TestBackChannelLogout_MadeUpKeyIDsFetchTheKeysAtMostOnceAMinute(t *testing.T) {
	e, op := newLinkEnv(t, "", "")
	ann := signInAs(t, e, op, "ann") // the key set is fetched and cached
	forged := func(i int) url.Values {
		return url.Values{"logout_token": {op.LogoutToken("ann", ann.sid, func(h map[string]string, _ map[string]any) {
			h["kid"] = fmt.Sprintf("made-up-%d", i)
		})}}
	}
	before := op.Calls("jwks")
	start := time.Now()
	for i := 0; i < 4; i++ {
		if i > 0 {
			time.Sleep(11 * time.Second)
		}
		if status, _, _ := backChannel(t, e, "corp", forged(i)); status != http.StatusBadRequest {
			t.Fatalf("a logout token with an unknown kid: status %d, want 400", status)
		}
	}
	fetches := op.Calls("jwks") - before
	t.Logf("%d JWKS fetches in %v from 4 unauthenticated POSTs", fetches, time.Since(start).Round(time.Second))
	if fetches > 1 {
		t.Errorf("%d key-set fetches within %v, want at most one a minute (docs/logout.md)", fetches, time.Since(start).Round(time.Second))
	}
	if !signedIn(t, e, ann.cookie) {
		t.Error("a forged token ended a session")
	}
}
