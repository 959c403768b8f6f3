package caddymodule_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/redirecturl"
	"github.com/clerk/clerk-sdk-go/v2/session"
	"github.com/clerk/clerk-sdk-go/v2/user"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
	"github.com/socialgate/socialgate/internal/testkit"
)

// clerkEnv is a gateway with the provider corp, trusted to link by email
// (a user the API created joins its first sign-in), and the API key, on
// storage "badger" or "postgres" (a PostgreSQL server of its own).
func clerkEnv(t *testing.T, storage string) (*env, *testop.Server) {
	t.Helper()
	e, op := newTokenEnv(t, "")
	e.corp = strings.Replace(e.corp, "client_secret test-secret", "client_secret test-secret\n\t\t\tlink_by_email on", 1)
	global := e.corp
	if storage == "postgres" {
		global += fmt.Sprintf("\n\t\tstorage postgres {\n\t\t\tdsn %q\n\t\t\tsecret %s\n\t\t}", testkit.OwnPostgres(t), pgSecret)
	}
	if err := e.Load(options{Global: global, NoDev: true}); err != nil {
		t.Fatal(err)
	}
	return e, op
}

// clerkConfig points Clerk's Go SDK at the gateway's backend API, with the
// API key as its secret key, as an app that moves from Clerk does.
func clerkConfig(e *env) *clerk.ClientConfig {
	return &clerk.ClientConfig{BackendConfig: clerk.BackendConfig{URL: clerk.String(e.Base + "/_auth/api/v1"), Key: clerk.String(apiKey)}}
}

// storages are the stores the Clerk SDK tests run on.
var storages = []string{"badger", "postgres"}

// Clerk's own Go SDK (a test-only dependency) against the gateway: each
// call decodes what the gateway answers, on both stores. User management
// is in TestClerkGoSDK_ManagesUsers.
func TestClerkGoSDK_CallsDecodeTheGatewaysAnswers(t *testing.T) {
	for _, storage := range storages {
		t.Run(storage, func(t *testing.T) { clerkGoSDKCalls(t, storage) })
	}
}

