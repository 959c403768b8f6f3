package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestAPI_UsersAndSessions(t *testing.T) {
	e, op := newTokenEnv(t, "")
	alice, bob := newBrowser(t), newBrowser(t)
	op.SetClaims(map[string]any{"sub": "alice", "email": "alice@example.com", "email_verified": true, "name": "Alice"})
	signInCorp(alice, e)
	op.SetClaims(map[string]any{"sub": "bob", "email": "Bob@Example.com", "email_verified": true, "name": "Bob"})
	signInCorp(bob, e)
	aliceID := alice.me(e)["id"].(string)

	status, _, body := apiCall(t, e, "GET", "/users?limit=1&paginated=true")
	page := body.(map[string]any)
	if status != http.StatusOK || page["total_count"] != float64(2) || len(page["data"].([]any)) != 1 {
		t.Fatalf("list: %d %v", status, body)
	}
	if first := page["data"].([]any)[0].(map[string]any); first["name"] != "Bob" {
		t.Errorf("newest first: got %v", first["name"])
	}
	status, _, body = apiCall(t, e, "GET", "/users?email_address=bob@example.com")
	if list := body.([]any); status != http.StatusOK || len(list) != 1 || list[0].(map[string]any)["name"] != "Bob" {
		t.Errorf("email filter: %d %v", status, body)
	}
	status, _, body = apiCall(t, e, "GET", "/users/"+aliceID)
	if u := body.(map[string]any); status != http.StatusOK || u["object"] != "user" || u["id"] != aliceID {
		t.Errorf("get: %d %v", status, body)
	}
	if strings.Contains(mustJSON(t, body), "access_token") {
		t.Error("the user object carries token material")
	}
	if status, _, _ := apiCall(t, e, "GET", "/users/user_doesnotexist"); status != http.StatusNotFound {
		t.Errorf("unknown user: %d", status)
	}

	status, _, body = apiCall(t, e, "GET", "/sessions?user_id="+aliceID)
	sessions := body.([]any)
	if status != http.StatusOK || len(sessions) != 1 {
		t.Fatalf("sessions: %d %v", status, body)
	}
	sessID := sessions[0].(map[string]any)["id"].(string)
	status, _, body = apiCall(t, e, "POST", "/sessions/"+sessID+"/revoke")
	if status != http.StatusOK || body.(map[string]any)["status"] != "revoked" {
		t.Fatalf("revoke: %d %v", status, body)
	}
	if status, _ := apiGet(t, alice.c, e.Base+"/private", nil); status != http.StatusUnauthorized {
		t.Errorf("a revoked session still works: %d", status)
	}

	bobID := bob.me(e)["id"].(string)
	eacID := accountsOf(bob.me(e))[0]["id"].(string)
	if status, _, _ := apiCall(t, e, "DELETE", "/users/"+aliceID+"/external_accounts/"+eacID); status != http.StatusNotFound {
		t.Errorf("deleting another user's account: %d, want 404", status)
	}
	status, _, _ = apiCall(t, e, "DELETE", "/users/"+bobID)
	if status != http.StatusOK {
		t.Fatalf("delete user: %d", status)
	}
	if status, _ := apiGet(t, bob.c, e.Base+"/private", nil); status != http.StatusUnauthorized {
		t.Errorf("a deleted user's session still works: %d", status)
	}
	if status, _, _ := apiCall(t, e, "GET", "/users/"+bobID); status != http.StatusNotFound {
		t.Errorf("deleted user still found: %d", status)
	}
}

func TestHealth_AndProviderReachability(t *testing.T) {
	e, _ := newTokenEnv(t, "")
	e.corp += "\n\t\tprovider oidc down {\n\t\t\tissuer http://127.0.0.1:1\n\t\t\tclient_id x\n\t\t}"
	if err := e.Load(options{Global: e.corp, NoDev: true}); err != nil {
		t.Fatal(err)
	}
	status, body := apiGet(t, http.DefaultClient, e.Base+"/_auth/health", nil)
	if status != http.StatusOK || body["status"] != "ok" {
		t.Fatalf("health: %d %v", status, body)
	}
	status, _, list := apiCall(t, e, "GET", "/providers")
	if status != http.StatusOK {
		t.Fatalf("providers: %d", status)
	}
	got := map[string]any{}
	for _, p := range list.([]any) {
		item := p.(map[string]any)
		got[item["name"].(string)] = item["reachable"]
	}
	if got["corp"] != true || got["down"] != false {
		t.Errorf("reachability = %v, want corp true and down false", got)
	}
}
