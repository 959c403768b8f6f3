package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
	"github.com/socialgate/socialgate/internal/testkit"
)

// userCount counts the users through the backend API.
func userCount(t *testing.T, e *env) int {
	t.Helper()
	status, _, out := apiCall(t, e, http.MethodGet, "/users?limit=100")
	list, ok := out.([]any)
	if status != http.StatusOK || !ok {
		t.Fatalf("GET /users: %d %v", status, out)
	}
	return len(list)
}

func TestAllowEmails_OnlyAdmittedAddressesSignInAndNoOneElseIsCreated(t *testing.T) {
	e := newEnv(t, options{Global: "api_key " + apiKey + "\n\t\tallow_emails *@example.com bob@partner.example"})

	resp, _ := newBrowser(t).signInDev(e, "/", ada)
	if resp.StatusCode != http.StatusOK || e.Upstream.Last(t).Get("X-Auth-User-Id") == "" {
		t.Fatalf("ada@example.com (a whole domain): status %d", resp.StatusCode)
	}
	resp, _ = newBrowser(t).signInDev(e, "/", person("Bob", "Bob@Partner.example", true))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bob@partner.example (an address, other case): status %d", resp.StatusCode)
	}
	served := len(e.Upstream.Requests())

	for _, tc := range []struct {
		who  url.Values
		want string
	}{
		{person("Eve", "eve@evil.example", true), "eve@evil.example (your Dev provider account) is not one of them"},
		{person("Carol", "carol@partner.example", true), "carol@partner.example (your Dev provider account) is not one of them"},
		{person("Sub", "sub@mail.example.com", true), "sub@mail.example.com (your Dev provider account) is not one of them"},
		// An address the provider did not verify never counts.
		{person("Mallory", "mallory@example.com", false), "your Dev provider account is not one of them"},
	} {
		b := newBrowser(t)
		resp, page := b.signInDev(e, "/", tc.who)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(html.UnescapeString(page), tc.want) {
			t.Errorf("%s: status %d, page does not say %q:\n%s", tc.who.Get("email"), resp.StatusCode, tc.want, page)
		}
		if strings.Contains(page, "partner.example") && !strings.Contains(tc.who.Get("email"), "partner.example") {
			t.Errorf("%s: the refusal shows the rules", tc.who.Get("email"))
		}
		if resp, _ := b.get(e.Base + "/"); resp.StatusCode != http.StatusFound {
			t.Errorf("%s: after the refusal / answers %d, want a redirect to sign in (no session)", tc.who.Get("email"), resp.StatusCode)
		}
	}
	if n := userCount(t, e); n != 2 {
		t.Errorf("%d users, want ada and bob: a refused first sign-in must create no user", n)
	}
	if n := len(e.Upstream.Requests()); n != served {
		t.Errorf("refused people reached the upstream %d times", n-served)
	}
}

func TestAllowEmails_AReloadThatNarrowsTheRulesShutsOutSignedInUsers(t *testing.T) {
	o := options{Global: "allow_emails *@example.com"}
	e := newEnv(t, o)
	adaB, graceB := newBrowser(t), newBrowser(t)
	adaB.signInDev(e, "/", ada)
	graceB.signInDev(e, "/", url.Values{"user": {"grace"}})

	o.Global = "allow_emails grace@example.com"
	o.Site = "handle /metrics {\n\t\tmetrics\n\t}"
	if err := e.Load(o); err != nil {
		t.Fatal(err)
	}
	refused := func() float64 {
		_, page := graceB.get(e.Base + "/metrics") // behind the gateway: grace is admitted
		return metricValue(page, "socialgate_requests_not_admitted_total", "")
	}
	before := refused()
	served := len(e.Upstream.Requests())
	resp, page := adaB.get(e.Base + "/")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Your account is not one that this page admits") ||
		!strings.Contains(page, `action="/_auth/sign-out"`) || !strings.Contains(page, "ada@example.com") {
		t.Fatalf("ada after the reload: status %d\n%s", resp.StatusCode, page)
	}
	status, body := apiGet(t, adaB.c, e.Base+"/api/things", nil)
	if errs, _ := body["errors"].([]any); status != http.StatusForbidden || len(errs) != 1 || errs[0].(map[string]any)["code"] != "not_admitted" {
		t.Errorf("ada's API request after the reload: %d %v", status, body)
	}
	if n := len(e.Upstream.Requests()); n != served {
		t.Errorf("ada reached the upstream %d times after the reload", n-served)
	}
	if resp, _ := graceB.get(e.Base + "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("grace after the reload: status %d", resp.StatusCode)
	}
	if n := refused() - before; n != 2 {
		t.Errorf("socialgate_requests_not_admitted_total rose by %v, want 2 (ada's page and API requests)", n)
	}

	// The page's sign-out button works: ada can then sign in as someone else.
	csrf := html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))
	resp, body2 := adaB.post(e.Base+"/_auth/sign-out", url.Values{"csrf_token": {csrf}})
	if resp, _ = adaB.follow(resp, body2); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-out from the refusal page: status %d", resp.StatusCode)
	}
	if resp, _ := adaB.get(e.Base + "/"); resp.StatusCode != http.StatusFound {
		t.Errorf("after signing out / answers %d, want a redirect to sign in", resp.StatusCode)
	}
}

