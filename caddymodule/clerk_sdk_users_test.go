package caddymodule_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
	"github.com/clerk/clerk-sdk-go/v2/jwt"
	"github.com/clerk/clerk-sdk-go/v2/user"
)

// Clerk's Go SDK manages users as an app written against Clerk does:
// create (and the first sign-in that asserts the address joins the
// user), update, merge metadata, list with filters and count, lock and
// unlock (the gateway refuses the sign-in meanwhile), delete; and its JWT
// package verifies the gateway's identity token with the keys of
// GET /jwks. Each result is decoded and checked, on both stores.
func TestClerkGoSDK_ManagesUsers(t *testing.T) {
	for _, storage := range storages {
		t.Run(storage, func(t *testing.T) { clerkGoSDKUsers(t, storage) })
	}
}

func clerkGoSDKUsers(t *testing.T, storage string) {
	e, op := clerkEnv(t, storage)
	users := user.NewClient(clerkConfig(e))
	ctx := context.Background()
	raw := func(s string) *json.RawMessage { m := json.RawMessage(s); return &m }

	grace, err := users.Create(ctx, &user.CreateParams{EmailAddresses: &[]string{"grace@example.com"},
		FirstName: clerk.String("Grace"), LastName: clerk.String("Hopper"), Username: clerk.String("grace_h"),
		ExternalID: clerk.String("crm-2"), SkipPasswordRequirement: clerk.Bool(true),
		PublicMetadata:  raw(`{"plan":"pro","prefs":{"theme":"dark","lang":"en"}}`),
		PrivateMetadata: raw(`{"stripe":"cus_1"}`)})
	if err != nil {
		t.Fatalf("user.Create: %v", err)
	}
	if deref(grace.FirstName) != "Grace" || deref(grace.LastName) != "Hopper" || deref(grace.Username) != "grace_h" ||
		deref(grace.ExternalID) != "crm-2" || len(grace.EmailAddresses) != 1 || len(grace.ExternalAccounts) != 0 ||
		grace.EmailAddresses[0].EmailAddress != "grace@example.com" || grace.EmailAddresses[0].Verification.Status != "verified" ||
		deref(grace.PrimaryEmailAddressID) != grace.EmailAddresses[0].ID || grace.LastSignInAt != nil ||
		compact(grace.PublicMetadata) != `{"plan":"pro","prefs":{"lang":"en","theme":"dark"}}` || compact(grace.PrivateMetadata) != `{"stripe":"cus_1"}` {
		t.Fatalf("user.Create decoded %+v", grace)
	}
	_, err = users.Create(ctx, &user.CreateParams{EmailAddresses: &[]string{"GRACE@example.com"}})
	wantAPIError(t, "user.Create with a taken address", err, http.StatusUnprocessableEntity, "form_identifier_exists")
	_, err = users.Create(ctx, &user.CreateParams{Password: clerk.String("hunter2hunter2")})
	wantAPIError(t, "user.Create with a password", err, http.StatusUnprocessableEntity, "form_param_unknown")

	// The first sign-in of a provider that asserts the address joins the
	// user created for it.
	op.SetClaims(map[string]any{"sub": "grace", "email": "grace@example.com", "email_verified": true, "name": "Grace Hopper"})
	b := newBrowser(t)
	signInCorp(b, e)
	if id := b.me(e)["id"]; id != grace.ID {
		t.Fatalf("the sign-in with grace@example.com is user %v, not the created %s", id, grace.ID)
	}

	updated, err := users.Update(ctx, grace.ID, &user.UpdateParams{FirstName: clerk.String("Amazing Grace"), Username: clerk.String("grace_b")})
	if err != nil || deref(updated.FirstName) != "Amazing Grace" || deref(updated.LastName) != "Hopper" || deref(updated.Username) != "grace_b" ||
		len(updated.ExternalAccounts) != 1 || updated.ExternalAccounts[0].Provider != "oauth_custom_corp" || updated.LastSignInAt == nil {
		t.Errorf("user.Update: %+v %v", updated, err)
	}
	merged, err := users.UpdateMetadata(ctx, grace.ID, &user.UpdateMetadataParams{PublicMetadata: raw(`{"prefs":{"lang":null,"font":"mono"},"seats":3}`)})
	if err != nil || compact(merged.PublicMetadata) != `{"plan":"pro","prefs":{"font":"mono","theme":"dark"},"seats":3}` ||
		compact(merged.PrivateMetadata) != `{"stripe":"cus_1"}` {
		t.Errorf("user.UpdateMetadata: %s %s %v", merged.PublicMetadata, merged.PrivateMetadata, err)
	}
	// The upstream's identity token carries the merged public metadata at
	// once, never the private.
	if status, _ := b.get(e.Base + "/inbox"); status.StatusCode != http.StatusOK {
		t.Fatalf("grace's session: %d", status.StatusCode)
	}
	token := e.Upstream.Last(t).Get("X-Auth-Jwt")
	if claims := identityClaims(t, b, e, token); compact(mustRaw(claims["public_metadata"])) != compact(merged.PublicMetadata) || claims["private_metadata"] != nil {
		t.Errorf("identity token claims %v", claims)
	}

	ada, err := users.Create(ctx, &user.CreateParams{EmailAddresses: &[]string{"ada@example.org"}, FirstName: clerk.String("Ada"), Username: clerk.String("ada_l")})
	if err != nil {
		t.Fatalf("user.Create: %v", err)
	}
	for _, tc := range []struct {
		name   string
		params user.ListParams
		want   []string
		total  int64
	}{
		{"all", user.ListParams{}, []string{ada.ID, grace.ID}, 2},
		{"oldest first, paged", user.ListParams{OrderBy: clerk.String("+created_at"), ListParams: clerk.ListParams{Limit: clerk.Int64(1)}}, []string{grace.ID}, 2},
		{"second page", user.ListParams{OrderBy: clerk.String("created_at"), ListParams: clerk.ListParams{Limit: clerk.Int64(1), Offset: clerk.Int64(1)}}, []string{ada.ID}, 2},
		{"by address", user.ListParams{EmailAddresses: []string{"Grace@Example.com"}}, []string{grace.ID}, 1},
		{"by ids", user.ListParams{UserIDs: []string{ada.ID, "user_nobody"}}, []string{ada.ID}, 1},
		{"by external id", user.ListParams{ExternalIDs: []string{"crm-2"}}, []string{grace.ID}, 1},
		{"by username", user.ListParams{Usernames: []string{"ada_l", "grace_b"}, OrderBy: clerk.String("-username")}, []string{grace.ID, ada.ID}, 2},
		{"by query", user.ListParams{Query: clerk.String("hopp")}, []string{grace.ID}, 1},
		{"none", user.ListParams{Query: clerk.String("nobody-at-all")}, nil, 0},
	} {
		list, err := users.List(ctx, &tc.params)
		var got []string
		if err == nil {
			for _, u := range list.Users {
				got = append(got, u.ID)
			}
		}
		if err != nil || !slices.Equal(got, tc.want) || list.TotalCount != tc.total {
			t.Errorf("user.List %s: %v (total %v) %v, want %v (total %d)", tc.name, got, list, err, tc.want, tc.total)
		}
		if count, err := users.Count(ctx, &tc.params); err != nil || count.TotalCount != tc.total || count.Object != "total_count" {
			t.Errorf("user.Count %s: %+v %v, want %d", tc.name, count, err, tc.total)
		}
	}
	_, err = users.List(ctx, &user.ListParams{PhoneNumbers: []string{"+15550100"}})
	wantAPIError(t, "user.List by phone number", err, http.StatusUnprocessableEntity, "form_param_unknown")

	// A locked user cannot sign in until unlocked; its session goes on.
	locked, err := users.Lock(ctx, grace.ID)
	if err != nil || !locked.Locked || locked.Banned || locked.LockoutExpiresInSeconds != nil {
		t.Errorf("user.Lock: %+v %v", locked, err)
	}
	if resp, _ := b.get(e.Base + "/inbox"); resp.StatusCode != http.StatusOK {
		t.Errorf("the lock ended grace's session: %d", resp.StatusCode)
	}
	if resp, body := signInCorp(newBrowser(t), e); resp.StatusCode != http.StatusForbidden || !bytes.Contains([]byte(body), []byte("locked")) {
		t.Errorf("a locked user signed in: %d %.200s", resp.StatusCode, body)
	}
	if unlocked, err := users.Unlock(ctx, grace.ID); err != nil || unlocked.Locked {
		t.Errorf("user.Unlock: %+v %v", unlocked, err)
	}
	if resp, body := signInCorp(newBrowser(t), e); resp.StatusCode != http.StatusOK {
		t.Errorf("the unlocked user cannot sign in: %d %.200s", resp.StatusCode, body)
	}

	// GET /jwks: the keys Clerk's JWT package verifies the identity token with.
	keys := jwks.NewClient(clerkConfig(e))
	set, err := keys.Get(ctx, &jwks.GetParams{})
	if err != nil || len(set.Keys) == 0 || set.Keys[0].Algorithm != "ES256" || set.Keys[0].KeyID == "" || set.Keys[0].Key == nil {
		t.Fatalf("jwks.Get: %+v %v", set, err)
	}
	claims, err := jwt.Verify(ctx, &jwt.VerifyParams{Token: token, JWKSClient: keys, ProxyURL: clerk.String("socialgate")})
	if err != nil || claims.Subject != grace.ID || claims.SessionID == "" {
		t.Errorf("jwt.Verify of the identity token: %+v %v", claims, err)
	}
	if _, err := jwt.Verify(ctx, &jwt.VerifyParams{Token: token[:len(token)-4] + "AAAA", JWKSClient: keys, ProxyURL: clerk.String("socialgate")}); err == nil {
		t.Error("jwt.Verify accepted a token with a broken signature")
	}

	del, err := users.Delete(ctx, ada.ID)
	if err != nil || del.Object != "user" || del.ID != ada.ID || !del.Deleted {
		t.Errorf("user.Delete: %+v %v", del, err)
	}
	_, err = users.Get(ctx, ada.ID)
	wantAPIError(t, "user.Get of a deleted user", err, http.StatusNotFound, "resource_not_found")
	_, err = users.Update(ctx, ada.ID, &user.UpdateParams{FirstName: clerk.String("Ada")})
	wantAPIError(t, "user.Update of a deleted user", err, http.StatusNotFound, "resource_not_found")
}

// compact is JSON without spaces, its object keys sorted.
func compact(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func mustRaw(v any) json.RawMessage {
	out, _ := json.Marshal(v)
	return out
}
