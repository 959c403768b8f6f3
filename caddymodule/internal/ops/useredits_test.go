package ops_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// A ban ends every session of the user in the store and in the caches at
// once, and is one audit entry; banning a banned user changes nothing and
// records nothing. A lock ends no session.
func TestSetBanned_EndsSessionsTellsCachesAndAuditsOnce(t *testing.T) {
	f := newFixture(t)
	ctx := ops.WithActor(context.Background(), ops.Actor{ID: "api_key:abc123", ClientIP: "198.51.100.7"})
	if u, err := f.svc.SetLocked(ctx, f.ada, true); err != nil || !u.User.Locked() {
		t.Fatalf("lock: %+v %v", u.User, err)
	}
	if sessions, _ := f.st.Sessions(ctx, f.ada); len(sessions) != len(f.adaSessions) {
		t.Fatalf("the lock ended sessions: %d left", len(sessions))
	}
	f.prime(t, f.adaSessions...)
	u, err := f.svc.SetBanned(ctx, f.ada, true)
	if err != nil || !u.User.Banned || len(u.Accounts) != 2 {
		t.Fatalf("ban: %+v %v", u, err)
	}
	if served := f.served(f.adaSessions...); len(served) > 0 {
		t.Errorf("after the ban the cache still serves sessions %v", served)
	}
	if live, _ := f.st.Sessions(ctx, f.ada); len(live) != 0 {
		t.Errorf("%d sessions outlived the ban", len(live))
	}
	if _, err := f.svc.SetBanned(ctx, f.ada, true); err != nil {
		t.Errorf("a second ban: %v", err)
	}
	var actions []string
	for _, e := range f.audit.All() {
		m := e.ContextMap()
		if m["user_id"] != f.ada || m["actor"] != "api_key:abc123" || m["client_ip"] != "198.51.100.7" {
			t.Errorf("audit entry %s: %v", e.Message, m)
		}
		actions = append(actions, e.Message)
	}
	if got := strings.Join(actions, " "); got != "user.lock user.ban" {
		t.Errorf("audited %q", got)
	}
	_, err = f.svc.SetBanned(ctx, "user_nobody", true)
	notFound(t, err, ops.KindUser)
	_, err = f.svc.SetLocked(ctx, "user_nobody", false)
	notFound(t, err, ops.KindUser)
}

// Creates and updates that break a rule are *ParamError naming the field,
// ParamTaken for a value another user holds, and change nothing.
func TestUserEdits_RefusalsAreParamErrorsAndChangeNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	str := func(s string) *string { return &s }
	big := map[string]any{"x": strings.Repeat("x", store.MaxMetadataSize)}
	if _, err := f.svc.UpdateUser(ctx, f.grace, ops.UserChanges{Username: str("grace_h")}); err != nil {
		t.Fatal(err)
	}
	before, _ := f.st.User(ctx, f.ada)
	total, _ := f.svc.CountUsers(ctx, store.UserQuery{})
	for _, tc := range []struct {
		name  string
		run   func() error
		param string
		kind  ops.ParamKind
	}{
		{"create with a held address", func() error {
			_, err := f.svc.CreateUser(ctx, []string{"ADA@example.com"}, ops.UserChanges{})
			return err
		}, "email_address", ops.ParamTaken},
		{"create with a bad address", func() error {
			_, err := f.svc.CreateUser(ctx, []string{"ada at example"}, ops.UserChanges{})
			return err
		}, "email_address", ops.ParamFormat},
		{"update to a taken username", func() error {
			_, err := f.svc.UpdateUser(ctx, f.ada, ops.UserChanges{Username: str("GRACE_H"), FirstName: str("Ada")})
			return err
		}, "username", ops.ParamTaken},
		{"update to a bad username", func() error {
			_, err := f.svc.UpdateUser(ctx, f.ada, ops.UserChanges{Username: str("a!")})
			return err
		}, "username", ops.ParamFormat},
		{"metadata too large", func() error {
			_, err := f.svc.UpdateMetadata(ctx, f.ada, ops.Metadata{Public: &big}, true)
			return err
		}, "public_metadata", ops.ParamFormat},
		{"an unknown order", func() error {
			_, err := f.svc.CountUsers(ctx, store.UserQuery{OrderBy: "-phone_number"})
			return err
		}, "order_by", ops.ParamValue},
	} {
		err := tc.run()
		pe, ok := err.(*ops.ParamError)
		if !ok || pe.Param != tc.param || pe.Kind != tc.kind || !strings.Contains(pe.Message, tc.param) {
			t.Errorf("%s: %#v, want a %s error of kind %d", tc.name, err, tc.param, tc.kind)
		}
	}
	after, _ := f.st.User(ctx, f.ada)
	if n, _ := f.svc.CountUsers(ctx, store.UserQuery{}); n != total || after.UpdatedAt != before.UpdatedAt || after.FirstName != "" {
		t.Errorf("refusals changed things: %d users (was %d), ada %+v", n, total, after)
	}
}

// UpdateMetadata merges or replaces each object given and leaves the
// others; the public metadata reaches the user's live sessions.
func TestUpdateMetadata_MergesOrReplacesAndReachesSessions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pub := map[string]any{"plan": "pro", "prefs": map[string]any{"theme": "dark", "lang": "en"}}
	priv := map[string]any{"stripe": "cus_1"}
	if _, err := f.svc.UpdateMetadata(ctx, f.ada, ops.Metadata{Public: &pub, Private: &priv}, false); err != nil {
		t.Fatal(err)
	}
	patch := map[string]any{"prefs": map[string]any{"lang": nil}, "seats": 3.0}
	u, err := f.svc.UpdateMetadata(ctx, f.ada, ops.Metadata{Public: &patch}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"plan": "pro", "prefs": map[string]any{"theme": "dark"}, "seats": 3.0}
	if !equalJSON(u.User.PublicMetadata, want) || !equalJSON(u.User.PrivateMetadata, priv) {
		t.Errorf("after the merge: %v / %v", u.User.PublicMetadata, u.User.PrivateMetadata)
	}
	sess, err := f.st.Session(ctx, f.adaSessions[0])
	if err != nil || !equalJSON(sess.PublicMetadata, want) {
		t.Errorf("the session carries %v (%v), want %v", sess.PublicMetadata, err, want)
	}
	var none map[string]any
	if u, err = f.svc.UpdateMetadata(ctx, f.ada, ops.Metadata{Private: &none}, true); err != nil || u.User.PrivateMetadata != nil || !equalJSON(u.User.PublicMetadata, want) {
		t.Errorf("clearing the private metadata: %+v %v", u.User, err)
	}
}

func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