func TestAllowEmails_ARouteAdmitsFewerThanTheSite(t *testing.T) {
	e := newEnv(t, options{Site: "route /admin/* {\n\t\tsocialgate {\n\t\t\tallow_emails grace@example.com\n\t\t}\n\t}"})
	adaB, graceB := newBrowser(t), newBrowser(t)
	adaB.signInDev(e, "/", ada)
	graceB.signInDev(e, "/", url.Values{"user": {"grace"}})
	for _, tc := range []struct {
		b    *browser
		path string
		want int
	}{
		{adaB, "/", http.StatusOK}, {adaB, "/admin/users", http.StatusForbidden},
		{graceB, "/", http.StatusOK}, {graceB, "/admin/users", http.StatusOK},
	} {
		if resp, _ := tc.b.get(e.Base + tc.path); resp.StatusCode != tc.want {
			t.Errorf("%s %s: status %d, want %d", tc.b.me(e)["primary_email_address"], tc.path, resp.StatusCode, tc.want)
		}
	}
}

func TestAllowEmails_AUserIsAdmittedThroughAnyOfTheirAccounts(t *testing.T) {
	e, _ := newLinkEnv(t, "", "") // corp signs in as u1@example.com, verified
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	if resp, _ := b.connectCorp(e); resp.StatusCode != http.StatusOK {
		t.Fatalf("connecting corp: status %d", resp.StatusCode)
	}
	if err := e.Load(options{Global: e.corp + "\n\t\tallow_emails ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	// Signed in again through corp, whose own address is not admitted: the
	// user holds ada@example.com, verified through the dev account.
	other := newBrowser(t)
	resp, _ := other.follow(other.get(location(t, other.startSignIn(e, "/", "corp"))))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in through corp: status %d", resp.StatusCode)
	}
	if got := other.me(e)["id"]; got != b.me(e)["id"] {
		t.Errorf("corp signed in user %v, want ada's %v", got, b.me(e)["id"])
	}
}

func TestAllowEmails_ANewIdentityAtAnOIDCProviderIsRefused(t *testing.T) {
	e, _ := newLinkEnv(t, "", "") // corp signs in as u1@example.com, verified
	if err := e.Load(options{Global: e.corp + "\n\t\tallow_emails ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	resp, page := b.follow(b.get(location(t, b.startSignIn(e, "/", "corp"))))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "u1@example.com (your Corp account) is not one of them") {
		t.Errorf("a new corp identity: status %d\n%s", resp.StatusCode, page)
	}
}

func TestAllowEmails_ConfigErrorsNameTheRule(t *testing.T) {
	e := newEnv(t, options{})
	for _, tc := range []struct {
		o    options
		want string
	}{
		{options{Global: "allow_emails example.com"}, `allow_emails: "example.com" is neither an address (ada@example.com) nor a domain (*@example.com)`},
		{options{Global: "allow_emails ada@example.com *@"}, `allow_emails: "*@" is neither`},
		{options{Global: "allow_emails"}, "wrong argument count"},
	} {
		if err := e.Load(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.o.Global, err, tc.want)
		}
	}
	e.handler = "allow_emails a*b@example.com"
	if err := e.Load(options{}); err == nil || !strings.Contains(err.Error(), `allow_emails: "a*b@example.com": an address has no *`) {
		t.Errorf("route rule with a *: %v", err)
	}
}

func TestAllowEmails_NativeSignInsAreRefusedToo(t *testing.T) {
	e, a := newAppleEnv(t)
	if err := e.Load(options{Global: e.corp + "\n\t\tapi_key " + apiKey + "\n\t\tallow_emails *@admitted.example"}); err != nil {
		t.Fatal(err)
	}
	app := newNativeApp()
	nonce := issueNonce(t, e, app)
	claims := map[string]any{"aud": appleBundle, "nonce": hexSHA256(nonce)}
	status, out := postJSON(t, e.Base+"/_auth/native/apple", map[string]any{"id_token": a.idToken(claims), "code": a.mintCode(claims),
		"nonce": nonce, "code_verifier": app.verifier})
	errs, _ := out["errors"].([]any)
	if status != http.StatusForbidden || len(errs) != 1 || errs[0].(map[string]any)["code"] != "not_admitted" || out["session_token"] != nil {
		t.Fatalf("native sign-in of an address not admitted: %d %v", status, out)
	}
	if n := userCount(t, e); n != 0 {
		t.Errorf("%d users after a refused native sign-up, want 0", n)
	}
}

// groupsEnv runs the gateway with the dev provider and one oidc provider
// per op, each reading the groups claim; global are extra lines of the
// socialgate global option.
func groupsEnv(t *testing.T, ops map[string]*testop.Server, global string) *env {
	e := &env{t: t, Storage: t.TempDir(), Upstream: newUpstream(t), port: testkit.FreePort(t), devPort: testkit.FreePort(t)}
	e.Base = fmt.Sprintf("http://127.0.0.1:%d", e.port)
	e.DevURL = fmt.Sprintf("http://127.0.0.1:%d", e.devPort)
	for name, op := range ops {
		e.corp += fmt.Sprintf("provider oidc %s {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret test-secret\n\t\t\tfields {\n\t\t\t\tgroups groups\n\t\t\t}\n\t\t}\n\t\t", name, op.URL())
	}
	if err := e.Load(options{Global: e.corp + global}); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	e.stopAtCleanup()
	return e
}

// identityClaims verifies an identity token with the gateway's JWKS and
// returns its claims.
func identityClaims(t *testing.T, b *browser, e *env, raw string) map[string]any {
	t.Helper()
	_, body := b.get(e.Base + "/_auth/.well-known/jwks.json")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v", err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("X-Auth-Jwt: %v", err)
	}
	claims := map[string]any{}
	if err := tok.Claims(set.Keys[0].Key, &claims); err != nil {
		t.Fatalf("X-Auth-Jwt does not verify: %v", err)
	}
	return claims
}

