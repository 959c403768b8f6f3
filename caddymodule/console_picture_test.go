package caddymodule_test

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// The operator console loads no picture a provider chose: a user's page
// shows initials and the picture's URL as text, and the console's CSP
// allows no remote image. Found open by a red-team run: the console loaded
// https://attacker.example/track.png?u=1, telling its server which operator
// opened which user's page, and when. The person's own account page may
// show their own provider's picture.
func TestConsole_LoadsNoProviderPicture(t *testing.T) {
	const tracker = "https://tracker.example/p.png?u=eve"
	op := startOP(t, testop.Options{Claims: map[string]any{"sub": "eve", "name": "Eve Tracker", "email": "eve@example.net",
		"email_verified": true, "picture": tracker}})
	e := consoleEnv(t, "badger", fmt.Sprintf("provider oidc corp {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret test-secret\n\t\t}", op.URL()))
	eve := newBrowser(t)
	eve.follow(eve.get(location(t, eve.startSignIn(e, "/", "corp"))))
	eveID := userIDOf(t, e, eve)
	admin := consoleUser(t, e, "Ada", "ada@example.com")

	resp, page := admin.get(e.Base + "/_auth/admin/users/" + eveID)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the console's page of the user: status %d", resp.StatusCode)
	}
	if strings.Contains(page, `src="`+template.HTMLEscapeString(tracker)) || strings.Contains(page, "<img class=\"avatar\"") {
		t.Error("the console page loads the provider's picture")
	}
	if !strings.Contains(page, template.HTMLEscapeString(tracker)) || !strings.Contains(page, ">ET</span>") {
		t.Error("the console page shows neither the picture's URL as text nor the initials")
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "img-src 'self' data:;") {
		t.Errorf("the console's CSP %q allows remote images", csp)
	}
	// The person's own page shows their own picture.
	if _, page := eve.get(e.Base + "/_auth/account"); !strings.Contains(page, `src="`+template.HTMLEscapeString(tracker)) {
		t.Error("the account page does not show the person's own picture")
	}
}
