package flow

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
)

// The callback's parameters, fuzzed:
//
//	go test ./caddymodule/internal/flow -run '^$' -fuzz '^FuzzCallbackParams$' -fuzztime 60s
//
// Every iteration starts three real flows: A and B at provider corp in two
// browsers, C at provider other in A's browser. The fuzzer writes the
// callback's query, body and Cookie header, naming those flows' states and
// binding cookies with placeholders ({A}, {B}, {C}, {bA}, {bB}), so it can
// put real values anywhere, repeated, mixed with anything.

// goodCode is the only code the fake token endpoint redeems.
const goodCode = "good-code"

type callbackFuzz struct {
	flow        *Flow
	corp, other *provider.Provider
	tokenCalls  atomic.Int64
	lastCode    atomic.Value // the code of the last token request
}

type quietBadger struct{}

func (quietBadger) Errorf(string, ...any)   {}
func (quietBadger) Warningf(string, ...any) {}
func (quietBadger) Infof(string, ...any)    {}
func (quietBadger) Debugf(string, ...any)   {}

func newCallbackFuzz(tb testing.TB) *callbackFuzz {
	tb.Helper()
	cf := &callbackFuzz{}
	cf.lastCode.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			cf.tokenCalls.Add(1)
			r.ParseForm()
			cf.lastCode.Store(r.PostForm.Get("code"))
			w.Header().Set("Content-Type", "application/json")
			if r.PostForm.Get("code") != goodCode {
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"invalid_grant"}`)
				return
			}
			io.WriteString(w, `{"access_token":"at-fuzz","token_type":"Bearer","expires_in":3600}`)
		case "/userinfo":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":42,"email":"ada@example.com","name":"Ada"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	tb.Cleanup(srv.Close)
	st, err := badger.Open(badger.Options{InMemory: true, Logger: quietBadger{}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	sessions, err := session.NewManager(st, [][]byte{bytes.Repeat([]byte("s"), 32)}, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	newProvider := func(name string) *provider.Provider {
		p, err := provider.New(provider.Config{Name: name, Kind: provider.KindOAuth2, ClientID: "client", ClientSecret: "client-secret",
			AuthURL: srv.URL + "/authorize", TokenURL: srv.URL + "/token", UserinfoURL: srv.URL + "/userinfo", SignIn: true})
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}
	cf.corp, cf.other = newProvider("corp"), newProvider("other")
	returnTo, _ := redirect.NewReturnTo(nil)
	cf.flow = New(Config{Store: st, Sessions: sessions, Sanitize: returnTo.Sanitize})
	return cf
}

// started is a flow begun by Start: its state and its browser's binding.
type started struct{ state, binding string }

// start begins a flow at p in the browser whose binding cookie is binding
// ("" for a new browser).
func (cf *callbackFuzz) start(t *testing.T, p *provider.Provider, binding, returnTo string) started {
	r := httptest.NewRequest(http.MethodPost, "http://gw.example/_auth/oauth/"+p.Name()+"/start", nil)
	if binding != "" {
		r.AddCookie(&http.Cookie{Name: BindingCookie, Value: binding})
	}
	w := httptest.NewRecorder()
	authURL, err := cf.flow.Start(w, r, Request{Provider: p, Mode: ModeSignIn, ReturnTo: returnTo,
		CallbackURL: "http://gw.example/_auth/oauth/" + p.Name() + "/callback"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	u, _ := url.Parse(authURL)
	s := started{state: u.Query().Get("state"), binding: binding}
	for _, c := range w.Result().Cookies() {
		if c.Name == BindingCookie {
			s.binding = c.Value
		}
	}
	if s.state == "" || s.binding == "" {
		t.Fatalf("Start gave state %q, binding %q", s.state, s.binding)
	}
	return s
}

// bindingOf is the binding a browser with this binding cookie presents.
func (cf *callbackFuzz) bindingOf(cookie string) string {
	r := httptest.NewRequest(http.MethodGet, "http://gw.example/", nil)
	r.AddCookie(&http.Cookie{Name: BindingCookie, Value: cookie})
	b, n := cf.flow.presentedBinding(r)
	if n != 1 {
		return ""
	}
	return b
}

// callback sends a callback for corp and returns the outcome, the error,
// and how many token requests it caused.
func (cf *callbackFuzz) callback(method, query, contentType, body, cookie string) (*Outcome, *httptest.ResponseRecorder, error, int64) {
	r, err := http.NewRequest(method, "http://gw.example/_auth/oauth/corp/callback", strings.NewReader(body))
	if err != nil { // not a method token: no server would route it here
		r, _ = http.NewRequest(http.MethodGet, "http://gw.example/_auth/oauth/corp/callback", strings.NewReader(body))
	}
	r.URL.RawQuery = query // as sent: not necessarily valid
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	before := cf.tokenCalls.Load()
	w := httptest.NewRecorder()
	out, err := cf.flow.Callback(w, r, cf.corp)
	return out, w, err, cf.tokenCalls.Load() - before
}

// values collects every value of name in a query or form string, decoded
// leniently (each &-separated pair on its own, like a permissive server).
func values(raw, name string) []string {
	var out []string
	for _, pair := range strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, _ := strings.Cut(pair, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		if k == name {
			out = append(out, v)
		}
	}
	return out
}

// cookieValues collects every value of the binding cookie in a Cookie header.
func cookieValues(header string) []string {
	var out []string
	for _, part := range strings.Split(header, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && name == BindingCookie {
			out = append(out, strings.Trim(value, `"`))
		}
	}
	return out
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

