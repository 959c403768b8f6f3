package flow

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// flakyStore fails the next RevokeSession.
type flakyStore struct {
	store.Store
	fail bool
}

var errFlaky = errors.New("the store is down")

func (f *flakyStore) RevokeSession(ctx context.Context, id string) error {
	if f.fail {
		f.fail = false
		return errFlaky
	}
	return f.Store.RevokeSession(ctx, id)
}

// logoutEnv is a flow over an in-memory store, with ann signed in at a test
// OP in two sessions, each of a provider session of its own.
type logoutEnv struct {
	f        *Flow
	st       *flakyStore
	op       *testop.Server
	p        *provider.Provider
	sessions []*store.Session
}

func newLogoutEnv(t *testing.T) *logoutEnv {
	t.Helper()
	b, err := badger.Open(badger.Options{InMemory: true, Logger: quietBadger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	st := &flakyStore{Store: b}
	op := testop.Start(t, testop.Options{})
	p, err := provider.New(provider.Config{Name: "corp", Kind: provider.KindOIDC, Issuer: op.URL(), ClientID: "test-client", SignIn: true})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := session.NewManager(st, [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e := &logoutEnv{f: New(Config{Store: st, Sessions: mgr}), st: st, op: op, p: p}
	ctx := context.Background()
	res, err := b.SignIn(ctx, store.SignIn{Now: time.Now(), Account: store.ExternalAccount{Provider: "corp", Issuer: op.URL(), Subject: "ann"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, sid := range []string{"op-session-1", "op-session-2"} {
		s := &store.Session{UserID: res.User.ID, ExpiresAt: time.Now().Add(time.Hour), AccountID: res.Account.ID, ProviderSID: sid}
		if err := b.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		e.f.rememberProviderSession(ctx, res.Account, sid, s)
		e.sessions = append(e.sessions, s)
	}
	return e
}

func (e *logoutEnv) live(t *testing.T) []bool {
	t.Helper()
	var out []bool
	for _, s := range e.sessions {
		_, err := e.st.Session(context.Background(), s.ID)
		out = append(out, err == nil)
	}
	return out
}

// A provider retries a logout the gateway could not finish: the retry of
// the same token is not taken for a replay and still finds the provider
// session its sid names.
func TestBackChannelLogout_AFailedLogoutCanBeRetried(t *testing.T) {
	for _, tc := range []struct{ name, sub, sid string }{{"sid alone", "", "op-session-1"}, {"sub alone", "ann", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLogoutEnv(t)
			raw := e.op.LogoutToken(tc.sub, tc.sid, nil)
			e.st.fail = true
			if _, err := e.f.BackChannelLogout(context.Background(), e.p, raw); !errors.Is(err, errFlaky) {
				t.Fatalf("with the store failing: err = %v", err)
			}
			ended, err := e.f.BackChannelLogout(context.Background(), e.p, raw)
			if err != nil || len(ended) == 0 {
				t.Fatalf("the retry: ended %d, %v", len(ended), err)
			}
			if _, err := e.f.BackChannelLogout(context.Background(), e.p, raw); !errors.Is(err, ErrLogoutReplayed) {
				t.Errorf("a third time: err = %v, want ErrLogoutReplayed", err)
			}
			want := []bool{false, tc.sub == ""} // the sid's session, or all of ann's
			if got := e.live(t); got[0] != want[0] || got[1] != want[1] {
				t.Errorf("live sessions = %v, want %v", got, want)
			}
		})
	}
}
