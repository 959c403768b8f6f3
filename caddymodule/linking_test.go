package caddymodule_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
	"github.com/socialgate/socialgate/internal/testkit"
)

// newLinkEnv runs the gateway with the dev provider and an oidc provider
// "corp"; corpOptions are extra lines of corp's block, site extra lines of
// the site's socialgate block.
func newLinkEnv(t *testing.T, corpOptions, handler string) (*env, *testop.Server) {
	op := startOP(t, testop.Options{})
	e := &env{t: t, Storage: t.TempDir(), Upstream: newUpstream(t), port: testkit.FreePort(t), devPort: testkit.FreePort(t)}
	e.Base = fmt.Sprintf("http://127.0.0.1:%d", e.port)
	e.DevURL = fmt.Sprintf("http://127.0.0.1:%d", e.devPort)
	e.handler = handler
	e.corp = fmt.Sprintf("provider oidc corp {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret test-secret\n\t\t\tdisplay_name Corp\n\t\t\t%s\n\t\t}", op.URL(), corpOptions)
	if err := e.Load(options{Global: e.corp}); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	e.stopAtCleanup()
	return e, op
}

// accountPage opens the account page and returns it with its CSRF token.
func (b *browser) accountPage(e *env) (string, string) {
	b.t.Helper()
	resp, page := b.get(e.Base + "/_auth/account")
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("account page: status %d", resp.StatusCode)
	}
	return page, html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))
}

// connectCorp presses "Connect Corp" on the account page and follows the
// round trip through the auto-approving provider.
func (b *browser) connectCorp(e *env) (*http.Response, string) {
	b.t.Helper()
	_, csrf := b.accountPage(e)
	resp, body := b.post(e.Base+"/_auth/account/connect", url.Values{"csrf_token": {csrf}, "provider": {"corp"}})
	return b.follow(resp, body)
}

func (b *browser) me(e *env) map[string]any {
	b.t.Helper()
	status, me := apiGet(b.t, b.c, e.Base+"/_auth/me", nil)
	if status != http.StatusOK {
		b.t.Fatalf("me: status %d", status)
	}
	return me
}

func accountsOf(me map[string]any) []map[string]any {
	var out []map[string]any
	for _, a := range me["external_accounts"].([]any) {
		out = append(out, a.(map[string]any))
	}
	return out
}

// accountID returns the id of the user's first account of a provider.
func accountID(me map[string]any, provider string) string {
	for _, a := range accountsOf(me) {
		if a["provider"] == provider {
			return a["id"].(string)
		}
	}
	return ""
}

func TestLinking_VerifiedEmailAutoLinks(t *testing.T) {
	// Both providers are trusted to vouch for linking by email (neither is
	// by default: the dev provider and a generic oidc one).
	e, op := newLinkEnv(t, "link_by_email on", "")
	if err := e.Load(options{Global: e.corp, Dev: "link_by_email on"}); err != nil {
		t.Fatal(err)
	}
	viaDev := newBrowser(t)
	viaDev.signInDev(e, "/", ada)
	userID := viaDev.me(e)["id"]

	op.SetClaims(map[string]any{"sub": "corp-ada", "email": "ADA@example.com", "email_verified": true, "name": "Ada L."})
	viaCorp := newBrowser(t)
	resp, _ := signInCorp(viaCorp, e)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("corp sign-in: status %d", resp.StatusCode)
	}
	me := viaCorp.me(e)
	if me["id"] != userID {
		t.Fatalf("verified email did not link: user %v, want %v", me["id"], userID)
	}
	if n := len(accountsOf(me)); n != 2 {
		t.Errorf("the user has %d accounts, want 2", n)
	}
	if viaDev.signedIn(e) {
		t.Error("the user's other session survived the link by email")
	}
}

func TestLinking_DefaultsLinkNothingThroughTheDevOrAGenericProvider(t *testing.T) {
	e, op := newLinkEnv(t, "", "")
	viaDev := newBrowser(t)
	viaDev.signInDev(e, "/", ada)
	op.SetClaims(map[string]any{"sub": "corp-ada", "email": "ada@example.com", "email_verified": true})
	viaCorp := newBrowser(t)
	if resp, _ := signInCorp(viaCorp, e); resp.StatusCode != http.StatusOK {
		t.Fatalf("corp sign-in: status %d", resp.StatusCode)
	}
	if viaCorp.me(e)["id"] == viaDev.me(e)["id"] {
		t.Error("an untrusted provider's address linked to a user an untrusted provider vouched for")
	}
}