var callbackContentTypes = []string{
	"application/x-www-form-urlencoded", "", "multipart/form-data; boundary=x", "text/plain",
	"application/x-www-form-urlencoded; charset=utf-16", "application/json",
}

func FuzzCallbackParams(f *testing.F) {
	cf := newCallbackFuzz(f)
	const okCookie = BindingCookie + "={bA}"
	seeds := []struct {
		method, query string
		ctype         uint8
		body, cookie  string
		replay        bool
		returnTo      string
	}{
		{"GET", "state={A}&code=" + goodCode, 0, "", okCookie, false, "/inbox"},
		{"GET", "code=" + goodCode + "&state={A}&iss=http%3A%2F%2Fevil.example", 0, "", okCookie, false, "/"},
		{"POST", "", 0, "state={A}&code=" + goodCode + "&user=%7B%22name%22%3A1%7D", okCookie, false, "/a?b=c#d"},
		{"GET", "state={A}&code=" + goodCode, 0, "", okCookie, true, "/"}, // replayed
		{"GET", "state={A}&code=" + goodCode, 0, "", "", false, "/"},
		{"GET", "state={A}&code=" + goodCode, 0, "", BindingCookie + "={bB}", false, "/"}, // another browser
		{"GET", "state={B}&code=" + goodCode, 0, "", okCookie, false, "/"},
		{"GET", "state={C}&code=" + goodCode, 0, "", okCookie, false, "/"}, // mix-up: other provider's state
		{"GET", "state={A}&code=" + goodCode, 0, "", BindingCookie + "={bB}; " + okCookie, false, "/"},
		{"GET", "state={A}&code=" + goodCode, 0, "", okCookie + "; " + BindingCookie + "={bB}", false, "/"},
		{"GET", "state={A}&state={B}&code=" + goodCode, 0, "", okCookie, false, "/"},
		{"GET", "state={B}&state={A}&code=" + goodCode, 0, "", okCookie, false, "/"},
		{"POST", "state={A}", 0, "state={B}&code=" + goodCode, okCookie, false, "/"},
		{"POST", "state={B}&code=" + goodCode, 0, "state={A}", okCookie, false, "/"},
		{"GET", "state={A}&error=access_denied&code=" + goodCode, 0, "", okCookie, false, "/"},
		{"GET", "state={A}&error=%0D%0ASet-Cookie%3A+x%3D1", 0, "", okCookie, false, "/"},
		{"GET", "state={A}&code=", 0, "", okCookie, false, "/"},
		{"GET", "state={A}&code=wrong", 0, "", okCookie, false, "//evil.example"},
		{"GET", "state={A}%00&code=" + goodCode, 0, "", okCookie, false, "/"},
		{"GET", "state=%7BA%7D&code=" + goodCode, 0, "", okCookie, false, "/"},
		{"GET", "state={A};code=" + goodCode, 0, "", okCookie, false, "/"},
		{"GET", "state={A}&code=" + goodCode + "&x=%zz", 0, "", okCookie, false, "/"},
		{"GET", "state=" + strings.Repeat("A", 43) + "&code=" + goodCode, 0, "", BindingCookie + "=" + strings.Repeat("A", 43), false, "/"},
		{"GET", "state=" + strings.Repeat("x", 70000) + "&code=" + goodCode, 0, "", okCookie, false, "/"},
		{"GET", "code=" + goodCode, 0, "", okCookie, false, "/"},
		{"POST", "", 2, "state={A}&code=" + goodCode, okCookie, false, "/"},
		{"POST", "", 3, "state={A}&code=" + goodCode, okCookie, false, "/"},
		{"POST", "", 5, `{"state":"{A}","code":"` + goodCode + `"}`, okCookie, false, "/"},
		{"PUT", "state={A}&code=" + goodCode, 0, "", okCookie, false, "/"},
		{"GET", "state={A}&code=" + goodCode, 0, "", BindingCookie + "=\"{bA}\"", false, "/"},
		{"GET", "state={A}&code=" + goodCode, 0, "", BindingCookie + "={bA}x", false, "/"},
		{"GET", "state={A}&code=" + goodCode, 0, "", "socialgate_FLOW={bA}", false, "/"},
		{"GET", "state={A}&code=" + goodCode, 0, "", okCookie, false, "https://evil.example/"},
		{"GET", "state={A}&code=" + goodCode, 0, "", okCookie, false, "/\\evil.example"},
	}
	for _, s := range seeds {
		f.Add(s.method, s.query, s.ctype, s.body, s.cookie, s.replay, s.returnTo)
	}
	f.Fuzz(func(t *testing.T, method, query string, ctype uint8, body, cookie string, replay bool, returnTo string) {
		if len(query)+len(body)+len(cookie) > 1<<20 {
			return
		}
		a := cf.start(t, cf.corp, "", returnTo)
		b := cf.start(t, cf.corp, "", "/")
		c := cf.start(t, cf.other, a.binding, "/") // A's browser, another provider
		if cf.bindingOf(a.binding) != cf.bindingOf(c.binding) {
			t.Fatal("a second Start in one browser changed its binding")
		}
		if replay {
			cookie := BindingCookie + "=" + a.binding
			out, _, err, calls := cf.callback("GET", "state="+a.state+"&code="+goodCode, "", "", cookie)
			if err != nil || out == nil || calls != 1 {
				t.Fatalf("the genuine callback failed: %v (%d token calls)", err, calls)
			}
		}
		fill := strings.NewReplacer("{A}", a.state, "{B}", b.state, "{C}", c.state, "{bA}", a.binding, "{bB}", b.binding)
		query, body, cookie = fill.Replace(query), fill.Replace(body), fill.Replace(cookie)
		if method == "" {
			method = "GET"
		}
		ct := callbackContentTypes[int(ctype)%len(callbackContentTypes)]
		out, w, err, calls := cf.callback(method, query, ct, body, cookie)

		// Which live flows of corp could this request legitimately finish?
		states := append(values(query, "state"), values(body, "state")...)
		bindings := cookieValues(cookie)
		var legit []started
		for i, s := range []started{a, b} {
			if i == 0 && replay {
				continue // already finished
			}
			if contains(states, s.state) && contains(bindings, s.binding) {
				legit = append(legit, s)
			}
		}
		if calls > 0 && len(legit) == 0 {
			t.Fatalf("%d token requests for a callback without a live state of this browser and provider:\n%s ?%.300s\nbody %.300q\nCookie %.300q",
				calls, method, query, body, cookie)
		}
		if calls > 1 {
			t.Fatalf("%d token requests for one callback", calls)
		}
		if calls == 1 {
			codes := append(values(query, "code"), values(body, "code")...)
			if !contains(codes, cf.lastCode.Load().(string)) {
				t.Fatalf("the token request carried code %q, not one the callback had", cf.lastCode.Load())
			}
		}
		sessionSet := strings.Contains(strings.Join(w.Result().Header.Values("Set-Cookie"), "\n"), session.CookieName+"=")
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Callback failed with %v, not a *flow.Error (a 500 for the user)", err)
			}
			// Without a live state of this browser the fault is the
			// request's: 4xx. With one, the provider's answer (or a
			// mix-up iss, checked before the code is sent) may be at fault.
			if !(fe.Status >= 400 && fe.Status < 500) && !(fe.Status == http.StatusBadGateway && len(legit) > 0) {
				t.Fatalf("status %d (%s) with %d token requests", fe.Status, fe.Reason, calls)
			}
			if out != nil || sessionSet {
				t.Fatal("a failed callback returned an outcome or set a session cookie")
			}
			if strings.Contains(err.Error(), goodCode) || strings.Contains(err.Error(), a.state) || strings.Contains(fe.Message.String(), goodCode) {
				t.Fatalf("the error %q (%q) carries the code or the state", err, fe.Message)
			}
			return
		}
		if calls != 1 || out == nil || out.Session == nil || !sessionSet {
			t.Fatalf("success with %d token requests, outcome %+v, session cookie %v", calls, out, sessionSet)
		}
		if rt := out.ReturnTo; !strings.HasPrefix(rt, "/") || strings.HasPrefix(rt, "//") || strings.ContainsAny(rt, "\\\r\n\x00\t") {
			t.Fatalf("return-to %q (asked %q) leaves the site", rt, returnTo)
		}
		// Single use: the flow that just finished never finishes again (when
		// the request named two, the other may still be live).
		again := 0
		for _, s := range legit {
			if _, _, err, _ := cf.callback("GET", "state="+s.state+"&code="+goodCode, "", "", BindingCookie+"="+s.binding); err == nil {
				again++
			}
		}
		if again >= len(legit) {
			t.Fatalf("every flow this callback could have finished still works: a state was not consumed")
		}
	})
}
