package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/internal/testkit"
)

// The gateway page shows which providers answer, each webhook endpoint's
// backlog and last error, the native redirect URLs (added and removed with
// the API's validation, audited), the sign-ins of the last days and the
// active sessions.
func TestConsole_GatewayPage(t *testing.T) {
	h := newHookReceiver(t)
	h.setDown(true)
	dead := testkit.FreePort(t)
	e := consoleEnv(t, "badger", fmt.Sprintf("provider oidc gone {\n\t\t\tissuer http://127.0.0.1:%d\n\t\t\tclient_id c\n\t\t\tclient_secret s\n\t\t}", dead)+
		webhookBlock("app", h, hookSecret, "retain 24h"))
	admin := consoleUser(t, e, "Ada Lovelace", "ada@example.com")
	consoleUser(t, e, "Bob", "bob@example.com")
	actor := "console:" + userIDOf(t, e, admin)
	page := "/_auth/admin/gateway"
	waitFor(t, "a failed delivery", func() bool { return len(h.all()) >= 1 })

	var html string
	waitFor(t, "the delivery error on the page", func() bool {
		_, html = admin.get(e.Base + page)
		return strings.Contains(html, "the endpoint answered 503")
	})
	for _, want := range []string{"Dev provider", "answers", "gone", "does not answer", "<svg", "Sign-ins per day over the last 14 days: 2 in all",
		"Active sessions: 2"} {
		if !strings.Contains(html, want) {
			t.Errorf("the gateway page lacks %q:\n%s", want, html)
		}
	}
	if backlog := between(html, "<div class=\"muted\">"+h.srv.URL+"/hooks</div></td><td>", "<"); backlog == "" || backlog == "0" {
		t.Errorf("webhook backlog %q, want the undelivered events", backlog)
	}

	// Redirect URLs: the API's validation, then add and remove.
	resp, body := consolePost(t, e, admin, page, page+"/redirect-urls/add", url.Values{"url": {"javascript:alert(1)"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Not added") {
		t.Errorf("adding javascript:alert(1): status %d", resp.StatusCode)
	}
	resp, _ = consolePost(t, e, admin, page, page+"/redirect-urls/add", url.Values{"url": {"otherapp://cb"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("adding a redirect URL: status %d", resp.StatusCode)
	}
	_, html = admin.get(e.Base + page)
	id := between(html, `name="id" value="`, `"`)
	if !strings.Contains(html, "otherapp://cb") || id == "" {
		t.Fatalf("the added redirect URL is not listed:\n%s", html)
	}
	wantAudit(t, e, "redirect_url.create", actor, "", id)
	resp, _ = consolePost(t, e, admin, page, page+"/redirect-urls/delete", url.Values{"id": {id}})
	if _, html = admin.get(e.Base + page); resp.StatusCode != http.StatusSeeOther || strings.Contains(html, "otherapp://cb") {
		t.Errorf("removing the redirect URL: status %d", resp.StatusCode)
	}
	wantAudit(t, e, "redirect_url.delete", actor, "", id)

	// Webhook replay.
	resp, _ = consolePost(t, e, admin, page, page+"/webhooks/replay", url.Values{"endpoint": {"app"}, "hours": {"1"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("replay: status %d", resp.StatusCode)
	}
	wantAudit(t, e, "webhook.replay", actor, "", "app")
	for _, form := range []url.Values{{"endpoint": {"app"}, "hours": {"a"}}, {"endpoint": {"app"}, "hours": {"100"}}} {
		if resp, _ := consolePost(t, e, admin, page, page+"/webhooks/replay", form); resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("replay %v: status %d", form, resp.StatusCode)
		}
	}
	if resp, _ := consolePost(t, e, admin, page, page+"/webhooks/replay", url.Values{"endpoint": {"nope"}, "hours": {"1"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("replay of an unknown endpoint: status %d", resp.StatusCode)
	}
}
