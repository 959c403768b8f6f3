package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// createUser creates a user as the backend API does.
func (e *env) createUser(u store.User) *store.User {
	e.t.Helper()
	if err := e.st.CreateUser(context.Background(), &u); err != nil {
		e.t.Fatalf("CreateUser: %v", err)
	}
	return &u
}

func emails(addrs ...string) []store.EmailAddress {
	out := make([]store.EmailAddress, len(addrs))
	for i, a := range addrs {
		out[i] = store.EmailAddress{Email: a}
	}
	return out
}

func takenField(err error) string {
	var fe *store.FieldError
	if errors.As(err, &fe) && errors.Is(err, store.ErrExists) {
		return fe.Field
	}
	return ""
}

func createUserRecordsEverythingAndLinksAFirstSignIn(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	cursor := lastEventID(e)
	u := e.createUser(store.User{Emails: emails("Ada@Example.com"), FirstName: "Ada", LastName: "Lovelace",
		Username: "Ada_L", ExternalID: "legacy-42",
		PublicMetadata: map[string]any{"plan": "pro"}, PrivateMetadata: map[string]any{"stripe": "cus_1"},
		UnsafeMetadata: map[string]any{"theme": "dark"}})
	got, err := e.st.User(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != "ada_l" || got.ExternalID != "legacy-42" || got.FirstName != "Ada" || got.LastName != "Lovelace" ||
		got.PublicMetadata["plan"] != "pro" || got.PrivateMetadata["stripe"] != "cus_1" || got.UnsafeMetadata["theme"] != "dark" ||
		got.PrimaryEmail() != "Ada@Example.com" || !slices.Equal(got.Emails[0].VerifiedBy, []string{store.VouchedByAPI}) {
		t.Fatalf("stored user: %+v", got)
	}
	e.expectEvents(&cursor, "CreateUser", store.EventUserCreated)
	// A trusted provider asserting the address joins the created user.
	res := e.signIn(store.SignIn{Account: account("ada", "ada@example.com", true), LinkByEmail: func(string) bool { return true }})
	if res.User.ID != u.ID || !res.LinkedByEmail {
		t.Fatalf("sign-in with the created address: user %s (linked %v), want %s", res.User.ID, res.LinkedByEmail, u.ID)
	}
	// An untrusted one is refused rather than given a second user.
	_, err = e.st.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "other", Issuer: "https://other.example",
		Subject: "ada", Email: "ada@example.com", EmailVerified: true}, LinkByEmail: func(p string) bool { return p == "test" }})
	if !errors.Is(err, store.ErrEmailHeld) {
		t.Fatalf("untrusted provider: %v, want ErrEmailHeld", err)
	}
	for _, by := range []store.UserQuery{
		{Filter: &store.UserFilter{Usernames: []string{"ADA_L"}}},
		{Filter: &store.UserFilter{ExternalIDs: []string{"legacy-42"}}},
		{Filter: &store.UserFilter{Query: "lovel"}},
		{Email: "ada@example.com", Filter: &store.UserFilter{IDs: []string{u.ID}}},
	} {
		if users, total, err := e.st.Users(ctx, by); err != nil || total != 1 || users[0].ID != u.ID {
			t.Errorf("Users(%+v): %v %d %v", by.Filter, userIDs(users), total, err)
		}
	}
	e.checkClean()
}

func createUserRefusesTakenAndInvalidValues(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	e.createUser(store.User{Emails: emails("bo@example.com"), Username: "bobby", ExternalID: "x1"})
	cursor := lastEventID(e)
	for _, tc := range []struct {
		u     store.User
		taken string
	}{
		{store.User{Emails: emails("BO@example.com")}, "email_address"},
		{store.User{Username: "BOBBY"}, "username"},
		{store.User{ExternalID: "x1"}, "external_id"},
	} {
		if err := e.st.CreateUser(ctx, &tc.u); takenField(err) != tc.taken {
			t.Errorf("CreateUser(%+v): %v, want %s taken", tc.u, err, tc.taken)
		}
	}
	for _, u := range []store.User{
		{Emails: emails("not-an-address")},
		{Emails: emails("a@example.com", "A@example.com")},
		{Username: "ab"},
		{Username: "has space"},
		{ExternalID: "a\nb"},
		{PublicMetadata: map[string]any{"big": strings.Repeat("x", store.MaxMetadataSize)}},
	} {
		if err := e.st.CreateUser(ctx, &u); !errors.Is(err, store.ErrInvalidUser) {
			t.Errorf("CreateUser(%.80v): %v, want ErrInvalidUser", u, err)
		}
	}
	e.expectEvents(&cursor, "refused creations")
	if _, total, _ := e.st.Users(ctx, store.UserQuery{}); total != 1 {
		t.Errorf("%d users after refused creations, want 1", total)
	}
	e.checkClean()
}

