package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// A user keeps its latest store.UserAuditKeep audit entries, newest first,
// whole; a user that is gone keeps none, and its deletion takes them along.
func userAuditKeepsTheLatestPerUser(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	ada := e.signIn(store.SignIn{Account: account("ada", "", false), Now: e.clk.Now()}).User.ID
	bob := e.signIn(store.SignIn{Account: account("bob", "", false), Now: e.clk.Now()}).User.ID
	at := e.clk.Now().Truncate(time.Microsecond)
	entry := func(user string, i int) audit.Entry {
		return audit.Entry{Time: at.Add(time.Duration(i) * time.Second), Actor: "console:" + bob, ClientIP: "203.0.113.9",
			Action: audit.ActionReadToken, UserID: user, Provider: "github", ExternalAccountID: fmt.Sprint("eac_", i)}
	}
	var want []audit.Entry
	for i := range store.UserAuditKeep + 5 {
		if err := e.st.AddUserAudit(ctx, entry(ada, i)); err != nil {
			t.Fatal(err)
		}
		want = append(want, entry(ada, i))
	}
	if err := e.st.AddUserAudit(ctx, entry(bob, 0)); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(want)
	got, err := e.st.UserAudit(ctx, ada, 1000)
	if err != nil {
		t.Fatal(err)
	}
	equal := func(got, want []audit.Entry) bool {
		return slices.EqualFunc(got, want, func(x, y audit.Entry) bool { x.Time, y.Time = x.Time.UTC(), y.Time.UTC(); return x == y })
	}
	if !equal(got, want[:store.UserAuditKeep]) {
		t.Errorf("ada's entries: %d, first %v; want the latest %d, newest first", len(got), got[:min(1, len(got))], store.UserAuditKeep)
	}
	if got, err := e.st.UserAudit(ctx, ada, 3); err != nil || !equal(got, want[:3]) {
		t.Errorf("ada's latest 3: %v, %v", got, err)
	}
	if got, err := e.st.UserAudit(ctx, bob, 10); err != nil || !equal(got, []audit.Entry{entry(bob, 0)}) {
		t.Errorf("bob's entries: %v, %v", got, err)
	}
	if err := e.st.DeleteUser(ctx, ada); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AddUserAudit(ctx, audit.Entry{Time: at, Action: audit.ActionUserDelete, UserID: ada}); err != nil {
		t.Errorf("an entry about a deleted user: %v", err)
	}
	for _, id := range []string{ada, "user_nobody", "not an id"} {
		if got, err := e.st.UserAudit(ctx, id, 10); err != nil || len(got) > 0 {
			t.Errorf("entries of %s: %v, %v; want none", id, got, err)
		}
	}
	e.checkClean()
}
