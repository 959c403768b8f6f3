package caddymodule_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

const corpIdentity = "provider corp {\n\t\t\t\tdisplay_name Corp\n\t\t\t\tsign_in off\n\t\t\t\tgrants repo\n\t\t\t}"

func TestDevProvider_ConfigErrorsNameTheProblem(t *testing.T) {
	e := newEnv(t, options{})
	cases := []struct {
		name, dev, global, want string
	}{
		{"provider without a name", "provider", "", "dev_provider: provider needs a name, like provider corp"},
		{"upper-case name", "provider Corp", "", `dev_provider: provider: the name "Corp" is not lowercase letters, digits and '-'`},
		{"name with a slash", "provider corp/x", "", `the name "corp/x" is not lowercase letters`},
		{"the dev provider's own name", "provider dev", "", "the name dev is the dev provider's own; choose another, like corp"},
		{"defined twice", "provider corp\n provider corp", "", "dev_provider: provider corp is defined twice"},
		{"two names", "provider corp other", "", "wrong argument count"},
		{"scopes instead of grants", "provider corp {\n scopes repo\n }", "", "the scopes it grants when asked for are set with grants <scope...>"},
		{"unknown option", "provider corp {\n colour blue\n }", "", `unrecognized option "colour" in dev_provider provider corp`},
		{"grants without a scope", "provider corp {\n grants\n }", "", "wrong argument count"},
		{"a scope with a space", "provider corp {\n grants \"read write\"\n }", "", `dev_provider: provider corp: grants: scope "read write": only printable ASCII`},
		{"bad sign_in", "provider corp {\n sign_in maybe\n }", "", `sign_in: want on or off, got "maybe"`},
		{"a provider block of the same name", "provider corp", "provider oidc corp {\n issuer https://idp.example.com\n client_id x\n }", "provider corp: the name is used twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e.Load(options{Dev: tc.dev, Global: tc.global})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}

	// A JSON config gets the same checks at load.
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(e.Caddyfile(options{})), nil)
	if err != nil {
		t.Fatal(err)
	}
	jsonCases := []struct {
		name, providers, want string
	}{
		{"upper-case name", `[{"name": "Corp"}]`, `dev_provider: provider: the name "Corp" is not lowercase letters`},
		{"empty name", `[{}]`, `the name "" is not lowercase letters`},
		{"defined twice", `[{"name": "corp"}, {"name": "corp"}]`, "dev_provider: provider corp is defined twice"},
		{"a bad scope", `[{"name": "corp", "grants": ["read\"write"]}]`, `dev_provider: provider corp: grants: scope "read\"write"`},
	}
	for _, tc := range jsonCases {
		t.Run("JSON "+tc.name, func(t *testing.T) {
			var cfg map[string]any
			json.Unmarshal(adapted, &cfg)
			app := cfg["apps"].(map[string]any)["socialgate"].(map[string]any)
			var providers any
			json.Unmarshal([]byte(tc.providers), &providers)
			app["dev_provider"].(map[string]any)["providers"] = providers
			raw, _ := json.Marshal(cfg)
			if err := caddy.Load(raw, true); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}

	// Failed loads leave nothing behind: a good config with Corp loads.
	if err := e.Load(options{Dev: corpIdentity}); err != nil {
		t.Fatalf("a good config after the failures: %v", err)
	}
	if resp, _ := newBrowser(t).signInDev(e, "/", ada); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in after failed loads: status %d", resp.StatusCode)
	}
}

// A reload keeps the dev provider's identities that it leaves as they are
// (their keys and live tokens), and follows what changed: a new identity, or
// a new store whose keys derive other client secrets.
func TestDevProvider_ReloadKeepsUnchangedIdentitiesAndFollowsChanges(t *testing.T) {
	e := newEnv(t, options{})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	devKey := jwksKid(t, e.DevURL)

	if err := e.Load(options{Dev: corpIdentity}); err != nil {
		t.Fatal(err)
	}
	if got := jwksKid(t, e.DevURL); got != devKey {
		t.Errorf("adding corp replaced dev's signing key %s with %s", devKey, got)
	}
	corpKey := jwksKid(t, e.DevURL+"/corp")
	if resp, page := b.connectDev(e, "corp"); !strings.Contains(page, "Account connected.") {
		t.Fatalf("connecting corp after the reload: status %d", resp.StatusCode)
	}
	if err := e.Load(options{Dev: corpIdentity, Global: "app_name Reloaded"}); err != nil {
		t.Fatal(err)
	}
	if got := jwksKid(t, e.DevURL+"/corp"); got != corpKey {
		t.Errorf("an unrelated reload replaced corp's signing key %s with %s", corpKey, got)
	}

	// Another store: the gateway derives other client secrets, and the dev
	// provider must expect them.
	if err := e.Load(options{Dev: corpIdentity, Global: "storage " + t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	b2 := newBrowser(t)
	if resp, _ := b2.signInDev(e, "/", ada); resp.StatusCode != http.StatusOK {
		t.Fatalf("signing in with dev after the store changed: status %d", resp.StatusCode)
	}
	if _, page := b2.connectDev(e, "corp"); !strings.Contains(page, "Account connected.") {
		t.Fatalf("connecting corp after the store changed:\n%s", page)
	}
}

// connectDev presses Connect on the account page for one of the dev
// provider's identities and signs in there as Ada.
func (b *browser) connectDev(e *env, name string) (*http.Response, string) {
	b.t.Helper()
	_, csrf := b.accountPage(e)
	resp, _ := b.post(e.Base+"/_auth/account/connect", map[string][]string{"csrf_token": {csrf}, "provider": {name}})
	resp, body, _ := b.atDevProvider(location(b.t, resp), ada)
	return b.follow(resp, body)
}

// jwksKid returns the key id of the only key an issuer publishes.
func jwksKid(t *testing.T, issuer string) string {
	t.Helper()
	resp, err := http.Get(issuer + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var set struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("GET %s/jwks: status %d, %s", issuer, resp.StatusCode, body)
	}
	return set.Keys[0].Kid
}
