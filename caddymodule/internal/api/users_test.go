package api_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/store/cache"
)

// userAPI is an API on a fresh in-memory store seen through a cache that
// serves what it read within the hour (so an operation that leaves it
// stale shows), with the audit log.
type userAPI struct {
	t     *testing.T
	st    store.Store // the cached view
	api   *api.API
	audit *observer.ObservedLogs
}

func newUserAPI(t *testing.T) *userAPI {
	st, err := badger.Open(badger.Options{InMemory: true, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	core, logs := observer.New(zapcore.InfoLevel)
	u := &userAPI{t: t, st: cache.New(st, nil).Store(time.Hour), audit: logs}
	u.api = api.New(api.Options{Keys: []string{testKey}, JWKS: func() []byte { return []byte(`{"keys":[]}`) },
		Ops: ops.New(ops.Options{Store: u.st, Audit: audit.New(zap.New(core))})})
	return u
}

// call sends a request with the API key and returns the status and the
// decoded answer.
func (u *userAPI) call(method, path, contentType, body string) (int, map[string]any) {
	u.t.Helper()
	p, query, _ := strings.Cut(path, "?")
	r := httptest.NewRequest(method, "/_auth/api/v1"+path, strings.NewReader(body))
	r.URL.RawQuery = query
	r.Header.Set("Authorization", "Bearer "+testKey)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	u.api.ServeHTTP(w, r, p)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil && !strings.HasPrefix(w.Body.String(), "[") {
		u.t.Fatalf("%s %s: not JSON: %s", method, path, w.Body)
	}
	return w.Code, out
}

// create makes a user through the API and returns its id.
func (u *userAPI) create(body string) string {
	u.t.Helper()
	status, out := u.call("POST", "/users", "application/json", body)
	if status != 200 {
		u.t.Fatalf("POST /users %s: %d %v", body, status, out)
	}
	return out["id"].(string)
}

func errCode(out map[string]any) string {
	errs, _ := out["errors"].([]any)
	if len(errs) != 1 {
		return ""
	}
	return errs[0].(map[string]any)["code"].(string)
}

// Every body a route reads is one JSON object sent as JSON, with
// parameters socialgate knows (POST /redirect_urls takes a form too);
// anything else is a Clerk-shaped 4xx that says what is wrong, and
// changes nothing.
func TestRoutes_RefuseBadBodiesAndChangeNothing(t *testing.T) {
	u := newUserAPI(t)
	ada := u.create(`{"email_address":["ada@example.com"],"username":"ada_l","first_name":"Ada"}`)
	const js, text, form = "application/json", "text/plain", "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		method, path, ctype, body string
		status                    int
		code                      string
	}{
		{"POST", "/users", text, `{"first_name":"Grace"}`, 415, "unsupported_content_type"},
		{"POST", "/users", form, `first_name=Grace`, 415, "unsupported_content_type"},
		{"POST", "/users", "", `{"first_name":"Grace"}`, 415, "unsupported_content_type"},
		{"POST", "/users", "application/json; charset=utf-8", `{"first_name":"Grace","skip_password_requirement":true}`, 200, ""},
		{"POST", "/users", js, `{"first_name":`, 400, "invalid_request_body"},
		{"POST", "/users", js, `[{"first_name":"Grace"}]`, 400, "invalid_request_body"},
		{"POST", "/users", js, `{"first_name":"Grace"} {"first_name":"Eve"}`, 400, "invalid_request_body"},
		{"POST", "/users", js, `{"first_name":"Grace","password":"hunter2"}`, 422, "form_param_unknown"},
		{"POST", "/users", js, `{"phone_number":["+15550100"]}`, 422, "form_param_unknown"},
		{"POST", "/users", js, `{"first_name":5}`, 422, "form_param_format_invalid"},
		{"POST", "/users", js, `{"email_address":"grace@example.com"}`, 422, "form_param_format_invalid"},
		{"POST", "/users", js, `{"public_metadata":[1]}`, 422, "form_param_format_invalid"},
		{"POST", "/users", js, `{"private_metadata":"secret"}`, 422, "form_param_format_invalid"},
		{"POST", "/users", js, `{"email_address":["not-an-address"]}`, 422, "form_param_format_invalid"},
		{"POST", "/users", js, `{"email_address":["ADA@example.com"]}`, 422, "form_identifier_exists"},
		{"POST", "/users", js, `{"username":"ADA_L"}`, 422, "form_identifier_exists"},
		{"POST", "/users", js, `{"username":"a b"}`, 422, "form_param_format_invalid"},
		{"POST", "/users", js, `{"public_metadata":{"big":"` + strings.Repeat("x", 9000) + `"}}`, 422, "form_param_format_invalid"},
		{"POST", "/users", js, `{"first_name":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "request_body_too_large"},
		{"PATCH", "/users/" + ada, text, `{"first_name":"Augusta"}`, 415, "unsupported_content_type"},
		{"PATCH", "/users/" + ada, js, `{"totp_secret":"x"}`, 422, "form_param_unknown"},
		{"PATCH", "/users/user_nobody", js, `{"first_name":"Augusta"}`, 404, "resource_not_found"},
		{"PATCH", "/users/" + ada + "/metadata", form, `public_metadata=x`, 415, "unsupported_content_type"},
		{"PATCH", "/users/" + ada + "/metadata", js, `{"public_metadata":{"a":1},"first_name":"x"}`, 422, "form_param_unknown"},
		{"PUT", "/users/" + ada + "/metadata", js, `{"unsafe_metadata":true}`, 422, "form_param_format_invalid"},
		{"PATCH", "/users/user_nobody/metadata", js, `{"public_metadata":{"a":1}}`, 404, "resource_not_found"},
		{"POST", "/users/" + ada + "/ban", text, `ban please`, 415, "unsupported_content_type"},
		{"POST", "/users/" + ada + "/lock", js, `{"duration":60}`, 422, "form_param_unknown"},
		{"POST", "/users/user_nobody/ban", js, ``, 404, "resource_not_found"},
		{"GET", "/users?phone_number=%2B15550100", "", "", 422, "form_param_unknown"},
		{"GET", "/users/count?created_at_after=1", "", "", 422, "form_param_unknown"},
		{"GET", "/users?order_by=-phone_number", "", "", 422, "form_param_value_invalid"},
		{"GET", "/users/count?order_by=web3wallet", "", "", 422, "form_param_value_invalid"},
		{"GET", "/users?banned=maybe", "", "", 422, "form_param_format_invalid"},
		{"GET", "/sessions?user_id=" + ada + "&client_id=client_x", "", "", 422, "form_param_unknown"},
		{"GET", "/sessions?user_id=" + ada + "&status=sleeping", "", "", 422, "form_param_value_invalid"},
		{"GET", "/sessions/sess_nobody", "", "", 404, "resource_not_found"},
		{"POST", "/jwks", js, `{}`, 404, "resource_not_found"},
		{"POST", "/sessions/sess_nobody/revoke", text, `revoke it`, 415, "unsupported_content_type"},
		{"POST", "/redirect_urls", text, `{"url":"myapp://cb"}`, 415, "unsupported_content_type"},
		{"POST", "/webhooks/app/replay", text, `{"since":1}`, 415, "unsupported_content_type"},
		{"POST", "/webhooks/app/replay", form, `since=1`, 415, "unsupported_content_type"},
		{"POST", "/webhooks/app/replay", js, `{"since":1,"from":"now"}`, 422, "form_param_unknown"},
		{"POST", "/webhooks/app/replay", js, `{"event_id":"` + strings.Repeat("x", 70<<10) + `"}`, 413, "request_body_too_large"},
		{"POST", "/redirect_urls", js, `{"url":"myapp://` + strings.Repeat("x", 70<<10) + `"}`, 413, "request_body_too_large"},
		{"POST", "/redirect_urls", js, `{"url":"myapp://cb","allow":"all"}`, 422, "form_param_unknown"},
		{"POST", "/redirect_urls", form, `url=myapp%3A%2F%2F` + strings.Repeat("x", 70<<10), 422, "form_param_format_invalid"},
		{"POST", "/redirect_urls", form, `url=myapp%3A%2F%2Fcb`, 200, ""},
	} {
		before, _ := u.call("GET", "/users/"+ada, "", "")
		_, was := u.call("GET", "/users/"+ada, "", "")
		status, out := u.call(tc.method, tc.path, tc.ctype, tc.body)
		if status != tc.status || errCode(out) != tc.code {
			t.Errorf("%s %s %.60s: %d %v, want %d %s", tc.method, tc.path, tc.body, status, out, tc.status, tc.code)
		}
		if tc.status >= 400 {
			msg := ""
			if errs, _ := out["errors"].([]any); len(errs) == 1 {
				msg, _ = errs[0].(map[string]any)["message"].(string)
			}
			if len(msg) < 20 || strings.Contains(msg, "json:") {
				t.Errorf("%s %s: message %q is not a clear sentence", tc.method, tc.path, msg)
			}
			if _, now := u.call("GET", "/users/"+ada, "", ""); before != 200 || jsonText(now) != jsonText(was) {
				t.Errorf("%s %s: a refused request changed the user:\n%v\n%v", tc.method, tc.path, was, now)
			}
		}
	}
	if _, out := u.call("GET", "/redirect_urls?paginated=true", "", ""); out["total_count"] != 1.0 {
		t.Errorf("after refused creates and one accepted: %v, want 1 redirect URL", out)
	}
	if _, out := u.call("GET", "/users/count", "", ""); out["total_count"] != 2.0 || out["object"] != "total_count" {
		t.Errorf("after one refused create and one accepted: %v, want 2 users", out)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// PATCH /users/{id}/metadata deep-merges as Clerk documents it (objects
// merge key by key at any depth, null removes a key, anything else
// replaces); PUT replaces each object given; PATCH /users/{id} replaces
// the objects it is given. An object not given stays.
func TestUserMetadata_MergesAndReplacesLikeClerk(t *testing.T) {
	const start = `{"public_metadata":{"plan":"pro","prefs":{"theme":"dark","lang":"en","deep":{"a":1,"b":2}},"tags":[1,2]},` +
		`"private_metadata":{"stripe":"cus_1"},"unsafe_metadata":{"seen":true}}`
	for _, tc := range []struct {
		name, method, path, body string
		want                     string // the three objects afterwards
	}{
		{"merge adds, nests and removes", "PATCH", "/metadata", `{"public_metadata":{"prefs":{"lang":null,"deep":{"b":null,"c":3}},"seats":5}}`,
			`{"plan":"pro","prefs":{"deep":{"a":1,"c":3},"theme":"dark"},"seats":5,"tags":[1,2]}|{"stripe":"cus_1"}|{"seen":true}`},
		{"merge replaces arrays and scalars whole", "PATCH", "/metadata", `{"public_metadata":{"tags":[3],"prefs":"none"}}`,
			`{"plan":"pro","prefs":"none","tags":[3]}|{"stripe":"cus_1"}|{"seen":true}`},
		{"merge null at the top removes the key", "PATCH", "/metadata", `{"public_metadata":{"plan":null,"prefs":null,"tags":null}}`,
			`{}|{"stripe":"cus_1"}|{"seen":true}`},
		{"merge of a null object clears it", "PATCH", "/metadata", `{"private_metadata":null}`,
			`{"plan":"pro","prefs":{"deep":{"a":1,"b":2},"lang":"en","theme":"dark"},"tags":[1,2]}|{}|{"seen":true}`},
		{"merge of several objects", "PATCH", "/metadata", `{"private_metadata":{"stripe":null,"crm":7},"unsafe_metadata":{"seen":false}}`,
			`{"plan":"pro","prefs":{"deep":{"a":1,"b":2},"lang":"en","theme":"dark"},"tags":[1,2]}|{"crm":7}|{"seen":false}`},
		{"replace drops what is not given inside", "PUT", "/metadata", `{"public_metadata":{"prefs":{"theme":"light"}}}`,
			`{"prefs":{"theme":"light"}}|{"stripe":"cus_1"}|{"seen":true}`},
		{"replace with {} and null clears", "PUT", "/metadata", `{"public_metadata":{},"unsafe_metadata":null}`,
			`{}|{"stripe":"cus_1"}|{}`},
		{"update user replaces", "PATCH", "", `{"public_metadata":{"plan":"free"},"first_name":"Ada"}`,
			`{"plan":"free"}|{"stripe":"cus_1"}|{"seen":true}`},
		{"an empty merge changes nothing", "PATCH", "/metadata", `{}`,
			`{"plan":"pro","prefs":{"deep":{"a":1,"b":2},"lang":"en","theme":"dark"},"tags":[1,2]}|{"stripe":"cus_1"}|{"seen":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := newUserAPI(t)
			id := u.create(start)
			status, out := u.call(tc.method, "/users/"+id+tc.path, "application/json", tc.body)
			if status != 200 {
				t.Fatalf("%d %v", status, out)
			}
			_, again := u.call("GET", "/users/"+id, "", "")
			for _, o := range []map[string]any{out, again} {
				got := jsonText(o["public_metadata"]) + "|" + jsonText(o["private_metadata"]) + "|" + jsonText(o["unsafe_metadata"])
				if got != tc.want {
					t.Errorf("\n got %s\nwant %s", got, tc.want)
				}
			}
		})
	}
}

// The user list reads Clerk's filters (each repeatable, a user matching
// one value of each), query, banned and order_by; /users/count counts
// what the list would hold, whatever page is asked.
func TestUserList_FiltersOrdersAndCountsLikeClerk(t *testing.T) {
	u := newUserAPI(t)
	ada := u.create(`{"email_address":["ada@example.com"],"username":"ada_l","first_name":"Ada","last_name":"Lovelace","external_id":"crm-1"}`)
	grace := u.create(`{"email_address":["grace@example.com"],"username":"grace_h","first_name":"Grace","last_name":"Hopper","external_id":"crm-2"}`)
	alan := u.create(`{"email_address":["alan@example.org"],"username":"alan_t","first_name":"Alan","last_name":"Turing"}`)
	if status, out := u.call("POST", "/users/"+grace+"/ban", "application/json", "null"); status != 200 || out["banned"] != true {
		t.Fatalf("ban: %d %v", status, out)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{alan, grace, ada}},
		{"?order_by=%2Bcreated_at", []string{ada, grace, alan}},
		{"?order_by=-username", []string{grace, alan, ada}},
		{"?order_by=last_name", []string{grace, ada, alan}},
		{"?user_id=" + ada + "&user_id=" + alan, []string{alan, ada}},
		{"?email_address=GRACE@example.com", []string{grace}},
		{"?email_address=grace@example.com&email_address=alan@example.org", []string{alan, grace}},
		{"?external_id=crm-1&external_id=crm-2&order_by=created_at", []string{ada, grace}},
		{"?username=ALAN_T", []string{alan}},
		{"?query=example.com", []string{grace, ada}},
		{"?query=hopp", []string{grace}},
		{"?banned=true", []string{grace}},
		{"?banned=false&query=a", []string{alan, ada}},
		{"?user_id=" + ada + "&username=alan_t", nil},
		{"?limit=1&offset=1", []string{grace}},
	} {
		status, _ := u.call("GET", "/users"+tc.query, "", "")
		r := httptest.NewRequest("GET", "/_auth/api/v1/users", nil)
		r.URL.RawQuery = strings.TrimPrefix(tc.query, "?")
		r.Header.Set("Authorization", "Bearer "+testKey)
		w := httptest.NewRecorder()
		u.api.ServeHTTP(w, r, "/users")
		var list []map[string]any
		json.Unmarshal(w.Body.Bytes(), &list)
		var got []string
		for _, item := range list {
			got = append(got, item["id"].(string))
		}
		if status != 200 || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("GET /users%s: %d %v, want %v", tc.query, status, got, tc.want)
		}
		want := float64(len(tc.want))
		if strings.Contains(tc.query, "limit=1") {
			want = 3
		}
		if _, out := u.call("GET", "/users/count"+tc.query, "", ""); out["total_count"] != want {
			t.Errorf("GET /users/count%s: %v, want %v", tc.query, out, want)
		}
	}
}