func TestLinking_UnverifiedEmailDoesNotLink(t *testing.T) {
	e, op := newLinkEnv(t, "", "")
	viaDev := newBrowser(t)
	viaDev.signInDev(e, "/", ada)
	userID := viaDev.me(e)["id"]

	for _, verified := range []any{false, "false", nil} {
		claims := map[string]any{"sub": fmt.Sprintf("corp-%v", verified), "email": "ada@example.com", "name": "Mallory"}
		if verified != nil {
			claims["email_verified"] = verified
		}
		op.SetClaims(claims)
		b := newBrowser(t)
		signInCorp(b, e)
		if got := b.me(e)["id"]; got == userID {
			t.Fatalf("email_verified=%v linked into the existing user", verified)
		}
	}
}

func TestLinking_ConnectLinksToTheSignedInUserWithANewSession(t *testing.T) {
	e, op := newLinkEnv(t, "", "")
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	before := b.me(e)
	op.SetClaims(map[string]any{"sub": "corp-someone", "email": "someone.else@corp.example", "email_verified": true})
	resp, page := b.connectCorp(e)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Account connected.") {
		t.Fatalf("connect: status %d at %s", resp.StatusCode, resp.Request.URL)
	}
	after := b.me(e)
	if after["id"] != before["id"] {
		t.Fatalf("connect moved the browser to user %v", after["id"])
	}
	if after["session_id"] == before["session_id"] {
		t.Error("linking kept the session id")
	}
	providers := []string{}
	for _, a := range accountsOf(after) {
		providers = append(providers, a["provider"].(string))
	}
	if strings.Join(providers, ",") != "oauth_custom_dev,oauth_custom_corp" {
		t.Errorf("accounts = %v", providers)
	}
	if !strings.Contains(page, "someone.else@corp.example") {
		t.Error("the account page does not list the connected account")
	}
}

func TestLinking_IdentityOfAnotherUserIsRefusedOnConnect(t *testing.T) {
	e, op := newLinkEnv(t, "", "")
	op.SetClaims(map[string]any{"sub": "corp-shared", "email": "shared@corp.example", "email_verified": true})
	owner := newBrowser(t)
	owner.signInDev(e, "/", ada)
	owner.connectCorp(e)
	ownerMe := owner.me(e)

	other := newBrowser(t)
	other.signInDev(e, "/", person("Grace Hopper", "grace@example.com", true))
	otherBefore := other.me(e)
	resp, page := other.connectCorp(e)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "already connected to another user") {
		t.Fatalf("connect of another user's identity: status %d: %s", resp.StatusCode, page)
	}
	if n := len(accountsOf(other.me(e))); n != 1 {
		t.Errorf("the refused user has %d accounts, want 1", n)
	}
	if got := other.me(e)["session_id"]; got != otherBefore["session_id"] {
		t.Error("a refused link changed the session")
	}
	if n := len(accountsOf(owner.me(e))); n != 2 || owner.me(e)["id"] != ownerMe["id"] {
		t.Error("the owner's accounts changed")
	}
}