func createUserConcurrentSameUsernameMakesOne(t *testing.T, o opener) {
	e := o.env(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = e.st.CreateUser(context.Background(), &store.User{Username: "racer"}) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case takenField(err) != "username":
			t.Errorf("a losing creation: %v, want username taken", err)
		}
	}
	if won != 1 {
		t.Errorf("%d creations of one username succeeded, want 1", won)
	}
	e.checkClean()
}

func updateUserBanEndsSessionsAndRefusesSignIn(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	res := e.signIn(store.SignIn{Account: account("cy", "cy@example.com", true)})
	s1, s2 := e.session(res.User.ID), e.session(res.User.ID)
	cursor := lastEventID(e)
	up, err := e.st.UpdateUser(ctx, res.User.ID, func(u *store.User) error { u.Banned = true; return nil })
	if err != nil || !up.Changed || !up.User.Banned {
		t.Fatalf("ban: %+v %v", up, err)
	}
	slices.Sort(up.RevokedSessions)
	want := []string{s1, s2}
	slices.Sort(want)
	if !slices.Equal(up.RevokedSessions, want) || e.live(s1) || e.live(s2) {
		t.Errorf("ban revoked %v (live %v %v), want both sessions gone", len(up.RevokedSessions), e.live(s1), e.live(s2))
	}
	e.expectEvents(&cursor, "ban", store.EventUserUpdated, store.EventSessionRevoked, store.EventSessionRevoked)
	if _, err := e.st.SignIn(ctx, store.SignIn{Account: account("cy", "cy@example.com", true)}); !errors.Is(err, store.ErrUserBanned) {
		t.Errorf("banned sign-in: %v, want ErrUserBanned", err)
	}
	err = e.st.CreateSession(ctx, &store.Session{UserID: res.User.ID, ExpiresAt: time.Now().Add(time.Hour)})
	if !errors.Is(err, store.ErrUserBanned) {
		t.Errorf("banned CreateSession: %v, want ErrUserBanned", err)
	}
	e.expectEvents(&cursor, "refused sign-ins")
	// Unban, lock: the lock refuses sign-ins too, and keeps sessions.
	e.mustUpdate(res.User.ID, func(u *store.User) { u.Banned = false })
	s3 := e.session(res.User.ID)
	e.mustUpdate(res.User.ID, func(u *store.User) { u.LockedAt = time.Now() })
	if _, err := e.st.SignIn(ctx, store.SignIn{Account: account("cy", "cy@example.com", true)}); !errors.Is(err, store.ErrUserLocked) {
		t.Errorf("locked sign-in: %v, want ErrUserLocked", err)
	}
	if !e.live(s3) {
		t.Error("the lock ended a session")
	}
	e.mustUpdate(res.User.ID, func(u *store.User) { u.LockedAt = time.Time{} })
	e.signIn(store.SignIn{Account: account("cy", "cy@example.com", true)})
	e.checkClean()
}

func (e *env) mustUpdate(id string, fn func(u *store.User)) store.UserUpdate {
	e.t.Helper()
	up, err := e.st.UpdateUser(context.Background(), id, func(u *store.User) error { fn(u); return nil })
	if err != nil {
		e.t.Fatalf("UpdateUser: %v", err)
	}
	return up
}

