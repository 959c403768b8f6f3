package caddymodule_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/session"
	"github.com/clerk/clerk-sdk-go/v2/user"
)

// A ban through Clerk's Go SDK takes effect at the gateway at once: the
// user's live session stops passing (browsers are sent to sign in, API
// clients get 401), a new sign-in is refused with a page that says why,
// and the upstream sees none of it. The unban lets the user sign in again,
// without bringing the ended session back. On both stores.
func TestClerkGoSDK_BanRefusesTheUserAtTheGateway(t *testing.T) {
	for _, storage := range storages {
		t.Run(storage, func(t *testing.T) {
			e, op := clerkEnv(t, storage)
			op.SetClaims(map[string]any{"sub": "mallory", "email": "mallory@example.com", "email_verified": true, "name": "Mallory"})
			b := newBrowser(t)
			if resp, body := signInCorp(b, e); resp.StatusCode != http.StatusOK {
				t.Fatalf("sign-in: %d %.200s", resp.StatusCode, body)
			}
			userID := b.me(e)["id"].(string)
			cfg := clerkConfig(e)
			users, sessions := user.NewClient(cfg), session.NewClient(cfg)
			ctx := context.Background()

			banned, err := users.Ban(ctx, userID)
			if err != nil || !banned.Banned || banned.ID != userID || len(banned.ExternalAccounts) != 1 {
				t.Fatalf("user.Ban: %+v %v", banned, err)
			}
			seen := len(e.Upstream.Requests())
			if resp, _ := b.get(e.Base + "/inbox"); resp.StatusCode == http.StatusOK {
				t.Errorf("the banned user's browser session still passes")
			}
			if status, out := apiGet(t, b.c, e.Base+"/inbox", http.Header{"Accept": {"application/json"}}); status != http.StatusUnauthorized {
				t.Errorf("the banned user's session, as an API client: %d %v", status, out)
			}
			if list, err := sessions.List(ctx, &session.ListParams{UserID: clerk.String(userID)}); err != nil || list.TotalCount != 0 {
				t.Errorf("session.List after the ban: %+v %v", list, err)
			}
			again := newBrowser(t)
			resp, body := signInCorp(again, e)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "suspended") {
				t.Errorf("a banned user's sign-in: %d %.300s", resp.StatusCode, body)
			}
			if status, _ := apiGet(t, again.c, e.Base+"/_auth/me", nil); status != http.StatusUnauthorized {
				t.Errorf("the refused sign-in left a session: /_auth/me %d", status)
			}
			if n := len(e.Upstream.Requests()); n != seen {
				t.Errorf("the upstream saw %d requests of the banned user", n-seen)
			}
			if got, err := users.Get(ctx, userID); err != nil || !got.Banned {
				t.Errorf("user.Get after the ban: %+v %v", got, err)
			}

			unbanned, err := users.Unban(ctx, userID)
			if err != nil || unbanned.Banned {
				t.Fatalf("user.Unban: %+v %v", unbanned, err)
			}
			if resp, _ := b.get(e.Base + "/inbox"); resp.StatusCode == http.StatusOK {
				t.Errorf("the unban brought the ended session back")
			}
			if resp, body := signInCorp(newBrowser(t), e); resp.StatusCode != http.StatusOK || !strings.Contains(body, userID) {
				t.Errorf("the unbanned user's sign-in: %d %.200s", resp.StatusCode, body)
			}
		})
	}
}
