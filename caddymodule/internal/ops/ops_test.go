package ops_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/store/cache"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
)

// fixture is an in-memory store with two users, Ada (two GitHub accounts,
// two sessions) and, newer, Grace (one Corp account whose token expired
// and cannot be refreshed), and the service over it, seen through a cache
// that serves what it read within the hour: what an operation leaves
// there stale shows.
type fixture struct {
	st                   *badger.Store
	view                 store.Store // the cached view the service uses
	svc                  *ops.Service
	ada, grace           string
	adaWork, adaHome, gr *store.ExternalAccount
	adaSessions          []string
	revoked              *fakeProvider
	audit                *observer.ObservedLogs
	logs                 *observer.ObservedLogs
	hour                 time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st, view: cache.New(st, nil).Store(time.Hour), hour: time.Now().Add(time.Hour)}
	ctx := context.Background()
	signIn := func(provider, subject, user, email string, expiry time.Time, at time.Time) *store.ExternalAccount {
		t.Helper()
		res, err := st.SignIn(ctx, store.SignIn{LinkToUser: user, Now: at, Account: store.ExternalAccount{
			Provider: provider, Issuer: "https://" + provider + ".example", Subject: subject, Email: email, EmailVerified: true,
			Tokens: store.TokenSet{AccessToken: provider + "-access-" + subject, RefreshToken: provider + "-refresh-" + subject, Expiry: expiry},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Account
	}
	f.adaWork = signIn("github", "ada-work", "", "ada@example.com", f.hour, time.Now().Add(-time.Hour))
	f.ada = f.adaWork.UserID
	f.adaHome = signIn("github", "ada-home", f.ada, "", f.hour, time.Now().Add(-time.Hour))
	f.gr = signIn("corp", "grace", "", "grace@example.com", time.Now().Add(-time.Hour), time.Now())
	f.grace = f.gr.UserID
	for range 2 {
		s := &store.Session{UserID: f.ada, ExpiresAt: f.hour}
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		f.adaSessions = append(f.adaSessions, s.ID)
	}
	slices.Sort(f.adaSessions)
	var auditCore, logCore zapcore.Core
	auditCore, f.audit = observer.New(zapcore.InfoLevel)
	logCore, f.logs = observer.New(zapcore.InfoLevel)
	f.revoked = &fakeProvider{name: "github", canRevoke: true}
	f.svc = ops.New(ops.Options{
		Store:     f.view,
		Tokens:    tokens.New(tokens.Options{Store: st, Providers: func(string) (tokens.Refresher, bool) { return nil, false }}),
		Providers: []ops.Provider{f.revoked, &fakeProvider{name: "corp"}},
		Audit:     audit.New(zap.New(auditCore)),
		Logger:    zap.New(logCore),
	})
	return f
}

// prime reads these sessions of Ada, her user and her accounts through
// the cache, so that it holds them.
func (f *fixture) prime(t *testing.T, sessions ...string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range sessions {
		if _, err := f.view.Session(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.view.User(ctx, f.ada); err != nil {
		t.Fatal(err)
	}
	if _, err := f.view.ExternalAccounts(ctx, f.ada); err != nil {
		t.Fatal(err)
	}
}

// served lists the sessions among ids that the cache still serves.
func (f *fixture) served(ids ...string) []string {
	var out []string
	for _, id := range ids {
		if _, err := f.view.Session(context.Background(), id); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// fakeProvider records the tokens it is asked to revoke.
type fakeProvider struct {
	name      string
	canRevoke bool
	fail      bool
	mu        sync.Mutex
	tokens    []string
}

func (p *fakeProvider) Name() string        { return p.name }
func (p *fakeProvider) DisplayName() string { return strings.ToUpper(p.name) }
func (p *fakeProvider) SignIn() bool        { return p.name != "corp" }
func (p *fakeProvider) CanRevoke() bool     { return p.canRevoke }
func (p *fakeProvider) Reachable(context.Context) error {
	return map[bool]error{true: errors.New("down")}[p.fail]
}
func (p *fakeProvider) Revoke(_ context.Context, _, access, _ string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens = append(p.tokens, access)
	if p.fail {
		return errors.New("the provider is down")
	}
	return nil
}

type quiet struct{}

func (quiet) Errorf(string, ...any)   {}
func (quiet) Warningf(string, ...any) {}
func (quiet) Infof(string, ...any)    {}
func (quiet) Debugf(string, ...any)   {}

// notFound checks that err is a *NotFoundError of kind that is ErrNotFound.
func notFound(t *testing.T, err error, kind string) *ops.NotFoundError {
	t.Helper()
	nf, ok := errors.AsType[*ops.NotFoundError](err)
	if !ok || nf.Kind != kind || !errors.Is(err, ops.ErrNotFound) {
		t.Fatalf("err = %v, want a %s that is not found", err, kind)
	}
	return nf
}

func TestUsers_ListsNewestFirstWithAccountsAndPages(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name  string
		q     store.UserQuery
		want  []string
		total int
	}{
		{"all", store.UserQuery{Limit: 10}, []string{f.grace, f.ada}, 2},
		{"limit", store.UserQuery{Limit: 1}, []string{f.grace}, 2},
		{"offset", store.UserQuery{Limit: 10, Offset: 1}, []string{f.ada}, 2},
		{"past the end", store.UserQuery{Limit: 10, Offset: 5}, nil, 2},
		{"email any case", store.UserQuery{Limit: 10, Email: "ADA@example.com"}, []string{f.ada}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users, total, err := f.svc.Users(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, u := range users {
				ids = append(ids, u.User.ID)
				if want := map[string]int{f.ada: 2, f.grace: 1}[u.User.ID]; len(u.Accounts) != want {
					t.Errorf("user %s has %d accounts, want %d", u.User.ID, len(u.Accounts), want)
				}
			}
			if !slices.Equal(ids, tc.want) || total != tc.total {
				t.Errorf("users %v of %d, want %v of %d", ids, total, tc.want, tc.total)
			}
		})
	}
}

func TestPages_OutOfRangeAreParamErrors(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, p := range []ops.Page{{Limit: 0}, {Limit: 501}, {Limit: 1, Offset: -1}} {
		calls := map[string]error{}
		_, _, calls["Users"] = f.svc.Users(ctx, store.UserQuery{Limit: p.Limit, Offset: p.Offset})
		_, _, calls["Sessions"] = f.svc.Sessions(ctx, f.ada, p)
		_, _, calls["RedirectURLs"] = f.svc.RedirectURLs(ctx, p)
		_, _, calls["ProviderTokens"] = f.svc.ProviderTokens(ctx, f.ada, "github", p)
		for name, err := range calls {
			if pe, ok := errors.AsType[*ops.ParamError](err); !ok || pe.Kind != ops.ParamInvalid || !errors.Is(err, ops.ErrInvalid) {
				t.Errorf("%s(%+v) = %v, want an invalid parameter", name, p, err)
			}
		}
	}
	for _, tc := range []struct {
		limit, offset string
		want          ops.Page
		ok            bool
	}{
		{"", "", ops.Page{Limit: 7}, true},
		{"500", "3", ops.Page{Limit: 500, Offset: 3}, true},
		{"ten", "", ops.Page{}, false},
		{"", "-1", ops.Page{}, false},
		{"1e3", "", ops.Page{}, false},
	} {
		p, err := ops.ParsePage(tc.limit, tc.offset, 7)
		if (err == nil) != tc.ok || tc.ok && p != tc.want {
			t.Errorf("ParsePage(%q, %q) = %+v, %v", tc.limit, tc.offset, p, err)
		}
	}
}

func TestUser_UnknownIsNotFound(t *testing.T) {
	f := newFixture(t)
	u, err := f.svc.User(context.Background(), f.ada)
	if err != nil || u.User.ID != f.ada || len(u.Accounts) != 2 {
		t.Fatalf("User(ada) = %+v, %v", u, err)
	}
	_, err = f.svc.User(context.Background(), "user_nobody")
	if nf := notFound(t, err, ops.KindUser); nf.Error() != "there is no user user_nobody" {
		t.Errorf("message %q", nf.Error())
	}
}

func TestDeleteUser_EndsSessionsTellsCachesAndRevokesTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.prime(t, f.adaSessions...)
	if err := f.svc.DeleteUser(ctx, f.ada); err != nil {
		t.Fatal(err)
	}
	if served := f.served(f.adaSessions...); len(served) > 0 {
		t.Errorf("the cache still serves sessions %v of the deleted user", served)
	}
	if _, err := f.view.User(ctx, f.ada); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the cache still serves the deleted user: %v", err)
	}
	if got := f.revoked.tokens; !slices.Equal(got, []string{"github-access-ada-work", "github-access-ada-home"}) {
		t.Errorf("revoked %v", got)
	}
	if _, err := f.st.User(ctx, f.ada); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the user is still there: %v", err)
	}
	if problems, err := f.st.Check(ctx); err != nil || len(problems) > 0 {
		t.Errorf("store after the deletion: %v %v", problems, err)
	}
	notFound(t, f.svc.DeleteUser(ctx, f.ada), ops.KindUser)
	if len(f.revoked.tokens) != 2 {
		t.Error("a second deletion revoked again")
	}
}

func TestDeleteUser_AProviderThatFailsToRevokeDoesNotFailIt(t *testing.T) {
	f := newFixture(t)
	f.revoked.fail = true
	if err := f.svc.DeleteUser(context.Background(), f.ada); err != nil {
		t.Fatal(err)
	}
	if n := f.logs.FilterMessage("revoking tokens at the provider failed").Len(); n != 2 {
		t.Errorf("%d warnings, want one per account", n)
	}
}

// Disconnecting an account ends the sessions signed in through it (and
// tells the caches of each), and no other session of the user.
func TestDisconnectAccount_EndsTheSessionsSignedInThroughIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	through := &store.Session{UserID: f.ada, AccountID: f.adaHome.ID, ExpiresAt: f.hour}
	if err := f.st.CreateSession(ctx, through); err != nil {
		t.Fatal(err)
	}
	f.prime(t, through.ID)
	gone, ended, err := f.svc.DisconnectAccount(ctx, f.ada, f.adaHome.ID)
	if err != nil || gone.ID != f.adaHome.ID {
		t.Fatalf("DisconnectAccount = %v, %v", gone, err)
	}
	if served := f.served(through.ID); !slices.Equal(ended, []string{through.ID}) || len(served) > 0 {
		t.Errorf("ended %v, the cache still serves %v; want the session signed in through the account ended", ended, served)
	}
	if _, err := f.st.Session(ctx, through.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the session signed in through the account is still live: %v", err)
	}
	if live, total, _ := f.svc.Sessions(ctx, f.ada, ops.Page{Limit: 10}); total != len(f.adaSessions) || len(live) != total {
		t.Errorf("%d sessions left, want the user's other %d", total, len(f.adaSessions))
	}
	if accounts, _ := f.view.ExternalAccounts(ctx, f.ada); len(accounts) != 1 || !slices.Equal(f.revoked.tokens, []string{"github-access-ada-home"}) {
		t.Errorf("the cache serves %d accounts of the user, want 1; revoked %v", len(accounts), f.revoked.tokens)
	}
	for _, tc := range []struct{ user, account string }{
		{f.ada, f.adaHome.ID},   // gone already
		{f.grace, f.adaWork.ID}, // another user's
		{f.ada, "eac_nobody"},
	} {
		_, _, err := f.svc.DisconnectAccount(ctx, tc.user, tc.account)
		if nf := notFound(t, err, ops.KindExternalAccount); !strings.Contains(nf.Error(), tc.account+" of user "+tc.user) {
			t.Errorf("message %q", nf.Error())
		}
	}
	if u, _ := f.svc.User(ctx, f.grace); len(u.Accounts) != 1 {
		t.Error("another user's account was touched")
	}
}

func TestSessions_PagesAUsersLiveSessions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		user  string
		page  ops.Page
		n     int
		total int
	}{
		{f.ada, ops.Page{Limit: 10}, 2, 2},
		{f.ada, ops.Page{Limit: 1, Offset: 1}, 1, 2},
		{f.ada, ops.Page{Limit: 1, Offset: 9}, 0, 2},
		{"user_nobody", ops.Page{Limit: 10}, 0, 0},
	} {
		got, total, err := f.svc.Sessions(ctx, tc.user, tc.page)
		if err != nil || len(got) != tc.n || total != tc.total {
			t.Errorf("Sessions(%s, %+v) = %d of %d, %v; want %d of %d", tc.user, tc.page, len(got), total, err, tc.n, tc.total)
		}
	}
}

