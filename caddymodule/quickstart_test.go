package caddymodule_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/internal/testkit"
)

// quickStart runs Caddyfile.example as the README's quick start does, with
// its ports moved to free loopback ports, its store in a temporary directory
// and a debug log (with the filter of docs/operations.md) that the leak check reads. Its upstream is the example's
// own demo app, so env.Upstream is nil.
func quickStart(t *testing.T) *env {
	t.Helper()
	e, config := quickStartConfig(t)
	if err := loadCaddyfile(config); err != nil {
		t.Fatalf("loading Caddyfile.example: %v\n%s", err, config)
	}
	e.settle()
	e.stopAtCleanup()
	return e
}

// quickStartConfig is quickStart's env and config, not loaded yet.
func quickStartConfig(t *testing.T) (*env, string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, Storage: t.TempDir(), port: testkit.FreePort(t), devPort: testkit.FreePort(t)}
	e.Base = fmt.Sprintf("http://127.0.0.1:%d", e.port)
	e.DevURL = fmt.Sprintf("http://127.0.0.1:%d", e.devPort)
	app := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	config := string(src)
	for _, r := range []struct {
		old, new string
		n        int // how many to replace; -1 for all
	}{
		{"localhost:8080", e.Base[len("http://"):], -1},
		{"localhost:9999", e.DevURL[len("http://"):], -1},
		{"127.0.0.1:8081", app, -1},
		{"http://:8081", "http://" + app, -1},
		// The first block is the global options, and the first socialgate
		// block in it the app.
		{"\n{\n", fmt.Sprintf("\n{\n\tadmin off\n\tpersist_config off\n\tstorage file_system %[1]s/caddy\n\tlog {\n\t\toutput file %[1]s/debug.log\n\t\tlevel DEBUG\n\t\t%[2]s\n\t}\n", e.Storage, logFilter(t)), 1},
		{"\tsocialgate {\n", fmt.Sprintf("\tsocialgate {\n\t\tstorage %s/socialgate\n", e.Storage), 1},
	} {
		if !strings.Contains(config, r.old) {
			t.Fatalf("Caddyfile.example has no %q any more: update quickStart", r.old)
		}
		config = strings.Replace(config, r.old, r.new, r.n)
	}
	return e, config
}

