package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/admin"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// opened is a Badger store on disk with one user, Ada, and a session.
type opened struct {
	*ops.Opened
	ada, eac, session string
}

func open(t *testing.T) opened {
	t.Helper()
	o, err := ops.Open(context.Background(), ops.Location{Dir: filepath.Join(t.TempDir(), "socialgate"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	res, err := o.Store.SignIn(context.Background(), store.SignIn{Account: store.ExternalAccount{Provider: "dev",
		Issuer: "https://idp.example", Subject: "ada", Email: "ada@example.com", EmailVerified: true,
		Tokens: store.TokenSet{AccessToken: "tok-secret-material"}}})
	if err != nil {
		t.Fatal(err)
	}
	s := &store.Session{UserID: res.User.ID, ExpiresAt: time.Now().Add(time.Hour)}
	if err := o.Store.CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return opened{Opened: o, ada: res.User.ID, eac: res.Account.ID, session: s.ID}
}

func (o opened) store() admin.Store {
	return admin.Store{Dir: o.Dir, Name: o.Name, Ops: ops.New(ops.Options{Store: o.Store})}
}

// call sends a request to h and decodes its JSON answer.
func call(t *testing.T, h http.Handler, method, target string) (int, http.Header, map[string]any) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	var body map[string]any
	if w.Header().Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, target, w.Body)
		}
	}
	if strings.Contains(w.Body.String(), "tok-secret-material") {
		t.Errorf("%s %s hands out token material", method, target)
	}
	return w.Code, w.Header(), body
}

func TestHandler_PicksTheStore(t *testing.T) {
	a, b := open(t), open(t)
	for _, tc := range []struct {
		name   string
		stores []admin.Store
		query  string
		status int
		store  string // the store answering, or the error's words
	}{
		{"the only one", []admin.Store{a.store()}, "", http.StatusOK, a.Name},
		{"named", []admin.Store{a.store(), b.store()}, "?storage=" + b.Dir, http.StatusOK, b.Name},
		{"named, not clean", []admin.Store{a.store(), b.store()}, "?storage=" + b.Dir + "/./", http.StatusOK, b.Name},
		{"several, none named", []admin.Store{a.store(), b.store()}, "", http.StatusConflict, "2 socialgate stores are open"},
		{"named, not open", []admin.Store{a.store()}, "?storage=/nowhere", http.StatusNotFound, "no store open at /nowhere"},
		{"none open", nil, "", http.StatusServiceUnavailable, "no socialgate store is open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := admin.NewHandler(func() []admin.Store { return tc.stores })
			status, header, body := call(t, h, http.MethodGet, "/socialgate/check"+tc.query)
			if status != tc.status {
				t.Fatalf("status %d %v, want %d", status, body, tc.status)
			}
			if tc.status == http.StatusOK && (header.Get(admin.StoreHeader) != tc.store || body["users"] != float64(1)) {
				t.Errorf("answered by %q: %v", header.Get(admin.StoreHeader), body)
			}
			if tc.status != http.StatusOK && (!strings.Contains(body["error"].(string), tc.store) || body["store"] != nil) {
				t.Errorf("error %v", body)
			}
		})
	}
}

