package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
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
		{person("Mallory", "mallory@example.com", false), "your Dev provider account has no verified address among them"},
	} {
		b := newBrowser(t)
		resp, page := b.signInDev(e, "/", tc.who)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(htmlUnescape(page), tc.want) {
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
	if err := e.Load(o); err != nil {
		t.Fatal(err)
	}
	served := len(e.Upstream.Requests())
	resp, page := adaB.get(e.Base + "/")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "no verified email address that this page admits") ||
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

	// The page's sign-out button works: ada can then sign in as someone else.
	csrf := htmlUnescape(between(page, `name="csrf_token" value="`, `"`))
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
	body, _ := json.Marshal(map[string]any{"provider": "apple", "nonce": "n",
		"id_token": a.idToken(map[string]any{"aud": appleBundle, "nonce": "n"})})
	resp, err := http.Post(e.Base+"/_auth/native/id_token", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	errs, _ := out["errors"].([]any)
	if resp.StatusCode != http.StatusForbidden || len(errs) != 1 || errs[0].(map[string]any)["code"] != "not_admitted" || out["session_token"] != nil {
		t.Fatalf("native sign-in of an address not admitted: %d %v", resp.StatusCode, out)
	}
	if n := userCount(t, e); n != 0 {
		t.Errorf("%d users after a refused native sign-up, want 0", n)
	}
}