// A ban ends the user's sessions at once (the caches are told) and an
// unban does not bring them back; a lock leaves them. Each change is one
// user.updated event and one audit entry naming the key; a request that
// changes nothing records neither.
func TestBanAndLock_EndSessionsRecordEventsAndAudit(t *testing.T) {
	u := newUserAPI(t)
	ctx := context.Background()
	id := u.create(`{"email_address":["ada@example.com"]}`)
	sess := &store.Session{UserID: id, ExpiresAt: time.Now().Add(time.Hour)}
	if err := u.st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	step := func(path string, want map[string]any) {
		t.Helper()
		status, out := u.call("POST", "/users/"+id+path, "application/json", "")
		for k, v := range want {
			if status != 200 || out[k] != v {
				t.Errorf("POST %s: %d %s=%v, want %v", path, status, k, out[k], v)
			}
		}
	}
	step("/lock", map[string]any{"locked": true, "banned": false})
	step("/lock", map[string]any{"locked": true}) // no change
	if _, err := u.st.Session(ctx, sess.ID); err != nil {
		t.Errorf("a lock ended the session: %v", err)
	}
	step("/unlock", map[string]any{"locked": false})
	step("/ban", map[string]any{"banned": true})
	if _, err := u.st.Session(ctx, sess.ID); err == nil {
		t.Error("after the ban the session (cached before it) is still served")
	}
	step("/unban", map[string]any{"banned": false})
	if _, err := u.st.Session(ctx, sess.ID); err == nil {
		t.Error("the unban brought the session back")
	}
	var actions []string
	for _, e := range u.audit.All() {
		if e.ContextMap()["user_id"] == id {
			actions = append(actions, e.Message)
		}
		if !strings.HasPrefix(e.ContextMap()["actor"].(string), "api_key:") {
			t.Errorf("audit entry %s without the key's fingerprint: %v", e.Message, e.ContextMap())
		}
	}
	if got := strings.Join(actions, " "); got != "user.create user.lock user.unlock user.ban user.unban" {
		t.Errorf("audited %s", got)
	}
	events, err := u.st.Events(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	if got := strings.Join(types, " "); got != "user.created session.created user.updated user.updated user.updated session.revoked user.updated" {
		t.Errorf("events %s", got)
	}
}
