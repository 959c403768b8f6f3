package caddymodule_test

import (
	"fmt"
	"html"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// newHostileEnv runs the gateway on a store (see onBothStores) with one
// OIDC provider, corp, that reads groups and can be told to send anything,
// the API key, and a webhook to h.
func newHostileEnv(t *testing.T, storage string, h *hookReceiver) (*env, *testop.Server) {
	// Large claims go to userinfo only, as providers do (OIDC Core 5.4).
	op := startOP(t, testop.Options{UserinfoOnly: []string{"email", "name", "preferred_username", "picture", "groups"}})
	e := newEnv(t, options{NoDev: true, Global: storage + fmt.Sprintf(`
		provider oidc corp {
			issuer %s
			client_id test-client
			client_secret test-secret
			fields {
				groups groups
			}
		}
		api_key %s`, op.URL(), apiKey) + webhookBlock("app", h, hookSecret)})
	return e, op
}

// hostile is n characters with some of what escapes worst in JSON and HTML.
func hostile(n int) string { return strings.Repeat(`ab<&é`, n/5) }

// A provider that sends a name of 200,000 characters, a username and a
// picture URL of 50,000, and thousands of groups, signs the person in with them cut to
// their documented bounds: the webhook, the API's user, the account page and
// the upstream's headers stay small.
func TestHostileProvider_HugeDisplayFieldsAreCutToTheirBounds(t *testing.T) {
	onBothStores(t, func(t *testing.T, storage string) {
		h := newHookReceiver(t)
		e, op := newHostileEnv(t, storage, h)
		var groups []any
		for i := range 3000 {
			groups = append(groups, fmt.Sprintf("team-%04d-%s", i, hostile(10)))
		}
		op.SetClaims(map[string]any{"sub": "huge-1", "email": "huge@example.com", "email_verified": true,
			"name": "Ada " + hostile(200_000), "preferred_username": hostile(50_000),
			"picture": "https://img.example/" + strings.Repeat("a", 50_000), "groups": groups})
		b := newBrowser(t)
		resp, body := signInCorp(b, e)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in: %d %.300s", resp.StatusCode, body)
		}
		up := e.Upstream.Last(t)
		name := up.Get("X-Auth-User-Name")
		if !strings.HasPrefix(name, "Ada ab<&é") || len(name) > provider.MaxName || !utf8.ValidString(name) {
			t.Errorf("X-Auth-User-Name is %d bytes (%.40q…), want the name cut to %d at a character boundary", len(name), name, provider.MaxName)
		}
		if jwt := up.Get("X-Auth-Jwt"); len(jwt) > assertion.MaxTokenSize {
			t.Errorf("X-Auth-Jwt is %d bytes, over %d", len(jwt), assertion.MaxTokenSize)
		}
		headers := 0
		for k, v := range up {
			headers += len(k) + len(strings.Join(v, ""))
		}
		t.Logf("the upstream's headers: %d bytes (X-Auth-Jwt %d)", headers, len(up.Get("X-Auth-Jwt")))
		if headers > 12<<10 {
			t.Errorf("the upstream's headers take %d bytes: Node refuses a request past 16 KiB", headers)
		}

		me := b.me(e)
		status, _, user := apiCall(t, e, "GET", "/users/"+me["id"].(string))
		apiSize := len(mustJSON(t, user))
		_, page := b.get(e.Base + "/_auth/account")
		waitFor(t, "the sign-in's events", func() bool { return len(h.delivered()) >= 3 })
		hookSize := 0
		for _, d := range h.delivered() {
			hookSize = max(hookSize, len(d.Body))
		}
		t.Logf("sizes: API user %d bytes, account page %d bytes, largest webhook %d bytes", apiSize, len(page), hookSize)
		if status != http.StatusOK || apiSize > 32<<10 || len(page) > 32<<10 || hookSize > 32<<10 {
			t.Errorf("API user (%d) %d bytes, account page %d bytes, largest webhook %d bytes: want each under 32 KiB", status, apiSize, len(page), hookSize)
		}
		account := accountsOf(me)[0]
		if u, _ := account["username"].(string); len(u) > provider.MaxUsername || !utf8.ValidString(u) {
			t.Errorf("the username is %d bytes, want it cut to %d at a character boundary", len(u), provider.MaxUsername)
		}
		if img, _ := account["image_url"].(string); img != "" {
			t.Errorf("a picture URL of 50,000 characters was kept (%d): cut short it would point nowhere", len(img))
		}
	})
}

// A provider whose identity is longer than the gateway keeps (a subject
// past OpenID Connect's 255 bytes, a 70 KB email address), or whose ID
// token carries a 300 KB profile, gets the sign-in refused with a page that
// says so, and one whose email holds a NUL byte gets it refused too: no 500
// (Badger's key and transaction limits, PostgreSQL's text), no user.
func TestHostileProvider_OversizedIdentitiesAreRefusedClearly(t *testing.T) {
	onBothStores(t, func(t *testing.T, storage string) {
		e, op := newHostileEnv(t, storage, newHookReceiver(t))
		for _, tc := range []struct {
			name   string
			claims map[string]any
			status int
			want   string
		}{
			{"a subject of 1,000 bytes", map[string]any{"sub": strings.Repeat("s", 1000)}, http.StatusUnprocessableEntity,
				"Your corp account's subject is longer than this site accepts (1000 bytes; at most 255)"},
			{"an email address of 70,000 bytes", map[string]any{"sub": "long-email", "email": strings.Repeat("e", 70_000) + "@example.com"},
				http.StatusUnprocessableEntity, "Your corp account's email address is longer than this site accepts (70012 bytes; at most 254)"},
			{"a profile of 300 KB in the ID token", map[string]any{"sub": "long-profile", "bio": strings.Repeat("b", 300_000)},
				http.StatusUnprocessableEntity, "Your corp account's id token is longer than this site accepts"},
			{"an email address with a NUL byte", map[string]any{"sub": "nul-email", "email": "a\x00b@example.com"},
				http.StatusBadGateway, "The answer from corp could not be verified"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				op.SetClaims(tc.claims)
				resp, page := signInCorp(newBrowser(t), e)
				if resp.StatusCode != tc.status || !strings.Contains(html.UnescapeString(page), tc.want) {
					t.Errorf("sign-in: %d, want %d saying %q:\n%s", resp.StatusCode, tc.status, tc.want, between(page, "<main", "</main>"))
				}
			})
		}
		if status, _, users := apiCall(t, e, "GET", "/users"); status != http.StatusOK || len(users.([]any)) != 0 {
			t.Errorf("after refused sign-ins: %d %v, want no user", status, users)
		}
	})
}