// The quick start shows linking end to end, offline: sign in with dev,
// connect the dev provider's second identity, Corp, from the account page,
// grant it repo when /repos asks (incremental authorization), disconnect it.
func TestQuickStart_SignInConnectGrantDisconnect(t *testing.T) {
	e := quickStart(t)
	b := newBrowser(t)

	// Corp is connect-only: the sign-in page offers dev alone, and a
	// sign-in started through Corp anyway is refused.
	if _, page := b.get(e.Base + "/_auth/sign-in"); !strings.Contains(page, "/oauth/dev/start") || strings.Contains(page, "/oauth/corp/start") {
		t.Fatalf("the sign-in page should offer dev and not corp:\n%s", page)
	}
	if resp, _ := b.post(e.Base+"/_auth/oauth/corp/start", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("signing in through connect-only corp: status %d, want 403", resp.StatusCode)
	}

	resp, page := b.signInDev(e, "/", ada)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Hello, Ada Lovelace") {
		t.Fatalf("after sign-in: status %d:\n%s", resp.StatusCode, page)
	}
	page, csrf := b.accountPage(e)
	if !strings.Contains(page, "Connect Corp") {
		t.Fatalf("the account page offers no Connect Corp:\n%s", page)
	}

	// Connect Corp, as Ada there too: a distinct identity of its own.
	resp, body := b.post(e.Base+"/_auth/account/connect", url.Values{"csrf_token": {csrf}, "provider": {"corp"}})
	authURL := location(t, resp)
	if !strings.HasPrefix(authURL, e.DevURL+"/corp/authorize?") {
		t.Fatalf("Connect Corp sent the browser to %s, want the dev provider's corp", authURL)
	}
	resp, body, corpPage := b.atDevProvider(authURL, ada)
	if strings.Contains(corpPage, "<code>repo</code>") {
		t.Error("connecting asked for repo already: it is to be asked for only where needed")
	}
	if _, page = b.follow(resp, body); !strings.Contains(page, "Account connected.") {
		t.Fatalf("after connecting Corp:\n%s", page)
	}
	me := b.me(e)
	accounts := accountsOf(me)
	if len(accounts) != 2 || accounts[0]["provider"] != "oauth_custom_dev" || accounts[1]["provider"] != "oauth_custom_corp" {
		t.Fatalf("accounts = %v, want dev and corp", accounts)
	}
	dev, corp := accounts[0], accounts[1]
	if dev["email_address"] != "ada@example.com" || corp["email_address"] != "ada@example.com" ||
		dev["provider_user_id"] == corp["provider_user_id"] || !strings.HasPrefix(corp["provider_user_id"].(string), "corp-") {
		t.Errorf("dev subject %v, corp subject %v: want Ada at both, with distinct subjects", dev["provider_user_id"], corp["provider_user_id"])
	}
	if strings.Contains(corp["approved_scopes"].(string), "repo") {
		t.Errorf("corp approved %q at connect, want no repo yet", corp["approved_scopes"])
	}

	// /repos needs repo: the browser is sent to grant it, one click away.
	reauthorize := func() string {
		t.Helper()
		resp, _ := b.get(e.Base + "/repos")
		target := location(t, resp)
		if !strings.HasPrefix(target, e.Base+"/_auth/reauthorize?") || !strings.Contains(target, "scopes=repo") {
			t.Fatalf("/repos without repo sent the browser to %s, want the reauthorize page", target)
		}
		_, page := b.get(target)
		form := url.Values{"return_to": {"/repos"}, "scopes": {"repo"}}
		for _, field := range []string{"csrf_token", "provider", "account_id"} {
			form.Set(field, html.UnescapeString(between(page, `name="`+field+`" value="`, `"`)))
		}
		resp, _ = b.post(e.Base+"/_auth/account/reauthorize", form)
		authURL := location(t, resp)
		if q, _ := url.Parse(authURL); !strings.HasPrefix(authURL, e.DevURL+"/corp/authorize?") || !strings.Contains(q.Query().Get("scope"), "repo") {
			t.Fatalf("reauthorize sent the browser to %s, want corp asked for repo", authURL)
		}
		return authURL
	}

	// Coming back as someone else at Corp changes nothing.
	resp, body, _ = b.atDevProvider(reauthorize(), url.Values{"user": {"grace"}})
	if resp, _ = b.follow(resp, body); resp.StatusCode != http.StatusConflict {
		t.Errorf("reauthorizing as Grace: status %d, want 409", resp.StatusCode)
	}
	if resp, _ := b.get(e.Base + "/repos"); resp.StatusCode != http.StatusFound {
		t.Fatalf("/repos after a refused reauthorization: status %d, want a redirect", resp.StatusCode)
	}

	resp, body, corpPage = b.atDevProvider(reauthorize(), ada)
	if !strings.Contains(corpPage, "<code>repo</code>") {
		t.Error("the dev provider's page does not show that repo is asked for")
	}
	if resp, page = b.follow(resp, body); resp.StatusCode != http.StatusOK || !strings.Contains(page, "You reached /repos") {
		t.Fatalf("after granting repo: status %d:\n%s", resp.StatusCode, page)
	}
	if after := accountsOf(b.me(e)); len(after) != 2 || after[1]["id"] != corp["id"] ||
		!strings.Contains(after[1]["approved_scopes"].(string), "repo") {
		t.Errorf("accounts after granting repo = %v, want the same corp account, with repo", after)
	}

	// Disconnect Corp: /repos asks again, for a connection this time.
	_, csrf = b.accountPage(e)
	resp, body = b.post(e.Base+"/_auth/account/disconnect", url.Values{"csrf_token": {csrf}, "account_id": {corp["id"].(string)}})
	if _, page = b.follow(resp, body); !strings.Contains(page, "Account disconnected.") || !strings.Contains(page, "Connect Corp") {
		t.Fatalf("after disconnecting Corp:\n%s", page)
	}
	if got := accountsOf(b.me(e)); len(got) != 1 || got[0]["provider"] != "oauth_custom_dev" {
		t.Errorf("accounts after the disconnect = %v, want dev only", got)
	}
	resp, _ = b.get(e.Base + "/repos")
	if target := location(t, resp); !strings.HasPrefix(target, e.Base+"/_auth/reauthorize?") {
		t.Errorf("/repos after the disconnect sent the browser to %s, want the reauthorize page", target)
	}

	// The dev provider's warning names both issuers.
	log, _ := os.ReadFile(filepath.Join(e.Storage, "debug.log"))
	if !strings.Contains(string(log), "the dev provider is running") || !strings.Contains(string(log), e.DevURL+"/corp") {
		t.Error("the debug log lacks the dev provider's warning with both issuers")
	}
}
