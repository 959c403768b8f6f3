package flow

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// signIn signs b in through the provider and returns its session.
func (o *opFlow) signIn(b *browser) *store.Session {
	o.t.Helper()
	out, err := o.callback(b, o.start(b, Request{Mode: ModeSignIn}))
	if err != nil {
		o.t.Fatal(err)
	}
	return out.Session
}

func TestNeedsReauthentication_AfterTheWindowOrWhenUnknown(t *testing.T) {
	o := newOPFlow(t)
	now := o.clk.Now()
	for _, tc := range []struct {
		authTime time.Time
		want     bool
	}{
		{time.Time{}, true}, // a session from before auth_time was recorded
		{now, false},
		{now.Add(-DefaultReauthenticateAfter), false},
		{now.Add(-DefaultReauthenticateAfter - time.Second), true},
		{now.Add(-24 * time.Hour), true},
	} {
		if got := o.f.NeedsReauthentication(&store.Session{AuthTime: tc.authTime}); got != tc.want {
			t.Errorf("authenticated %v ago: NeedsReauthentication = %v", now.Sub(tc.authTime), got)
		}
	}
}

// staleSession signs b in with a sign-in the provider dates an hour back
// (its SSO session), on the real clock, as the provider's is.
func staleSession(t *testing.T) (*opFlow, *browser, *store.Session, *store.ExternalAccount) {
	o := newOPFlow(t)
	o.f.now = time.Now
	b := &browser{base: "https://gw.example", now: time.Now}
	o.op.SetLoginTime(time.Now().Add(-time.Hour))
	sess := o.signIn(b)
	if d := time.Since(sess.AuthTime); d < 59*time.Minute || !o.f.NeedsReauthentication(sess) {
		t.Fatalf("a sign-in through an hour-old provider session has auth time %v ago", d)
	}
	acc, err := o.st.ExternalAccount(context.Background(), sess.AccountID)
	if err != nil {
		t.Fatalf("the session does not record its account: %v", err)
	}
	return o, b, sess, acc
}

func TestReauthenticate_AFreshSignInOfTheSameAccountRenewsTheSession(t *testing.T) {
	o, b, sess, acc := staleSession(t)
	p := o.start(b, Request{Mode: ModeReauthenticate, Session: sess, Account: acc, ReturnTo: "/_auth/account"})
	if q := o.op.LastAuthorizeQuery(); q.Get("prompt") != "login" || q.Get("max_age") != "0" {
		t.Errorf("the provider was asked prompt=%q max_age=%q, want login and 0", q.Get("prompt"), q.Get("max_age"))
	}
	out, err := o.callback(b, p)
	if err != nil {
		t.Fatal(err)
	}
	s := out.Session
	if s.ID == sess.ID || s.UserID != sess.UserID || s.AccountID != acc.ID || time.Since(s.AuthTime) > time.Minute || o.f.NeedsReauthentication(s) {
		t.Errorf("after re-authenticating: session %+v", s)
	}
	if _, err := o.st.Session(context.Background(), sess.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the session that re-authenticated lives on beside its successor: %v", err)
	}
	if out.ReturnTo != "/_auth/account" {
		t.Errorf("return to %q", out.ReturnTo)
	}
}

func TestReauthenticate_RefusesWhatIsNotAFreshSignInOfTheSessionsAccount(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(o *opFlow, sess *store.Session)
		reason string
	}{
		{"the provider ignores prompt=login", func(o *opFlow, _ *store.Session) { o.op.SetFault(testop.FaultStaleAuthTime) }, ReasonNotReauthenticated},
		{"someone else signs in at the provider", func(o *opFlow, _ *store.Session) {
			o.op.SetClaims(map[string]any{"sub": "mallory", "email": "m@example.com", "email_verified": true})
		}, "other_account"},
		{"the session ended meanwhile", func(o *opFlow, sess *store.Session) {
			o.st.DeleteSession(context.Background(), sess.ID)
		}, "session_ended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, b, sess, acc := staleSession(t)
			tc.setup(o, sess)
			p := o.start(b, Request{Mode: ModeReauthenticate, Session: sess, Account: acc})
			users, _, _ := o.st.Users(context.Background(), store.UserQuery{})
			out, err := o.callback(b, p)
			var fe *Error
			if !errors.As(err, &fe) || fe.Reason != tc.reason || out != nil {
				t.Fatalf("callback = %v, %v; want reason %s", out, err, tc.reason)
			}
			if after, _, _ := o.st.Users(context.Background(), store.UserQuery{}); len(after) != len(users) {
				t.Error("a refused re-authentication created a user")
			}
			if accounts, _ := o.st.ExternalAccounts(context.Background(), sess.UserID); len(accounts) != 1 {
				t.Errorf("a refused re-authentication left %d accounts", len(accounts))
			}
			if tc.reason != "session_ended" {
				if got, err := o.st.Session(context.Background(), sess.ID); err != nil || !got.AuthTime.Equal(sess.AuthTime) {
					t.Errorf("a refused re-authentication changed the session: %+v, %v", got, err)
				}
			}
		})
	}
}

func TestReauthenticate_StartsOnlyForTheSessionsOwnAccount(t *testing.T) {
	o, b, sess, _ := staleSession(t)
	other, err := o.st.SignIn(context.Background(), store.SignIn{Now: time.Now(),
		Account: store.ExternalAccount{Provider: "corp", Issuer: o.op.URL(), Subject: "someone-else"}})
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]Request{
		"another user's account": {Mode: ModeReauthenticate, Session: sess, Account: other.Account, Provider: o.p},
		"no account":             {Mode: ModeReauthenticate, Session: sess, Provider: o.p},
		"no session":             {Mode: ModeReauthenticate, Account: other.Account, Provider: o.p},
	} {
		req.CallbackURL = b.base + "/_auth/oauth/corp/callback"
		if _, err := o.f.Start(httptest.NewRecorder(), b.request("POST", "/_auth/account/disconnect"), req); err == nil {
			t.Errorf("%s: a re-authentication started", name)
		}
	}
}
