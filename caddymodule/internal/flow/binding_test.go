package flow

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/store/storetest"
	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// opFlow is a Flow on an in-memory store with the test OP as provider
// "corp", on a clock the test moves.
type opFlow struct {
	t        *testing.T
	f        *Flow
	st       store.Store
	sessions *session.Manager
	op       *testop.Server
	p        *provider.Provider
	clk      *storetest.Clock
}

func newOPFlow(t *testing.T) *opFlow {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true, Logger: quietBadger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sessions, err := session.NewManager(st, [][]byte{bytes.Repeat([]byte("s"), 32)}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	op := testop.Start(t, testop.Options{})
	p, err := provider.New(provider.Config{Name: "corp", Kind: provider.KindOIDC, Issuer: op.URL(),
		ClientID: "test-client", ClientSecret: "test-secret", SignIn: true})
	if err != nil {
		t.Fatal(err)
	}
	returnTo, _ := redirect.NewReturnTo(nil)
	o := &opFlow{t: t, st: st, sessions: sessions, op: op, p: p, clk: storetest.NewClock()}
	o.f = New(Config{Store: st, Sessions: sessions, Sanitize: returnTo.Sanitize})
	o.f.now = o.clk.Now
	return o
}

// browser is a test browser's cookies at the gateway, which expire by the
// test's clock as their Max-Age says.
type browser struct {
	base    string // http://gw.example or https://gw.example
	now     func() time.Time
	cookies []*http.Cookie
}

func (o *opFlow) browser(base string) *browser { return &browser{base: base, now: o.clk.Now} }

func (b *browser) request(method, path string) *http.Request {
	r := httptest.NewRequest(method, b.base+path, nil)
	for _, c := range b.cookies {
		if b.now().Before(c.Expires) {
			r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	return r
}

// keep stores what a response set, as a browser does.
func (b *browser) keep(w *httptest.ResponseRecorder) {
	for _, c := range w.Result().Cookies() {
		c.Expires = b.now().Add(time.Duration(c.MaxAge) * time.Second)
		kept := b.cookies[:0]
		for _, old := range b.cookies {
			if old.Name != c.Name {
				kept = append(kept, old)
			}
		}
		b.cookies = kept
		if c.MaxAge >= 0 {
			b.cookies = append(b.cookies, c)
		}
	}
}

func (b *browser) cookie(name string) *http.Cookie {
	for _, c := range b.cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// pending is a started flow: the provider's answer, ready for the callback.
type pendingFlow struct{ query string }

// start begins a flow in b and has the provider answer it.
func (o *opFlow) start(b *browser, req Request) pendingFlow {
	o.t.Helper()
	req.Provider, req.CallbackURL = o.p, b.base+"/_auth/oauth/corp/callback"
	w := httptest.NewRecorder()
	authURL, err := o.f.Start(w, b.request(http.MethodPost, "/_auth/oauth/corp/start"), req)
	if err != nil {
		o.t.Fatalf("Start: %v", err)
	}
	b.keep(w)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL)
	if err != nil {
		o.t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	if loc == nil || loc.Query().Get("code") == "" {
		o.t.Fatalf("the provider did not answer the flow: %v", loc)
	}
	return pendingFlow{query: loc.RawQuery}
}

// callback sends a flow's callback from b (with extra raw Cookie headers).
func (o *opFlow) callback(b *browser, p pendingFlow, extraCookies ...string) (*Outcome, error) {
	r := b.request(http.MethodGet, "/_auth/oauth/corp/callback?"+p.query)
	for _, c := range extraCookies {
		r.Header.Add("Cookie", c)
	}
	w := httptest.NewRecorder()
	out, err := o.f.Callback(w, r, o.p)
	b.keep(w)
	return out, err
}

func TestBinding_EveryStartRenewsTheCookieSoALateSecondFlowGetsItsWholeTTL(t *testing.T) {
	o := newOPFlow(t)
	b := o.browser("http://gw.example")
	first := o.start(b, Request{Mode: ModeSignIn})
	o.clk.Advance(9 * time.Minute) // a second sign-in, in another tab, late in the first one's life
	second := o.start(b, Request{Mode: ModeSignIn})
	o.clk.Advance(30 * time.Second)
	if _, err := o.callback(b, first); err != nil {
		t.Fatalf("the first flow, within its TTL, failed after a second start: %v", err)
	}
	o.clk.Advance(5 * time.Minute) // 14.5 minutes after the first start, 5.5 after the second
	if _, err := o.callback(b, second); err != nil {
		t.Fatalf("the second flow failed %v after it started: %v", 5*time.Minute+30*time.Second, err)
	}
	// Past the second start's TTL, a binding no longer binds, whatever the
	// cookie's Max-Age said (a planted one could say forever).
	third := o.start(b, Request{Mode: ModeSignIn})
	o.clk.Advance(DefaultTTL + time.Second)
	if _, err := o.callback(b, third); err != ErrInvalidState {
		t.Errorf("a flow past its TTL: %v, want ErrInvalidState", err)
	}
}

func TestBinding_DuplicatesFailSafe(t *testing.T) {
	o := newOPFlow(t)
	for _, scheme := range []string{"http", "https"} {
		name := BindingCookie
		if scheme == "https" {
			name = session.HostPrefix + BindingCookie
		}
		attacker := o.browser(scheme + "://gw.example")
		csrf := o.start(attacker, Request{Mode: ModeSignIn}) // the attacker's own flow, to plant
		attackerBinding := attacker.cookie(name).Value
		victim := o.browser(scheme + "://gw.example")
		own := o.start(victim, Request{Mode: ModeSignIn})
		// Login CSRF: the attacker's binding planted beside the victim's,
		// under the plain name (what another host can set) and, from a
		// non-browser client, under the victim's own name.
		tokenCalls := o.op.Calls("token")
		for _, planted := range []string{BindingCookie + "=" + attackerBinding, name + "=" + attackerBinding} {
			if out, err := o.callback(victim, csrf, planted); err == nil || out != nil {
				t.Errorf("%s: the attacker's flow finished in the victim's browser with %q planted", scheme, planted)
			}
		}
		if n := o.op.Calls("token") - tokenCalls; n != 0 {
			t.Errorf("%s: %d token requests for planted bindings", scheme, n)
		}
		// Garbage, forgeries and (over HTTPS) the plain name lock no one out.
		sealedElsewhere, _ := o.sessions.Seal(session.CookieName, []byte("x|1"))
		junk := []string{BindingCookie + "=junk", name + "=" + strings.Repeat("A", 43), name + "=" + sealedElsewhere}
		if scheme == "https" {
			junk = append(junk, BindingCookie+"="+attackerBinding)
		}
		if _, err := o.callback(victim, own, junk...); err != nil {
			t.Errorf("%s: the victim's own flow failed beside planted garbage: %v", scheme, err)
		}
		// However many planted values come before the victim's own (a
		// longer Path puts them first): none hides it.
		again := o.start(victim, Request{Mode: ModeSignIn})
		r := victim.request(http.MethodGet, "/_auth/oauth/corp/callback?"+again.query)
		r.Header["Cookie"] = append(slices.Repeat([]string{name + "=" + sealedElsewhere + "; " + name + "=junk"}, 200), r.Header["Cookie"]...)
		if _, err := o.f.Callback(httptest.NewRecorder(), r, o.p); err != nil {
			t.Errorf("%s: the victim's own flow failed behind 400 planted values: %v", scheme, err)
		}
	}
}