func TestRevokeSession_EndsItAndNeverRepeatsItsID(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.adaSessions[0]
	f.prime(t, id)
	s, err := f.svc.RevokeSession(ctx, id)
	if err != nil || s.ID != id || s.UserID != f.ada {
		t.Fatalf("RevokeSession = %+v, %v", s, err)
	}
	if served := f.served(id); len(served) > 0 {
		t.Errorf("the cache still serves the revoked session")
	}
	if _, err := f.st.Session(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the session lives on: %v", err)
	}
	_, err = f.svc.RevokeSession(ctx, id)
	if nf := notFound(t, err, ops.KindSession); strings.Contains(nf.Error(), id) {
		t.Errorf("the error repeats the session id: %q", nf.Error())
	}
}

func TestReplayWebhook_ChecksItsStart(t *testing.T) {
	f := newFixture(t)
	since := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name  string
		start ops.ReplayStart
		check func(error) bool
	}{
		{"neither", ops.ReplayStart{}, paramKind(ops.ParamMissing)},
		{"both", ops.ReplayStart{Since: &since, EventID: "evt_x"}, paramKind(ops.ParamMissing)},
		{"not an event id", ops.ReplayStart{EventID: "usr_123"}, paramKind(ops.ParamFormat)},
		{"no webhooks configured", ops.ReplayStart{Since: &since}, func(err error) bool {
			nf, ok := errors.AsType[*ops.NotFoundError](err)
			return ok && nf.Kind == ops.KindWebhook && nf.ID == "app"
		}},
	} {
		if _, err := f.svc.ReplayWebhook(context.Background(), "app", tc.start); !tc.check(err) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if states, err := f.svc.Webhooks(context.Background()); err != nil || len(states) != 0 {
		t.Errorf("Webhooks without any: %v, %v", states, err)
	}
}