func updateUserKeepsIdentityMovesHandlesAndSessionsMetadata(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	res := e.signIn(store.SignIn{Account: account("di", "di@example.com", true)})
	other := e.createUser(store.User{Username: "taken", ExternalID: "ext-taken"})
	sid := e.session(res.User.ID)
	cursor := lastEventID(e)
	up := e.mustUpdate(res.User.ID, func(u *store.User) {
		u.ID, u.Emails, u.CreatedAt = "user_forged", nil, time.Unix(0, 0)
		u.Username, u.ExternalID = "DeeDee", "ext-1"
		u.PublicMetadata = map[string]any{"role": "admin"}
	})
	if up.User.ID != res.User.ID || len(up.User.Emails) != 1 || !up.User.CreatedAt.Equal(res.User.CreatedAt) || up.User.Username != "deedee" {
		t.Fatalf("update changed what it must not, or not what it should: %+v", up.User)
	}
	e.expectEvents(&cursor, "update", store.EventUserUpdated)
	if s := e.sessionRecord(sid); s.PublicMetadata["role"] != "admin" || s.UpdatedAt.IsZero() {
		t.Errorf("the live session's metadata copy: %v (updated %v)", s.PublicMetadata, s.UpdatedAt)
	}
	// Unchanged: no event.
	if up := e.mustUpdate(res.User.ID, func(u *store.User) { u.Username = "DEEDEE" }); up.Changed {
		t.Error("an update that changed nothing reports a change")
	}
	for field, fn := range map[string]func(u *store.User) error{
		"username":    func(u *store.User) error { u.Username = "TAKEN"; return nil },
		"external_id": func(u *store.User) error { u.ExternalID = "ext-taken"; return nil },
	} {
		if _, err := e.st.UpdateUser(ctx, res.User.ID, fn); takenField(err) != field {
			t.Errorf("taking %s of %s: %v", field, other.ID, err)
		}
	}
	fnErr := errors.New("refused by fn")
	if _, err := e.st.UpdateUser(ctx, res.User.ID, func(*store.User) error { return fnErr }); !errors.Is(err, fnErr) {
		t.Errorf("fn's error: %v", err)
	}
	if _, err := e.st.UpdateUser(ctx, "user_nosuch", func(*store.User) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	e.expectEvents(&cursor, "refused updates")
	// A dropped username is free again; deleting the user frees the rest.
	e.mustUpdate(res.User.ID, func(u *store.User) { u.Username = "" })
	e.createUser(store.User{Username: "deedee"})
	if err := e.st.DeleteUser(ctx, res.User.ID); err != nil {
		t.Fatal(err)
	}
	e.createUser(store.User{ExternalID: "ext-1"})
	e.checkClean()
}

func usersFilterAndOrderLikeClerk(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	var ids []string
	for _, u := range []store.User{
		{FirstName: "Cat", LastName: "Zed", Username: "cat1", Emails: emails("cat@example.com")},
		{FirstName: "Abe", LastName: "Young", Username: "abe1", Banned: false},
		{FirstName: "Bea", LastName: "Xu", Username: "bea1", Emails: emails("bea@example.com")},
	} {
		ids = append(ids, e.createUser(u).ID)
		e.clk.Advance(time.Second)
	}
	e.mustUpdate(ids[1], func(u *store.User) { u.Banned = true })
	banned, notBanned := true, false
	for _, tc := range []struct {
		q    store.UserQuery
		want []string
	}{
		{store.UserQuery{OrderBy: "+created_at"}, ids},
		{store.UserQuery{OrderBy: "-created_at"}, []string{ids[2], ids[1], ids[0]}},
		{store.UserQuery{OrderBy: "first_name"}, []string{ids[1], ids[2], ids[0]}},
		{store.UserQuery{OrderBy: "-last_name"}, []string{ids[0], ids[1], ids[2]}},
		{store.UserQuery{OrderBy: "username", Limit: 1, Offset: 1}, []string{ids[2]}},
		{store.UserQuery{Filter: &store.UserFilter{Banned: &banned}}, []string{ids[1]}},
		{store.UserQuery{Filter: &store.UserFilter{Banned: &notBanned}, OrderBy: "+created_at"}, []string{ids[0], ids[2]}},
		{store.UserQuery{Filter: &store.UserFilter{Emails: []string{"BEA@example.com", "cat@example.com"}}, OrderBy: "+created_at"}, []string{ids[0], ids[2]}},
		{store.UserQuery{Filter: &store.UserFilter{IDs: []string{ids[1], "user_none"}}}, []string{ids[1]}},
		{store.UserQuery{Filter: &store.UserFilter{Query: "EXAMPLE.COM"}, OrderBy: "+created_at"}, []string{ids[0], ids[2]}},
		{store.UserQuery{Filter: &store.UserFilter{Query: "nobody"}}, nil},
	} {
		users, total, err := e.st.Users(ctx, tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := userIDs(users); !slices.Equal(got, tc.want) || (tc.q.Limit == 0 && total != len(tc.want)) {
			t.Errorf("Users(%+v, %+v): %v (total %d), want %v", tc.q, tc.q.Filter, got, total, tc.want)
		}
	}
}
