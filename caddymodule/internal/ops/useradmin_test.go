package ops_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func TestSearchUsers_FindsByIDAddressOrPrefix(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{f.grace, f.ada}},
		{f.ada, []string{f.ada}},
		{"ADA@example.com", []string{f.ada}},
		{"ada-h", []string{f.ada}}, // a linked account's subject
		{"gra", []string{f.grace}},
		{"@example", nil}, // a prefix, not a substring
		{f.grace[:8], []string{f.grace}},
		{"user_nobody", nil},
		{"nobody", nil},
	} {
		found, err := f.svc.SearchUsers(ctx, tc.query, ops.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		users, total := found.Users, found.Total
		var got []string
		for _, u := range users {
			got = append(got, u.ID)
		}
		if total != len(tc.want) || len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
			t.Errorf("search %q = %v (%d), want %v", tc.query, got, total, tc.want)
		}
	}
	if _, err := f.svc.SearchUsers(ctx, "", ops.Page{Limit: 0}); !errors.Is(err, ops.ErrInvalid) {
		t.Errorf("a page of 0: %v", err)
	}
}

// Each change is one audit entry naming the actor, tells the caches, and
// leaves the user as the store's rules say.
func TestUserChanges_AreAuditedAndTellTheCaches(t *testing.T) {
	f := newFixture(t)
	ctx := ops.WithActor(context.Background(), ops.Actor{ID: "console:user_op", ClientIP: "203.0.113.7"})
	steps := []struct {
		action string
		do     func() error
		check  func(u *store.User) bool
	}{
		{"user.lock", func() error { _, err := f.svc.SetLocked(ctx, f.ada, true); return err }, (*store.User).Locked},
		{"user.unlock", func() error { _, err := f.svc.SetLocked(ctx, f.ada, false); return err }, func(u *store.User) bool { return !u.Locked() }},
		{"user.update", func() error {
			m := map[string]any{"plan": "pro"}
			_, err := f.svc.UpdateMetadata(ctx, f.ada, ops.Metadata{Public: &m}, false)
			return err
		}, func(u *store.User) bool { return u.PublicMetadata["plan"] == "pro" && u.PrivateMetadata == nil }},
		{"user.ban", func() error { _, err := f.svc.SetBanned(ctx, f.ada, true); return err }, func(u *store.User) bool { return u.Banned }},
		{"user.unban", func() error { _, err := f.svc.SetBanned(ctx, f.ada, false); return err }, func(u *store.User) bool { return !u.Banned }},
	}
	for i, s := range steps {
		if s.action == "user.ban" {
			f.prime(t, f.adaSessions...)
		}
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.action, err)
		}
		u, _ := f.st.User(context.Background(), f.ada)
		if !s.check(u) {
			t.Errorf("%s left %+v", s.action, u)
		}
		e := f.audit.All()[i]
		if m := e.ContextMap(); e.Message != s.action || m["actor"] != "console:user_op" || m["client_ip"] != "203.0.113.7" || m["user_id"] != f.ada {
			t.Errorf("audit entry %d = %s %v, want %s", i, e.Message, m, s.action)
		}
	}
	// The ban ended both sessions, which the cache no longer serves.
	if served := f.served(f.adaSessions...); len(served) > 0 {
		t.Errorf("after the ban the cache still serves sessions %v", served)
	}
	if sessions, _ := f.st.Sessions(context.Background(), f.ada); len(sessions) != 0 {
		t.Errorf("a banned user kept %d sessions", len(sessions))
	}
	if _, err := f.svc.SetBanned(ctx, "user_nobody", true); !errors.Is(err, ops.ErrNotFound) {
		t.Errorf("banning nobody: %v", err)
	}
	if n := len(f.audit.All()); n != len(steps) {
		t.Errorf("%d audit entries, want %d: refusals record nothing", n, len(steps))
	}
}

func TestRevokeSessions_EndsEveryOne(t *testing.T) {
	f := newFixture(t)
	f.prime(t, f.adaSessions...)
	n, err := f.svc.RevokeSessions(context.Background(), f.ada)
	if served := f.served(f.adaSessions...); err != nil || n != 2 || len(served) > 0 {
		t.Fatalf("RevokeSessions = %d, %v; the cache still serves %v", n, err, served)
	}
	if sessions, _ := f.st.Sessions(context.Background(), f.ada); len(sessions) != 0 {
		t.Errorf("%d sessions left", len(sessions))
	}
	if f.audit.All()[0].Message != "session.revoke_all" {
		t.Errorf("audit: %v", f.audit.All())
	}
}

// Grace's only account is at corp, a connect-only provider here: she has
// no sign-in identity to keep, so the refusal is about Ada, whose last
// GitHub account stays.
func TestDisconnectAccountKeepingSignIn_NeverTheLastSignInIdentity(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, _, err := f.svc.DisconnectAccountKeepingSignIn(ctx, f.ada, f.adaHome.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.DisconnectAccountKeepingSignIn(ctx, f.ada, f.adaWork.ID); !errors.Is(err, ops.ErrLastIdentity) {
		t.Fatalf("the last sign-in identity: %v", err)
	}
	if accounts, _ := f.st.ExternalAccounts(ctx, f.ada); len(accounts) != 1 {
		t.Errorf("ada has %d accounts, want 1", len(accounts))
	}
}

func TestSignInsPerDay_CountsSessionsStartedEachDay(t *testing.T) {
	f := newFixture(t)
	counts, complete, err := f.svc.SignInsPerDay(context.Background(), 3, time.Now())
	if err != nil || !complete || len(counts) != 3 || counts[2] != 2 || counts[0]+counts[1] != 0 {
		t.Errorf("SignInsPerDay = %v, %v, %v; want today's 2 sessions", counts, complete, err)
	}
	if n, more, err := f.svc.Backlog(context.Background(), "", 2); err != nil || n != 2 || !more {
		t.Errorf("Backlog = %d, %v, %v; want 2 and more", n, more, err)
	}
}