func TestLinking_ConnectNeedsPostWithCSRF(t *testing.T) {
	e, op := newLinkEnv(t, "", "")
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	before := op.Calls("authorize")
	resp, _ := b.get(e.Base + "/_auth/account/connect?provider=corp")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET connect: status %d, want 405", resp.StatusCode)
	}
	resp, _ = b.post(e.Base+"/_auth/account/connect", url.Values{"provider": {"corp"}, "csrf_token": {"forged"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("connect with a forged CSRF token: status %d, want 403", resp.StatusCode)
	}
	// Another user's token does not work for this session either.
	other := newBrowser(t)
	other.signInDev(e, "/", person("Grace Hopper", "grace@example.com", true))
	_, otherCSRF := other.accountPage(e)
	resp, _ = b.post(e.Base+"/_auth/account/connect", url.Values{"provider": {"corp"}, "csrf_token": {otherCSRF}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("connect with another session's CSRF token: status %d, want 403", resp.StatusCode)
	}
	if op.Calls("authorize") != before {
		t.Error("a refused connect reached the provider")
	}
}

func TestLinking_ConnectOnlyProviderCannotSignIn(t *testing.T) {
	e, op := newLinkEnv(t, "sign_in off", "")
	b := newBrowser(t)
	_, page := b.get(e.Base + "/_auth/sign-in")
	if strings.Contains(page, "/oauth/corp/start") || !strings.Contains(page, "/oauth/dev/start") {
		t.Fatalf("sign-in page shows a connect-only provider or misses dev:\n%s", page)
	}
	before := op.Calls("authorize")
	resp, page := b.post(e.Base+"/_auth/oauth/corp/start", url.Values{"return_to": {"/"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "can&#39;t be used to sign in") {
		t.Fatalf("sign-in through a connect-only provider: status %d: %s", resp.StatusCode, page)
	}
	if op.Calls("authorize") != before {
		t.Error("the refused sign-in reached the provider")
	}

	b.signInDev(e, "/", ada)
	page, _ = b.accountPage(e)
	if !strings.Contains(page, "Connect Corp") {
		t.Fatal("the account page does not offer to connect the connect-only provider")
	}
	if resp, _ := b.connectCorp(e); resp.StatusCode != http.StatusOK {
		t.Fatalf("connecting a connect-only provider: status %d", resp.StatusCode)
	}

	// The connect-only account cannot be used to sign in, and it does not count
	// as a sign-in identity: the dev account is the last one and stays.
	page, csrf := b.accountPage(e)
	if strings.Contains(page, `aria-label="Disconnect Dev provider"`) || !strings.Contains(page, `aria-label="Disconnect Corp"`) {
		t.Error("the page must offer to disconnect Corp and not the only sign-in identity")
	}
	resp, _ = b.post(e.Base+"/_auth/account/disconnect", url.Values{"csrf_token": {csrf}, "account_id": {accountID(b.me(e), "oauth_custom_dev")}})
	if loc := location(t, resp); !strings.Contains(loc, "error=last_identity") {
		t.Fatalf("disconnecting the last sign-in identity went to %s", loc)
	}
}

func TestLinking_DisconnectRefusesTheLastIdentityAndRevokesOthers(t *testing.T) {
	e, op := newLinkEnv(t, "", "")
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	page, csrf := b.accountPage(e)
	if strings.Contains(page, "Disconnect") {
		t.Error("the page offers to disconnect the only identity")
	}
	resp, _ := b.post(e.Base+"/_auth/account/disconnect", url.Values{"csrf_token": {csrf}, "account_id": {accountID(b.me(e), "oauth_custom_dev")}})
	resp, page = b.follow(resp, "")
	if !strings.Contains(page, "only account you can sign in with") {
		t.Fatalf("no refusal shown: %s", page)
	}
	if n := len(accountsOf(b.me(e))); n != 1 {
		t.Fatalf("accounts after a refused disconnect: %d", n)
	}

	op.SetClaims(map[string]any{"sub": "corp-ada", "email": "ada@corp.example", "email_verified": true})
	b.connectCorp(e)
	corpID := accountID(b.me(e), "oauth_custom_corp")
	revokes := op.Calls("revoke")
	_, csrf = b.accountPage(e)
	resp, _ = b.post(e.Base+"/_auth/account/disconnect", url.Values{"csrf_token": {csrf}, "account_id": {corpID}})
	_, page = b.follow(resp, "")
	if !strings.Contains(page, "Account disconnected.") {
		t.Fatalf("disconnect: %s", page)
	}
	accounts := accountsOf(b.me(e))
	if len(accounts) != 1 || accounts[0]["provider"] != "oauth_custom_dev" {
		t.Fatalf("accounts after disconnect: %v", accounts)
	}
	if op.Calls("revoke") != revokes+1 {
		t.Errorf("revoke calls at the provider: %d, want %d", op.Calls("revoke"), revokes+1)
	}
	// The identity is free again: signing in with it makes a new user.
	again := newBrowser(t)
	signInCorp(again, e)
	if again.me(e)["id"] == b.me(e)["id"] {
		t.Error("the disconnected identity still signs in as the old user")
	}
}

func TestScopes_ReauthorizeAddsAScope(t *testing.T) {
	e, op := newLinkEnv(t, "", "")
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	b.connectCorp(e)
	page, _ := b.accountPage(e)
	if strings.Contains(page, "requires action") {
		t.Fatal("requires action before any scope is configured")
	}

	// The operator now asks corp for files.read: the account needs action.
	e.corp = strings.Replace(e.corp, "display_name Corp", "display_name Corp\n\t\t\tscopes files.read", 1)
	if err := e.Load(options{Global: e.corp}); err != nil {
		t.Fatal(err)
	}
	page, csrf := b.accountPage(e)
	if !strings.Contains(page, "requires action") || !strings.Contains(page, "Missing: files.read") {
		t.Fatalf("the account page does not ask for files.read:\n%s", page)
	}
	corpID := accountID(b.me(e), "oauth_custom_corp")
	resp, body := b.post(e.Base+"/_auth/account/reauthorize", url.Values{"csrf_token": {csrf}, "account_id": {corpID}})
	resp, page = b.follow(resp, body)
	if !strings.Contains(page, "Access updated.") {
		t.Fatalf("reauthorize: status %d: %s", resp.StatusCode, page)
	}
	if q := op.LastAuthorizeQuery(); !strings.Contains(q.Get("scope"), "files.read") || q.Get("prompt") != "consent" {
		t.Errorf("reauthorization request: scope %q prompt %q", q.Get("scope"), q.Get("prompt"))
	}
	for _, a := range accountsOf(b.me(e)) {
		if a["provider"] == "oauth_custom_corp" {
			if a["id"] != corpID {
				t.Errorf("reauthorize made a new account %v, want %s", a["id"], corpID)
			}
			if !strings.Contains(a["approved_scopes"].(string), "files.read") {
				t.Errorf("approved scopes %q lack files.read", a["approved_scopes"])
			}
		}
	}
	if page, _ := b.accountPage(e); strings.Contains(page, "requires action") {
		t.Error("still requires action after reauthorizing")
	}
}

func TestScopes_RequireRouteSendsBrowsersToReauthorizeAndAPIsGet403(t *testing.T) {
	e, op := newLinkEnv(t, "", "require corp scopes files.read")
	b := newBrowser(t)
	b.signInDev(e, "/", ada)

	// An API client without the linked account gets 403 with a reauthorize_url.
	status, body := apiGet(t, b.c, e.Base+"/files/1", nil)
	if status != http.StatusForbidden {
		t.Fatalf("API client: status %d, want 403", status)
	}
	reauth, _ := body["reauthorize_url"].(string)
	if !strings.HasPrefix(reauth, "/_auth/reauthorize?") || !strings.Contains(reauth, "files.read") {
		t.Fatalf("reauthorize_url = %q", reauth)
	}

	// A browser goes through the reauthorize page, the provider and back.
	before := len(e.Upstream.Requests())
	resp, page := b.get(e.Base + "/files/1?view=full")
	if loc := location(t, resp); !strings.HasPrefix(loc, e.Base+"/_auth/reauthorize?") {
		t.Fatalf("browser sent to %s", loc)
	}
	resp, page = b.follow(resp, page)
	if !strings.Contains(page, "Continue to Corp") || !strings.Contains(page, "files.read") {
		t.Fatalf("reauthorize page: %s", page)
	}
	form := url.Values{}
	for _, name := range []string{"csrf_token", "provider", "account_id", "return_to"} {
		form.Set(name, html.UnescapeString(between(page, `name="`+name+`" value="`, `"`)))
	}
	form.Set("scopes", "files.read")
	resp, body2 := b.post(e.Base+"/_auth/account/reauthorize", form)
	resp, body2 = b.follow(resp, body2)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/files/1?view=full" {
		t.Fatalf("after reauthorization: status %d at %s: %s", resp.StatusCode, resp.Request.URL, body2)
	}
	if len(e.Upstream.Requests()) != before+1 {
		t.Error("the upstream was not reached exactly once after reauthorization")
	}
	if !strings.Contains(op.LastAuthorizeQuery().Get("scope"), "files.read") {
		t.Error("files.read was not requested")
	}
	if status, _ := apiGet(t, b.c, e.Base+"/files/2", nil); status != http.StatusOK {
		t.Errorf("API client after reauthorization: status %d", status)
	}
}