func clerkGoSDKCalls(t *testing.T, storage string) {
	e, op := clerkEnv(t, storage)
	b := newBrowser(t)
	op.SetClaims(map[string]any{"sub": "ada", "email": "ada@example.com", "email_verified": true, "name": "Ada King Lovelace"})
	signInCorp(b, e)
	userID := b.me(e)["id"].(string)
	cfg := clerkConfig(e)
	users, sessions, redirects := user.NewClient(cfg), session.NewClient(cfg), redirecturl.NewClient(cfg)
	ctx := context.Background()

	u, err := users.Get(ctx, userID)
	if err != nil {
		t.Fatalf("user.Get: %v", err)
	}
	if u.ID != userID || deref(u.FirstName) != "Ada" || deref(u.LastName) != "King Lovelace" || u.Banned || u.Locked ||
		len(u.EmailAddresses) != 1 || len(u.ExternalAccounts) != 1 || u.PhoneNumbers == nil || u.LastSignInAt == nil {
		t.Fatalf("user.Get decoded %+v", u)
	}
	email, eac := u.EmailAddresses[0], u.ExternalAccounts[0]
	if deref(u.PrimaryEmailAddressID) != email.ID || email.EmailAddress != "ada@example.com" ||
		email.Verification.Status != "verified" || email.Verification.Strategy != "from_oauth_custom_corp" ||
		len(email.LinkedTo) != 1 || email.LinkedTo[0].ID != eac.ID || email.LinkedTo[0].Type != "oauth_custom_corp" {
		t.Errorf("email address %+v (verification %+v)", email, email.Verification)
	}
	if eac.Provider != "oauth_custom_corp" || eac.IdentificationID != email.ID || eac.ProviderUserID != "ada" ||
		eac.FirstName != "Ada" || eac.Verification.Status != "verified" {
		t.Errorf("external account %+v", eac)
	}

	for _, provider := range []string{"oauth_custom_corp", "corp", "custom_corp"} {
		list, err := users.ListOAuthAccessTokens(ctx, &user.ListOAuthAccessTokensParams{ID: userID, Provider: provider})
		if err != nil || list.TotalCount != 1 || list.OAuthAccessTokens[0].Token == "" || list.OAuthAccessTokens[0].ExternalAccountID != eac.ID {
			t.Errorf("user.ListOAuthAccessTokens(%s): %+v %v", provider, list, err)
		}
	}
	_, err = users.ListOAuthAccessTokens(ctx, &user.ListOAuthAccessTokensParams{ID: userID, Provider: "oauth_github"})
	wantAPIError(t, "tokens of a provider that is not configured", err, http.StatusNotFound, "resource_not_found")
	_, err = users.Get(ctx, "user_nosuch")
	wantAPIError(t, "user.Get of an unknown user", err, http.StatusNotFound, "resource_not_found")

	created, err := redirects.Create(ctx, &redirecturl.CreateParams{URL: clerk.String("myapp://oauth-callback")})
	if err != nil || created.Object != "redirect_url" || created.URL != "myapp://oauth-callback" {
		t.Fatalf("redirecturl.Create: %+v %v", created, err)
	}
	if got, err := redirects.Get(ctx, created.ID); err != nil || got.URL != created.URL {
		t.Errorf("redirecturl.Get: %+v %v", got, err)
	}
	if list, err := redirects.List(ctx, &redirecturl.ListParams{}); err != nil || list.TotalCount != 1 || list.RedirectURLs[0].ID != created.ID {
		t.Errorf("redirecturl.List: %+v %v", list, err)
	}
	if del, err := redirects.Delete(ctx, created.ID); err != nil || !del.Deleted || del.ID != created.ID || del.Object != "redirect_url" {
		t.Errorf("redirecturl.Delete: %+v %v", del, err)
	}
	_, err = redirects.Create(ctx, &redirecturl.CreateParams{URL: clerk.String("javascript:alert(1)")})
	wantAPIError(t, "an invalid redirect URL", err, http.StatusUnprocessableEntity, "form_param_format_invalid")

	list, err := sessions.List(ctx, &session.ListParams{UserID: clerk.String(userID), Status: clerk.String("active")})
	if err != nil || list.TotalCount != 1 || list.Sessions[0].UserID != userID || list.Sessions[0].Status != "active" ||
		list.Sessions[0].ClientID == "" || list.Sessions[0].ExpireAt == 0 || list.Sessions[0].AbandonAt == 0 {
		t.Fatalf("session.List: %+v %v", list, err)
	}
	got, err := sessions.Get(ctx, list.Sessions[0].ID)
	if err != nil || got.ID != list.Sessions[0].ID || got.UserID != userID || got.Status != "active" || got.ClientID != list.Sessions[0].ClientID ||
		got.LastActiveAt == 0 || got.ExpireAt <= got.LastActiveAt || got.AbandonAt < got.ExpireAt {
		t.Errorf("session.Get: %+v %v", got, err)
	}
	if ended, err := sessions.List(ctx, &session.ListParams{UserID: clerk.String(userID), Status: clerk.String("ended")}); err != nil || ended.TotalCount != 0 || len(ended.Sessions) != 0 {
		t.Errorf("session.List of ended sessions: %+v %v", ended, err)
	}
	revoked, err := sessions.Revoke(ctx, &session.RevokeParams{ID: list.Sessions[0].ID})
	if err != nil || revoked.Status != "revoked" || revoked.ID != list.Sessions[0].ID {
		t.Errorf("session.Revoke: %+v %v", revoked, err)
	}
	if status, _ := apiGet(t, b.c, e.Base+"/private", nil); status != http.StatusUnauthorized {
		t.Errorf("the revoked session still works: %d", status)
	}
	_, err = sessions.Get(ctx, list.Sessions[0].ID)
	wantAPIError(t, "session.Get of a revoked session", err, http.StatusNotFound, "resource_not_found")

	if del, err := users.DeleteExternalAccount(ctx, &user.DeleteExternalAccountParams{UserID: userID, ID: eac.ID}); err != nil || !del.Deleted || del.ID != eac.ID {
		t.Errorf("user.DeleteExternalAccount: %+v %v", del, err)
	}
	if del, err := users.Delete(ctx, userID); err != nil || !del.Deleted || del.ID != userID || del.Object != "user" {
		t.Errorf("user.Delete: %+v %v", del, err)
	}
}

// wantAPIError checks that err is Clerk's error shape as the SDK decodes
// it: the status, the first error's code, a message and a trace id.
func wantAPIError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var apiErr *clerk.APIErrorResponse
	if !errors.As(err, &apiErr) {
		t.Errorf("%s: %v, want Clerk's error shape", what, err)
		return
	}
	if apiErr.HTTPStatusCode != status || len(apiErr.Errors) != 1 || apiErr.Errors[0].Code != code ||
		apiErr.Errors[0].LongMessage == "" || apiErr.TraceID == "" {
		t.Errorf("%s: %d %+v (trace %q), want %d %s", what, apiErr.HTTPStatusCode, apiErr.Errors, apiErr.TraceID, status, code)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
