package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/flow"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// guardEnv is one row's gateway, its signed-in user ada, and ada's
// session and cookie value (also her session token).
type guardEnv struct {
	*testGW
	sess   *store.Session
	cookie string
}

// what a row's client sends.
const (
	asBrowser = iota // GET, Accept: text/html, the session cookie
	asAPI            // GET, Accept: application/json, the session cookie
	asApp            // GET, Authorization: Bearer <session token>
	asNobody         // a browser without a session
	asForm           // POST, Accept: text/html, no session
)

func (e *guardEnv) request(kind int, target string) *http.Request {
	method := http.MethodGet
	if kind == asForm {
		method = http.MethodPost
	}
	r := httptest.NewRequest(method, "http://app.example"+target, nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	switch kind {
	case asAPI:
		r.Header.Set("Accept", "application/json")
		fallthrough
	case asBrowser:
		r.Header.Set("Cookie", "theme=dark; "+session.CookieName+"="+e.cookie+"; "+flow.BindingCookie+"=b")
	case asApp:
		r.Header.Set("Authorization", "Bearer "+e.cookie)
	}
	return r
}

// TestGuard is Guard's decision table: for each kind of request on each
// kind of route, whether it passes, and otherwise what its client sees.
func TestGuard(t *testing.T) {
	type want struct {
		status    int    // 0: the request passes
		code      string // the JSON error's code, for a JSON refusal
		location  string // the redirect's Location, up to its query
		query     url.Values
		anonymous bool // passes without a session
	}
	for _, tc := range []struct {
		name   string
		config func(cfg *Config)
		route  Route
		client int
		target string
		before func(t *testing.T, e *guardEnv, r *http.Request)
		want   want
	}{
		// The session.
		{name: "signed in", client: asBrowser},
		{name: "signed in, session token", client: asApp},
		{name: "no session, browser", client: asNobody, target: "/app/report?tab=1",
			want: want{status: 302, location: "/_auth/sign-in", query: url.Values{"return_to": {"/app/report?tab=1"}}}},
		{name: "no session, API client", client: asNobody,
			before: func(t *testing.T, e *guardEnv, r *http.Request) { r.Header.Set("Accept", "application/json") },
			want:   want{status: 401, code: "unauthenticated"}},
		{name: "no session, form post", client: asForm, want: want{status: 401, code: "unauthenticated"}},
		{name: "expired", client: asBrowser,
			before: func(t *testing.T, e *guardEnv, _ *http.Request) { e.clk.Advance(defaultSessionLifetime + time.Minute) },
			want:   want{status: 302, location: "/_auth/sign-in", query: url.Values{"return_to": {"/app"}}}},
		{name: "expired, API client", client: asAPI,
			before: func(t *testing.T, e *guardEnv, _ *http.Request) { e.clk.Advance(defaultSessionLifetime + time.Minute) },
			want:   want{status: 401, code: "unauthenticated"}},
		{name: "signed out elsewhere, heard", client: asAPI,
			before: func(t *testing.T, e *guardEnv, _ *http.Request) {
				if err := e.raw.RevokeSession(context.Background(), e.sess.ID); err != nil {
					t.Fatal(err)
				}
				e.cache.ForgetUsers(e.sess.UserID)
			},
			want: want{status: 401, code: "unauthenticated"}},
		{name: "tampered cookie", client: asAPI,
			before: func(t *testing.T, e *guardEnv, r *http.Request) {
				r.Header.Set("Cookie", session.CookieName+"="+e.cookie[:len(e.cookie)-4]+"AAAA")
			},
			want: want{status: 401, code: "unauthenticated"}},

		// The user.
		{name: "not admitted by the app", client: asAPI,
			config: func(cfg *Config) { cfg.Admit = rules(t, []string{"*@other.example"}, nil) },
			want:   want{status: 403, code: "not_admitted"}},
		{name: "not admitted by the app, browser", client: asBrowser,
			config: func(cfg *Config) { cfg.Admit = rules(t, []string{"*@other.example"}, nil) },
			want:   want{status: 403}},
		{name: "not admitted by the route", client: asAPI, route: Route{AllowEmails: []string{"grace@example.com"}},
			want: want{status: 403, code: "not_admitted"}},
		{name: "admitted by the route", client: asAPI, route: Route{AllowEmails: []string{"*@example.com"}}},
		{name: "admitted by a group", client: asAPI, route: Route{AllowGroups: []string{"corp:staff"}},
			before: func(t *testing.T, e *guardEnv, _ *http.Request) {
				e.user(t, "ada", func(a *store.ExternalAccount) { a.Groups = []string{"staff"} })
			}},

		// The route's requirements and tokens.
		{name: "requirement met", client: asAPI, route: Route{Require: []Requirement{{Provider: "corp", Scopes: []string{"email"}}}}},
		{name: "unmet scope, browser", client: asBrowser, target: "/app?x=1", route: Route{Require: []Requirement{{Provider: "corp", Scopes: []string{"admin"}}}},
			want: want{status: 302, location: "/_auth/reauthorize", query: url.Values{"provider": {"corp"}, "scopes": {"admin"}, "return_to": {"/app?x=1"}}}},
		{name: "unmet scope, API client", client: asAPI, route: Route{Require: []Requirement{{Provider: "corp", Scopes: []string{"admin"}}}},
			want: want{status: 403, code: "reauthorization_required"}},
		{name: "forwarded token", client: asAPI, route: Route{Forward: []Forward{{Provider: "corp"}}}},
		{name: "forwarded token in Authorization", client: asApp, route: Route{Forward: []Forward{{Provider: "corp", Header: "authorization"}}}},
		{name: "forwarded token, account needs reauthorization", client: asAPI, route: Route{Forward: []Forward{{Provider: "corp"}}},
			before: func(t *testing.T, e *guardEnv, _ *http.Request) {
				e.user(t, "ada", nil)
				accounts, _ := e.st.ExternalAccounts(context.Background(), e.sess.UserID)
				if _, err := e.st.UpdateExternalAccount(context.Background(), accounts[0].ID, func(a *store.ExternalAccount) error {
					a.Status = store.StatusNeedsReauthorization
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			},
			want: want{status: 403, code: "reauthorization_required"}},
		{name: "forwarded token expired, provider down", client: asAPI, route: Route{Forward: []Forward{{Provider: "corp"}}},
			before: func(t *testing.T, e *guardEnv, _ *http.Request) {
				e.user(t, "ada", func(a *store.ExternalAccount) { a.Tokens.Expiry = time.Now().Add(-time.Minute) })
				e.op.SetFault(testop.FaultTokenServerError)
			},
			want: want{status: 503, code: "oauth_provider_unavailable"}},

		// Public routes.
		{name: "public, anonymous", client: asNobody, route: Route{Public: true}, want: want{anonymous: true}},
		{name: "public, signed in", client: asBrowser, route: Route{Public: true}},
		{name: "public, signed in but not admitted", client: asBrowser, route: Route{Public: true},
			config: func(cfg *Config) { cfg.Admit = rules(t, []string{"*@other.example"}, nil) },
			want:   want{anonymous: true}},
		{name: "public, ambiguous path", client: asNobody, route: Route{Public: true}, target: "/blog/..;/admin",
			before: header("Accept", "application/json"), want: want{status: 400, code: "ambiguous_path"}},
		{name: "public, ambiguous path, browser", client: asNobody, route: Route{Public: true}, target: "/blog\\admin",
			want: want{status: 400}},
		{name: "public, a dot segment", client: asAPI, route: Route{Public: true}, target: "/blog/%2e%2e/admin",
			want: want{status: 400, code: "ambiguous_path"}},

		// Smuggling: the gateway's headers named hop-by-hop or as trailers.
		{name: "Connection names an identity header", client: asAPI, before: header("Connection", "keep-alive, X-Auth-User-Id"),
			want: want{status: 400, code: "header_not_allowed"}},
		{name: "Connection names Cookie", client: asAPI, before: header("Connection", "Cookie"),
			want: want{status: 400, code: "header_not_allowed"}},
		{name: "Connection names Authorization, anonymous public", client: asNobody, route: Route{Public: true},
			before: func(t *testing.T, e *guardEnv, r *http.Request) {
				r.Header.Set("Accept", "application/json")
				r.Header.Set("Connection", "authorization")
			},
			want: want{status: 400, code: "header_not_allowed"}},
		{name: "Connection names the route's token header", client: asAPI, route: Route{Forward: []Forward{{Provider: "corp", Header: "X-Upstream-Token"}}},
			before: header("Connection", "x-upstream-token"), want: want{status: 400, code: "header_not_allowed"}},
		{name: "Connection names another route's token header", client: asAPI, before: header("Connection", "x-upstream-token")},
		{name: "a trailer in the gateway's namespace", client: asAPI,
			before: func(t *testing.T, e *guardEnv, r *http.Request) { r.Trailer = http.Header{"X_auth_jwt": nil} },
			want:   want{status: 400, code: "header_not_allowed"}},
		{name: "ordinary hop-by-hop headers", client: asAPI, before: header("Connection", "keep-alive, Upgrade")},

		// Upgrades: to another HTTP version the rest of the connection
		// would skip the gateway; other protocols pass.
		{name: "Upgrade: h2c, signed in", client: asAPI, before: upgrade("h2c"),
			want: want{status: 400, code: "upgrade_not_allowed"}},
		{name: "Upgrade: h2c, browser", client: asBrowser, before: upgrade("H2C"), want: want{status: 400}},
		{name: "Upgrade to HTTP/2.0 in a list, public", client: asNobody, route: Route{Public: true},
			before: func(t *testing.T, e *guardEnv, r *http.Request) {
				r.Header.Set("Accept", "application/json")
				upgrade("websocket, HTTP/2.0")(t, e, r)
			},
			want: want{status: 400, code: "upgrade_not_allowed"}},
		{name: "Upgrade: h2 on a second line, anonymous", client: asNobody, before: upgrade("websocket", " h2 "),
			want: want{status: 400}},
		{name: "Upgrade: websocket", client: asAPI, before: upgrade("websocket")},
		{name: "Upgrade: websocket, public", client: asNobody, route: Route{Public: true}, before: upgrade("WebSocket"),
			want: want{anonymous: true}},
		{name: "Upgrade to another protocol", client: asAPI, before: upgrade("TLS/1.2, h2c-ish, h3")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &guardEnv{testGW: newTestGW(t, tc.config)}
			e.sess, e.cookie = e.signIn(t, "ada")
			policy, err := e.Policy(tc.route)
			if err != nil {
				t.Fatal(err)
			}
			target := tc.target
			if target == "" {
				target = "/app"
			}
			r := e.request(tc.client, target)
			if tc.before != nil {
				tc.before(t, e, r)
			}
			w := httptest.NewRecorder()
			pass, ok, err := e.Guard(w, r, target, policy)
			if err != nil {
				t.Fatalf("Guard failed: %v", err)
			}
			if tc.want.status != 0 {
				if ok {
					t.Fatalf("passed; want %d", tc.want.status)
				}
				checkRefusal(t, w, tc.want.status, tc.want.code, tc.want.location, tc.want.query)
				return
			}
			if !ok {
				t.Fatalf("refused with %d %s; want it to pass", w.Code, w.Body)
			}
			site := "" // the site's own cookies, which go upstream
			if tc.client == asBrowser || tc.client == asAPI {
				site = "theme=dark"
			}
			checkPass(t, e, pass, tc.route, site, tc.want.anonymous)
		})
	}
}

// upgrade makes a row's request ask to upgrade to the protocols of lines,
// one Upgrade header each.
func upgrade(lines ...string) func(t *testing.T, e *guardEnv, r *http.Request) {
	return func(t *testing.T, e *guardEnv, r *http.Request) {
		r.Header.Set("Connection", "Upgrade")
		r.Header["Upgrade"] = lines
	}
}

// checkRefusal checks what the client of a refused request sees.
func checkRefusal(t *testing.T, w *httptest.ResponseRecorder, status int, code, location string, query url.Values) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d (%s); want %d", w.Code, w.Body, status)
	}
	if location != "" {
		loc, err := url.Parse(w.Header().Get("Location"))
		if err != nil || loc.Path != location || loc.Host != "" {
			t.Errorf("Location %q; want %s", w.Header().Get("Location"), location)
		} else if got := loc.Query(); got.Encode() != query.Encode() {
			t.Errorf("Location's query %v; want %v", got, query)
		}
		if w.Header().Get("Cache-Control") != "no-store" {
			t.Error("a redirect that a cache could keep")
		}
	}
	if code != "" {
		var body struct {
			Errors []struct{ Code string } `json:"errors"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 || body.Errors[0].Code != code {
			t.Errorf("body %s; want the JSON error %s", w.Body, code)
		}
	}
	if status == 401 && w.Header().Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	if status == 503 && w.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

// checkPass checks what the upstream of a request Guard let through
// receives: the session's identity (or none), the route's tokens, and
// none of the gateway's credentials.
func checkPass(t *testing.T, e *guardEnv, pass Pass, rt Route, site string, anonymous bool) {
	t.Helper()
	h := pass.Request.Header
	pass.SetHeaders(h)
	if got := h.Get("Cookie"); got != site {
		t.Errorf("the upstream receives the cookies %q; want the site's own, %q", got, site)
	}
	for _, v := range h["Authorization"] {
		if strings.Contains(v, e.cookie) {
			t.Errorf("the upstream receives the session token in Authorization: %q", v)
		}
	}
	if anonymous {
		if pass.Session != nil || h.Get(HeaderUserID) != "" {
			t.Errorf("an anonymous pass carries an identity: %+v, %q", pass.Session, h.Get(HeaderUserID))
		}
		return
	}
	if pass.Session == nil || pass.Session.ID != e.sess.ID || h.Get(HeaderUserID) != e.sess.UserID {
		t.Fatalf("passed with session %+v, X-Auth-User-Id %q; want ada's", pass.Session, h.Get(HeaderUserID))
	}
	if c := e.claims(t, h.Get(HeaderIdentity)); c.Subject != e.sess.UserID || c.Email != "ada@example.com" || !c.EmailVerified {
		t.Errorf("identity token says %+v", c)
	}
	if h.Get(HeaderUserEmail) != "ada@example.com" || h.Get(HeaderUserEmailVerified) != "true" {
		t.Errorf("email headers %q, %q", h.Get(HeaderUserEmail), h.Get(HeaderUserEmailVerified))
	}
	for _, f := range rt.Forward {
		want := "at-ada"
		if f.header() == "Authorization" {
			want = "Bearer at-ada"
		}
		if got := h.Get(f.header()); got != want {
			t.Errorf("%s: %q; want %q", f.header(), got, want)
		}
	}
}

func header(name, value string) func(*testing.T, *guardEnv, *http.Request) {
	return func(_ *testing.T, _ *guardEnv, r *http.Request) { r.Header.Set(name, value) }
}

func rules(t *testing.T, emails, groups []string) *access.Rules {
	r, err := access.Parse(emails, groups, []string{"corp"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A socialgate handler nested in a route's own (a site-wide one, and
// another on a path) finds the request's credentials gone: it reuses the
// session the outer one authenticated, and asks its own requirements.
func TestGuard_NestedReusesTheOuterSession(t *testing.T) {
	e := &guardEnv{testGW: newTestGW(t, nil)}
	e.sess, e.cookie = e.signIn(t, "ada")
	outer, _ := e.Policy(Route{})
	inner, _ := e.Policy(Route{Require: []Requirement{{Provider: "corp", Scopes: []string{"admin"}}}})
	r := e.request(asAPI, "/admin")
	pass, ok, err := e.Guard(httptest.NewRecorder(), r, "/admin", outer)
	if !ok || err != nil {
		t.Fatalf("outer: %v %v", ok, err)
	}
	if pass.Request.Header.Get("Cookie") != "theme=dark" {
		t.Fatalf("outer left credentials: %q", pass.Request.Header.Get("Cookie"))
	}
	w := httptest.NewRecorder()
	if _, ok, err := e.Guard(w, pass.Request, "/admin", inner); ok || err != nil {
		t.Fatalf("inner passed a request its requirement refuses (%v)", err)
	}
	checkRefusal(t, w, 403, "reauthorization_required", "", nil)
	again, ok, err := e.Guard(httptest.NewRecorder(), pass.Request, "/admin", outer)
	if !ok || err != nil || again.Session.ID != e.sess.ID {
		t.Fatalf("a nested handler without requirements refused the outer session: %v %v", ok, err)
	}
}

// failingStore fails every session read.
type failingStore struct{ store.Store }

func (failingStore) Session(context.Context, string) (*store.Session, error) {
	return nil, errors.New("connection refused")
}

// A store that cannot be read is a failure to decide, which the caller
// answers 503, never a pass and never "no session".
func TestGuard_AStoreThatFailsIsNoDecision(t *testing.T) {
	e := &guardEnv{testGW: newTestGW(t, nil)}
	e.sess, e.cookie = e.signIn(t, "ada")
	g, err := New(Config{Store: failingStore{e.st}, CookieSecrets: [][]byte{[]byte(strings.Repeat("g", 32))}, Identity: e.identity})
	if err != nil {
		t.Fatal(err)
	}
	policy, _ := g.Policy(Route{})
	w := httptest.NewRecorder()
	_, ok, err := g.Guard(w, e.request(asBrowser, "/app"), "/app", policy)
	if ok || err == nil || Status(err) != http.StatusServiceUnavailable || w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("ok %v, err %v (status %d), answered %d; want an error for 503 and no answer", ok, err, Status(err), w.Code)
	}
}