func paramKind(k ops.ParamKind) func(error) bool {
	return func(err error) bool {
		pe, ok := errors.AsType[*ops.ParamError](err)
		return ok && pe.Kind == k
	}
}

func TestProviders_ReportsEachInOrder(t *testing.T) {
	down := &fakeProvider{name: "gitlab", fail: true}
	svc := ops.New(ops.Options{Providers: []ops.Provider{&fakeProvider{name: "github"}, down}})
	got := svc.Providers(context.Background())
	if len(got) != 2 || got[0].Name != "github" || got[0].Unreachable != nil || got[0].DisplayName != "GITHUB" ||
		got[1].Name != "gitlab" || got[1].Unreachable == nil {
		t.Errorf("Providers = %+v", got)
	}
}

func TestNotFoundError_Messages(t *testing.T) {
	for _, tc := range []struct {
		err  ops.NotFoundError
		want string
	}{
		{ops.NotFoundError{Kind: ops.KindUser, ID: "user_x"}, "there is no user user_x"},
		{ops.NotFoundError{Kind: ops.KindRedirectURL, ID: "ru_x"}, "there is no redirect URL ru_x"},
		{ops.NotFoundError{Kind: ops.KindExternalAccount, ID: "eac_x", UserID: "user_x"}, "there is no external account eac_x of user user_x"},
		{ops.NotFoundError{Kind: ops.KindSession, ID: "sess_secret"}, "there is no live session with this id"},
		{ops.NotFoundError{Kind: ops.KindWebhook, ID: "app"}, "there is no webhook endpoint app in the running configuration"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.err, got, tc.want)
		}
	}
}
