package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
)

const testKey = "sk_test_routes_0123456789abcdef0123456789"

// The routes, their methods and the error shapes: every answer is JSON,
// a route with another method or path is Clerk's resource_not_found, and
// each operation's error has its Clerk code.
func TestRoutes(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	res, err := st.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "dev", Issuer: "https://idp.example",
		Subject: "ada", Email: "ada@example.com", EmailVerified: true,
		Tokens: store.TokenSet{AccessToken: "at", RefreshToken: "rt", Expiry: time.Now().Add(-time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	ada, eac := res.User.ID, res.Account.ID
	sess := &store.Session{UserID: ada, ExpiresAt: time.Now().Add(time.Hour)}
	if err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	a := api.New(api.Options{Keys: []string{testKey}, Ops: ops.New(ops.Options{Store: st, Providers: configured("dev", "github"),
		Tokens: tokens.New(tokens.Options{Store: st, Providers: func(string) (tokens.Refresher, bool) { return nil, false }})})})

	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string // the error's code; "" for a success
	}{
		{"GET", "/users", "", 200, ""},
		{"GET", "/users/", "", 200, ""}, // a trailing slash, as before
		{"GET", "/users?paginated=true&limit=500", "", 200, ""},
		{"GET", "/users?limit=501", "", 400, "form_param_invalid"},
		{"GET", "/users?offset=-1", "", 400, "form_param_invalid"},
		{"GET", "/users/" + ada, "", 200, ""},
		{"GET", "/users/user_nobody", "", 404, "resource_not_found"},
		{"GET", "/users//" + ada, "", 404, "resource_not_found"}, // no redirect to the clean path
		{"GET", "/users/" + ada + "/../" + ada, "", 404, "resource_not_found"},
		{"PUT", "/users/" + ada, "", 404, "resource_not_found"},  // not ServeMux's 405
		{"HEAD", "/users/" + ada, "", 404, "resource_not_found"}, // not a GET without its body
		{"get", "/users/" + ada, "", 404, "resource_not_found"},
		{"GET", "/nothing", "", 404, "resource_not_found"},
		{"GET", "/", "", 404, "resource_not_found"},
		{"GET", "/users/" + ada + "/oauth_access_tokens/oauth_custom_dev", "", 503, "oauth_provider_unavailable"}, // cannot refresh
		{"GET", "/users/" + ada + "/oauth_access_tokens/oauth_github", "", 200, ""},
		{"GET", "/users/" + ada + "/oauth_access_tokens/oauth_gitlab", "", 404, "resource_not_found"}, // not configured
		{"GET", "/users/user_nobody/oauth_access_tokens/dev", "", 404, "resource_not_found"},
		{"GET", "/sessions", "", 400, "form_param_missing"},
		{"GET", "/sessions?user_id=" + ada, "", 200, ""},
		{"POST", "/sessions/sess_nobody/revoke", "", 404, "resource_not_found"},
		{"POST", "/sessions/" + sess.ID + "/revoke", "", 200, ""},
		{"POST", "/redirect_urls", `{"url":"javascript:alert(1)"}`, 422, "form_param_format_invalid"},
		{"POST", "/redirect_urls", `{"url":`, 400, "invalid_request_body"},
		{"POST", "/redirect_urls", `{"url":"myapp://cb"}`, 200, ""},
		{"GET", "/redirect_urls/ru_nobody", "", 404, "resource_not_found"},
		{"GET", "/webhooks", "", 200, ""},
		{"POST", "/webhooks/app/replay", `{}`, 422, "form_param_missing"},
		{"POST", "/webhooks/app/replay", `{"event_id":"usr_1"}`, 422, "form_param_format_invalid"},
		{"POST", "/webhooks/app/replay", `{"since":1}`, 404, "resource_not_found"},
		{"GET", "/providers", "", 200, ""},
		{"DELETE", "/users/" + ada + "/external_accounts/eac_nobody", "", 404, "resource_not_found"},
		{"DELETE", "/users/" + ada + "/external_accounts/" + eac, "", 200, ""},
		{"DELETE", "/users/" + ada, "", 200, ""},
		{"DELETE", "/users/" + ada, "", 404, "resource_not_found"},
	} {
		path, query, _ := strings.Cut(tc.path, "?")
		r := httptest.NewRequest(tc.method, "/_auth/api/v1"+tc.path, strings.NewReader(tc.body))
		r.Header.Set("Authorization", "Bearer "+testKey)
		r.Header.Set("Content-Type", "application/json")
		r.URL.RawQuery = query
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r, path)
		var body struct {
			Errors []struct{ Code, Message string } `json:"errors"`
		}
		if w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, w.Header().Get("Content-Type"))
		}
		json.Unmarshal(w.Body.Bytes(), &body)
		code := ""
		if len(body.Errors) == 1 {
			code = body.Errors[0].Code
		}
		if w.Code != tc.status || code != tc.code {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, w.Code, w.Body, tc.status, tc.code)
		}
	}

	w := httptest.NewRecorder()
	a.ServeHTTP(w, httptest.NewRequest("GET", "/_auth/api/v1/users", nil), "/users")
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "authentication_invalid") {
		t.Errorf("without a key: %d %s", w.Code, w.Body)
	}
}