// signInWith signs a new browser in through an auto-approving testop
// provider and returns the browser and the final status.
func signInWith(t *testing.T, e *env, provider string) (*browser, int) {
	b := newBrowser(t)
	resp, _ := b.follow(b.get(location(t, b.startSignIn(e, "/", provider))))
	return b, resp.StatusCode
}

func claimsWith(sub, email string, groups ...any) map[string]any {
	return map[string]any{"sub": sub, "email": email, "email_verified": true, "name": sub, "groups": groups}
}

func TestAllowGroups_AGroupAdmitsOnlyFromTheProviderTheRuleNames(t *testing.T) {
	corp := startOP(t, testop.Options{Claims: claimsWith("c1", "c1@corp.example", "staff", "admins")})
	// hr sends the groups in userinfo only, as one string.
	hr := startOP(t, testop.Options{Claims: claimsWith("h1", "h1@hr.example"), UserinfoOnly: []string{"groups"}})
	hr.SetClaims(map[string]any{"sub": "h1", "email": "h1@hr.example", "email_verified": true, "groups": "admins"})
	// forum lets its users name their own groups: its "admins" proves nothing.
	forum := startOP(t, testop.Options{Claims: claimsWith("f1", "f1@forum.example", "admins")})
	e := groupsEnv(t, map[string]*testop.Server{"corp": corp, "hr": hr, "forum": forum},
		"api_key "+apiKey+"\n\t\tallow_groups corp:admins hr:admins")

	b, status := signInWith(t, e, "corp")
	if status != http.StatusOK {
		t.Fatalf("corp admin (groups in the id_token): status %d", status)
	}
	if groups := accountsOf(b.me(e))[0]["groups"]; fmt.Sprint(groups) != "[staff admins]" {
		t.Errorf("the account's groups = %v, want [staff admins]", groups)
	}
	// The upstream learns them, and a client cannot add its own.
	req, _ := http.NewRequest(http.MethodGet, e.Base+"/", nil)
	req.Header.Set("X-Auth-User-Groups", "forum:admins")
	req.Header.Set("X_Auth_User_Groups", "forum:admins")
	b.do(req)
	up := e.Upstream.Last(t)
	if got := up.Values("X-Auth-User-Groups"); len(got) != 1 || got[0] != "corp:staff,corp:admins" {
		t.Errorf("X-Auth-User-Groups upstream = %q, want [corp:staff,corp:admins]", got)
	}
	if got := identityClaims(t, b, e, up.Get("X-Auth-Jwt"))["groups"]; fmt.Sprint(got) != "[corp:staff corp:admins]" {
		t.Errorf("the identity token's groups = %v", got)
	}
	if _, status := signInWith(t, e, "hr"); status != http.StatusOK {
		t.Errorf("hr admin (groups in userinfo, one string): status %d", status)
	}
	if _, status := signInWith(t, e, "forum"); status != http.StatusForbidden {
		t.Errorf("forum's own admins: status %d, want 403", status)
	}
	if resp, _ := newBrowser(t).signInDev(e, "/", ada); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a dev user without groups: status %d, want 403", resp.StatusCode)
	}
	if n := userCount(t, e); n != 2 {
		t.Errorf("%d users, want the corp and hr admins", n)
	}
}