func TestHandler_Routes(t *testing.T) {
	o := open(t)
	h := admin.NewHandler(func() []admin.Store { return []admin.Store{o.store()} })
	for _, tc := range []struct {
		method, target string
		status         int
		check          func(body map[string]any) bool
	}{
		{"GET", "/socialgate/users", 200, func(b map[string]any) bool { return b["total_count"] == float64(1) }},
		{"GET", "/socialgate/users?email=ADA@example.com&limit=500", 200, func(b map[string]any) bool { return b["total_count"] == float64(1) }},
		{"GET", "/socialgate/users?limit=0", 400, errorSays("limit must be")},
		{"GET", "/socialgate/users?offset=x", 400, errorSays("limit must be")},
		{"GET", "/socialgate/users/" + o.ada, 200, func(b map[string]any) bool {
			accounts := b["user"].(map[string]any)["external_accounts"].([]any)
			sessions := b["sessions"].([]any)
			return len(accounts) == 1 && accounts[0].(map[string]any)["issuer"] == "https://idp.example" &&
				accounts[0].(map[string]any)["email_verified"] == true && len(sessions) == 1
		}},
		{"GET", "/socialgate/users/user_nobody", 404, errorSays("there is no user user_nobody")},
		{"PUT", "/socialgate/users/" + o.ada, 404, errorSays("there is no such socialgate admin route: PUT")},
		{"HEAD", "/socialgate/users/" + o.ada, 404, func(map[string]any) bool { return true }},
		{"get", "/socialgate/users/" + o.ada, 404, errorSays("there is no such socialgate admin route: get")},
		{"GET", "/socialgate/nothing", 404, errorSays("there is no such socialgate admin route")},
		{"POST", "/socialgate/webhooks/app/replay?since=soon", 400, errorSays(`since "soon" is not Unix milliseconds`)},
		{"POST", "/socialgate/webhooks/app/replay", 400, errorSays("give exactly one of since")},
		{"POST", "/socialgate/webhooks/app/replay?event_id=usr_1", 400, errorSays("not an event id")},
		{"POST", "/socialgate/webhooks/app/replay?since=1", 404, errorSays("there is no webhook endpoint app")},
		{"POST", "/socialgate/identity-keys/rotate", 501, errorSays("derive from its secret")}, // no keys given
		{"POST", "/socialgate/sessions/" + o.session + "/revoke", 200, func(b map[string]any) bool { return b["status"] == "revoked" }},
		{"POST", "/socialgate/sessions/" + o.session + "/revoke", 404, func(b map[string]any) bool {
			return b["error"] == "there is no live session with this id" && b["store"] == o.Name
		}},
		{"DELETE", "/socialgate/users/" + o.ada + "/external_accounts/eac_nobody", 404, errorSays("there is no external account eac_nobody")},
		{"DELETE", "/socialgate/users/" + o.ada + "/external_accounts/" + o.eac, 200, func(b map[string]any) bool { return b["deleted"] == true }},
		{"DELETE", "/socialgate/users/" + o.ada, 200, func(b map[string]any) bool { return b["id"] == o.ada && b["deleted"] == true }},
		{"DELETE", "/socialgate/users/" + o.ada, 404, errorSays("there is no user")},
		{"GET", "/socialgate/check", 200, func(b map[string]any) bool { return b["users"] == float64(0) && len(b["violations"].([]any)) == 0 }},
	} {
		status, _, body := call(t, h, tc.method, tc.target)
		if status != tc.status || !tc.check(body) {
			t.Errorf("%s %s: %d %v, want %d", tc.method, tc.target, status, body, tc.status)
		}
	}
}

func errorSays(words string) func(map[string]any) bool {
	return func(b map[string]any) bool {
		msg, _ := b["error"].(string)
		return strings.Contains(msg, words)
	}
}

// The commands reach the routes offline through Local exactly as online:
// the backup streams, errors keep their status and store, and nothing
// listens where another process could reach it.
func TestLocal_ServesTheRoutesInProcess(t *testing.T) {
	o := open(t)
	c, stop := admin.Local(admin.NewHandler(func() []admin.Store { return []admin.Store{o.store()} }))
	defer stop()
	ctx := context.Background()
	page, err := c.Users(ctx, "", 10, 0)
	if err != nil || page.Total != 1 || page.Users[0].ID != o.ada || c.Store != o.Name {
		t.Fatalf("Users = %+v, %v (store %q)", page, err, c.Store)
	}
	var backup bytes.Buffer
	if err := c.Backup(ctx, &backup); err != nil || backup.Len() == 0 {
		t.Fatalf("Backup: %d bytes, %v", backup.Len(), err)
	}
	_, err = c.User(ctx, "user_nobody")
	if se, ok := errors.AsType[*admin.StatusError](err); !ok || !se.Missing() || se.Store != o.Name {
		t.Errorf("a missing user: %v", err)
	}
	stop()
	if _, err := c.Users(ctx, "", 10, 0); err == nil {
		t.Error("the routes still answer after stop")
	}
}

// An admin API that is not socialgate's (a Caddy without the module,
// another server) is told apart from a missing record.
func TestClient_AnotherServerIsNotAMissingRecord(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c := admin.NewClient(func(ctx context.Context, method, uri string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+uri, nil)
		return http.DefaultClient.Do(req)
	})
	_, err := c.User(context.Background(), "user_x")
	se, ok := errors.AsType[*admin.StatusError](err)
	if !ok || se.Missing() || !strings.Contains(err.Error(), "has no socialgate routes") {
		t.Errorf("err = %v", err)
	}
}
