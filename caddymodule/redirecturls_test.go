package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
	"github.com/socialgate/socialgate/internal/testkit"
)

// nativeStartStatus is the gateway's answer to a native sign-in start for
// redirectURL: a redirect to the provider when the URL is allowlisted, 400
// when not.
func nativeStartStatus(t *testing.T, e *env, redirectURL string) int {
	t.Helper()
	q := url.Values{"redirect_url": {redirectURL}, "code_challenge": {newNativeApp().challenge}}
	resp, _ := newBrowser(t).get(e.Base + "/_auth/oauth/corp/start?" + q.Encode())
	return resp.StatusCode
}

// pgSecret is the storage secret of the PostgreSQL gateways of these tests.
const pgSecret = "redirect-urls-test-secret-0123456789abcdef"

// openPostgres opens the store another gateway with pgSecret uses on dsn.
func openPostgres(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	keys, err := keyring.FromSecret([]byte(pgSecret))
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, EncryptionKey: keys.StoreKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestRedirectURLs_PagedAndFollowedAtOnce: GET /redirect_urls returned the
// whole list whatever limit said (32 MB with 20,000 URLs), and every native
// start read and parsed the whole list. The API now pages like /users, and
// the allowlist, compiled once per change, follows every change at the next
// start: through this gateway's API on both stores, and on PostgreSQL
// through another gateway sharing the database.
func TestRedirectURLs_PagedAndFollowedAtOnce(t *testing.T) {
	for _, storage := range []string{"badger", "postgres"} {
		t.Run(storage, func(t *testing.T) {
			e, _ := newTokenEnv(t, "")
			var other store.Store // another gateway's store, on PostgreSQL
			if storage == "postgres" {
				dsn := testkit.OwnPostgres(t)
				pg := fmt.Sprintf("storage postgres {\n\t\t\tdsn %q\n\t\t\tsecret %s\n\t\t}", dsn, pgSecret)
				if err := e.Load(options{Global: e.corp + "\n\t\t" + pg, NoDev: true}); err != nil {
					t.Fatal(err)
				}
				other = openPostgres(t, dsn)
			}
			ids := map[string]string{}
			urls := []string{"app0://cb", "app1://cb", "app2://cb", "app3://cb", "http://127.0.0.1:4000/native-cb"}
			for _, u := range urls {
				status, out := apiPost(t, e, "/redirect_urls", fmt.Sprintf(`{"url":%q}`, u))
				if status != http.StatusOK {
					t.Fatalf("POST %s: %d %v", u, status, out)
				}
				ids[u] = out["id"].(string)
			}
			listed := func(v any) string {
				var got []string
				for _, item := range v.([]any) {
					got = append(got, item.(map[string]any)["url"].(string))
				}
				return strings.Join(got, " ")
			}

			for _, tt := range []struct {
				query string
				want  string // the URLs listed, or the status of a refused query
			}{
				{"", strings.Join(urls, " ")},
				{"?limit=1", "app0://cb"},
				{"?limit=2&offset=1", "app1://cb app2://cb"},
				{"?offset=4", urls[4]},
				{"?offset=9", ""},
				{"?limit=0", "400"},
				{"?limit=501", "400"},
				{"?offset=-1", "400"},
				{"?limit=x", "400"},
			} {
				status, _, out := apiCall(t, e, http.MethodGet, "/redirect_urls"+tt.query)
				switch {
				case status == http.StatusOK && listed(out) == tt.want:
				case status != http.StatusOK && fmt.Sprint(status) == tt.want && strings.Contains(mustJSON(t, out), "limit"):
				default:
					t.Errorf("GET /redirect_urls%s: %d %s, want %s", tt.query, status, mustJSON(t, out), tt.want)
				}
			}
			status, _, out := apiCall(t, e, http.MethodGet, "/redirect_urls?limit=2&offset=3&paginated=true")
			page, _ := out.(map[string]any)
			if status != http.StatusOK || page["total_count"] != float64(len(urls)) || listed(page["data"]) != strings.Join(urls[3:], " ") {
				t.Errorf("paginated: %d %s, want {data: the last two, total_count: %d}", status, mustJSON(t, out), len(urls))
			}

			for _, step := range []struct {
				name   string
				change func()
				url    string
				want   int
			}{
				{"allowlisted", nil, "app2://cb", http.StatusSeeOther},
				{"loopback on another port", nil, "http://127.0.0.1:51234/native-cb", http.StatusSeeOther},
				{"not allowlisted", nil, "app9://cb", http.StatusBadRequest},
				{"removed through the API", func() {
					if status, _, _ := apiCall(t, e, http.MethodDelete, "/redirect_urls/"+ids["app2://cb"]); status != http.StatusOK {
						t.Fatalf("DELETE: %d", status)
					}
				}, "app2://cb", http.StatusBadRequest},
				{"added through the API", func() { apiPost(t, e, "/redirect_urls", `{"url":"app9://cb"}`) }, "app9://cb", http.StatusSeeOther},
			} {
				if step.change != nil {
					step.change()
				}
				if got := nativeStartStatus(t, e, step.url); got != step.want {
					t.Errorf("%s: native start for %s answered %d, want %d", step.name, step.url, got, step.want)
				}
			}
			if other == nil {
				return
			}
			ctx := context.Background()
			if err := other.DeleteRedirectURL(ctx, ids["app3://cb"]); err != nil {
				t.Fatal(err)
			}
			if got := nativeStartStatus(t, e, "app3://cb"); got != http.StatusBadRequest {
				t.Errorf("removed by another gateway: native start answered %d, want 400 at once", got)
			}
			if _, err := other.CreateRedirectURL(ctx, "app7://cb"); err != nil {
				t.Fatal(err)
			}
			if got := nativeStartStatus(t, e, "app7://cb"); got != http.StatusSeeOther {
				t.Errorf("added by another gateway: native start answered %d, want 303 at once", got)
			}
		})
	}
}
