package flow

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// TestCallback is the callback's specification: what a browser coming
// back from the provider gets for each way its callback, or the provider's
// answer, can be wrong. A callback whose state does not hold is refused
// before the provider is asked to redeem its code, and nothing refused
// leaves a user or a cookie behind.
func TestCallback(t *testing.T) {
	// callback is what a row's browser sends back, and where.
	type callback struct {
		from  *browser
		query url.Values
		at    *provider.Provider
	}
	set := func(key, value string) func(t *testing.T, o *opFlow, c *callback) {
		return func(t *testing.T, o *opFlow, c *callback) {
			c.query.Del(key)
			if value != "" {
				c.query.Set(key, value)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		admit  []string // the app's allow_emails
		fault  testop.Fault
		tamper func(t *testing.T, o *opFlow, c *callback)
		// wantReason is the refusal's Error.Reason; "": signed in.
		wantReason string
		// wantRedeem: the code went to the provider's token endpoint.
		wantRedeem bool
	}{
		{name: "signs up", wantRedeem: true},
		{name: "state missing", tamper: set("state", ""), wantReason: ReasonInvalidState},
		{name: "state forged", tamper: set("state", randomString()), wantReason: ReasonInvalidState},
		{name: "state from another browser (login CSRF)", wantReason: ReasonInvalidState,
			tamper: func(t *testing.T, o *opFlow, c *callback) {
				c.from = o.browser("http://gw.example")
				o.start(c.from, Request{Mode: ModeSignIn}) // a binding of its own
			}},
		{name: "no binding cookie", wantReason: ReasonInvalidState,
			tamper: func(t *testing.T, o *opFlow, c *callback) { c.from.cookies = nil }},
		{name: "expired", wantReason: ReasonInvalidState,
			tamper: func(t *testing.T, o *opFlow, c *callback) { o.clk.Advance(DefaultTTL + 1) }},
		{name: "at another provider's callback (mix-up)", wantReason: ReasonInvalidState,
			tamper: func(t *testing.T, o *opFlow, c *callback) {
				var err error
				c.at, err = provider.New(provider.Config{Name: "other", Kind: provider.KindOIDC, Issuer: testop.Start(t, testop.Options{}).URL(),
					ClientID: "test-client", ClientSecret: "test-secret", SignIn: true})
				if err != nil {
					t.Fatal(err)
				}
			}},
		{name: "code missing", tamper: set("code", ""), wantReason: ReasonInvalidState},
		{name: "denied at the provider", wantReason: ReasonDenied,
			tamper: func(t *testing.T, o *opFlow, c *callback) {
				set("code", "")(t, o, c)
				set("error", "access_denied")(t, o, c)
			}},
		{name: "iss of another provider (RFC 9207)", fault: testop.FaultWrongIssParam, wantReason: ReasonRejected},
		{name: "id_token with a wrong nonce", fault: testop.FaultWrongNonce, wantReason: ReasonRejected, wantRedeem: true},
		{name: "id_token with alg none", fault: testop.FaultAlgNone, wantReason: ReasonRejected, wantRedeem: true},
		{name: "id_token for another client", fault: testop.FaultWrongAudience, wantReason: ReasonRejected, wantRedeem: true},
		{name: "userinfo of another subject", fault: testop.FaultUserinfoSubMismatch, wantReason: ReasonRejected, wantRedeem: true},
		{name: "token endpoint down", fault: testop.FaultTokenServerError, wantReason: ReasonUnavailable, wantRedeem: true},
		{name: "not admitted", admit: []string{"*@other.example"}, wantReason: ReasonNotAdmitted, wantRedeem: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOPFlow(t)
			if tc.admit != nil {
				var err error
				if o.f.Admit, err = access.Parse(tc.admit, nil, nil); err != nil {
					t.Fatal(err)
				}
			}
			o.op.SetFault(tc.fault)
			b := o.browser("http://gw.example")
			p := o.start(b, Request{Mode: ModeSignIn, ReturnTo: "/app?tab=1"})
			query, _ := url.ParseQuery(p.query)
			c := callback{from: b, query: query, at: o.p}
			if tc.tamper != nil {
				tc.tamper(t, o, &c)
			}
			r := c.from.request("GET", "/_auth/oauth/"+c.at.Name()+"/callback?"+c.query.Encode())
			w := httptest.NewRecorder()
			out, err := o.f.Callback(w, r, c.at)

			if redeemed := o.op.Calls("token") > 0; redeemed != tc.wantRedeem {
				t.Errorf("code redeemed at the provider: %v, want %v", redeemed, tc.wantRedeem)
			}
			_, users, _ := o.st.Users(context.Background(), store.UserQuery{})
			if tc.wantReason != "" {
				var fe *Error
				if !errors.As(err, &fe) || fe.Reason != tc.wantReason {
					t.Fatalf("Callback: %v, want reason %s", err, tc.wantReason)
				}
				if users != 0 || len(w.Result().Cookies()) != 0 {
					t.Errorf("a refused callback left %d users and cookies %v", users, w.Result().Cookies())
				}
				return
			}
			if err != nil {
				t.Fatalf("Callback: %v", err)
			}
			if !out.Created || out.Session == nil || out.ReturnTo != "/app?tab=1" || users != 1 {
				t.Fatalf("outcome %+v with %d users, want a new user signed in, back to /app?tab=1", out, users)
			}
			if ck := w.Result().Cookies(); len(ck) != 1 || ck[0].Name != session.CookieName {
				t.Errorf("cookies %v, want the session cookie", ck)
			}
			// The state is spent: the same callback again is refused.
			if _, err := o.f.Callback(httptest.NewRecorder(), r, o.p); !errors.Is(err, ErrInvalidState) {
				t.Errorf("replayed callback: %v, want %v", err, ErrInvalidState)
			}
		})
	}
}

// TestCallback_ASecondSignInIsTheSameUserInANewSession: sign-up and
// sign-in are one flow, keyed by the provider's issuer and subject.
func TestCallback_ASecondSignInIsTheSameUserInANewSession(t *testing.T) {
	o := newOPFlow(t)
	b := o.browser("http://gw.example")
	first, err := o.callback(b, o.start(b, Request{Mode: ModeSignIn}))
	if err != nil {
		t.Fatal(err)
	}
	again, err := o.callback(b, o.start(b, Request{Mode: ModeSignIn}))
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || again.User.ID != first.User.ID || again.Session.ID == first.Session.ID {
		t.Errorf("second sign-in: created %v, user %s (first %s), session %s (first %s)",
			again.Created, again.User.ID, first.User.ID, again.Session.ID, first.Session.ID)
	}
	if _, err := o.st.Session(context.Background(), first.Session.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the first session outlived the second sign-in in the same browser: %v", err)
	}
}