func TestAllowGroups_ARouteSeesTheGroupsOfTheLastSignIn(t *testing.T) {
	corp := startOP(t, testop.Options{Claims: claimsWith("c1", "c1@corp.example", "staff")})
	e := groupsEnv(t, map[string]*testop.Server{"corp": corp}, "")
	if err := e.Load(options{Global: e.corp, Site: "route /admin/* {\n\t\tsocialgate {\n\t\t\tallow_groups corp:admins\n\t\t}\n\t}"}); err != nil {
		t.Fatal(err)
	}
	b, _ := signInWith(t, e, "corp")
	if resp, _ := b.get(e.Base + "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("/: status %d", resp.StatusCode)
	}
	if resp, _ := b.get(e.Base + "/admin/"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("/admin/ as staff: status %d, want 403", resp.StatusCode)
	}
	// Made an admin at the provider: the next sign-in brings the group.
	corp.SetClaims(claimsWith("c1", "c1@corp.example", "staff", "admins"))
	again, _ := signInWith(t, e, "corp")
	if resp, _ := again.get(e.Base + "/admin/"); resp.StatusCode != http.StatusOK {
		t.Errorf("/admin/ after signing in as an admin: status %d", resp.StatusCode)
	}
}

func TestAllowGroups_ConfigErrorsNameTheRule(t *testing.T) {
	corp := startOP(t, testop.Options{})
	e := groupsEnv(t, map[string]*testop.Server{"corp": corp}, "")
	for global, want := range map[string]string{
		"allow_groups admins":        `allow_groups: "admins" is not provider:group (corp:admins)`,
		"allow_groups nope:admins":   `allow_groups: "nope:admins": no provider named nope is configured`,
		"allow_groups":               "wrong argument count",
		"allow_groups corp:a corp: ": `allow_groups: "corp:" is not provider:group`,
	} {
		if err := e.Load(options{Global: e.corp + global}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", global, err, want)
		}
	}
}
