package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// signInUsers creates n users a second apart (sign-in k at the clock + k s)
// and returns their ids, oldest first.
func (e *env) signInUsers(prefix string, n int) []string {
	e.t.Helper()
	ids := make([]string, n)
	for i := range n {
		res := e.signIn(store.SignIn{Account: account(fmt.Sprintf("%s%03d", prefix, i), "", false), Now: e.clk.Now()})
		ids[i] = res.User.ID
		e.clk.Advance(time.Second)
	}
	return ids
}

func usersPagesNewestFirstWithTheTotal(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	ids := e.signInUsers("u", 25)
	newest := slices.Clone(ids)
	slices.Reverse(newest)
	for _, tc := range []struct {
		offset int
		want   []string
	}{
		{0, newest[:10]},
		{10, newest[10:20]},
		{20, newest[20:]},
		{25, nil},
		{1000, nil},
	} {
		users, total, err := e.st.Users(ctx, store.UserQuery{Limit: 10, Offset: tc.offset})
		if err != nil {
			t.Fatal(err)
		}
		if got := userIDs(users); total != 25 || !slices.Equal(got, tc.want) {
			t.Errorf("offset %d: %d users %v (total %d), want %d %v (total 25)", tc.offset, len(got), got, total, len(tc.want), tc.want)
		}
	}
}

func usersLimitAndOffsetDefaults(t *testing.T, o opener) {
	e := o.env(t)
	const maxLimit = 500
	ids := e.signInUsers("u", maxLimit+1)
	slices.Reverse(ids)
	for _, tc := range []struct {
		name  string
		q     store.UserQuery
		want  []string
		total int
	}{
		{"zero limit is 10", store.UserQuery{}, ids[:10], len(ids)},
		{"negative limit is 10", store.UserQuery{Limit: -3}, ids[:10], len(ids)},
		{"limit is at most 500", store.UserQuery{Limit: 10000}, ids[:maxLimit], len(ids)},
		{"negative offset is 0", store.UserQuery{Limit: 2, Offset: -7}, ids[:2], len(ids)},
		{"offset counts from the newest", store.UserQuery{Limit: 2, Offset: 499}, ids[499:], len(ids)},
	} {
		users, total, err := e.st.Users(context.Background(), tc.q)
		if err != nil || total != tc.total || !slices.Equal(userIDs(users), tc.want) {
			t.Errorf("%s: %d users, total %d, %v; want %d, %d", tc.name, len(users), total, err, len(tc.want), tc.total)
		}
	}
}

func usersFiltersByAnyAddressIgnoringCase(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	at := func(subject, email string, verified bool) string {
		e.clk.Advance(time.Second)
		return e.signIn(store.SignIn{Account: account(subject, email, verified), Now: e.clk.Now()}).User.ID
	}
	verified := at("nia", "Nia@Example.com", true)
	unverified := at("nia-2", "nia@example.com", false) // a second person claiming it, unverified
	slash := at("oz", "o/z@example.com", true)
	other := at("pam", "pam@example.com", true)
	second := e.signIn(store.SignIn{Account: account("pam-2", "pam@work.example", false), LinkToUser: other}).User.ID
	for _, tc := range []struct {
		email string
		q     store.UserQuery
		want  []string
		total int
	}{
		{"nia@example.com", store.UserQuery{}, []string{unverified, verified}, 2},
		{"NIA@EXAMPLE.COM", store.UserQuery{}, []string{unverified, verified}, 2},
		{"nia@example.com", store.UserQuery{Limit: 1}, []string{unverified}, 2},
		{"nia@example.com", store.UserQuery{Limit: 1, Offset: 1}, []string{verified}, 2},
		{"nia@example.com", store.UserQuery{Offset: 2}, nil, 2},
		{"pam@work.example", store.UserQuery{}, []string{second}, 1},
		{"o/z@example.com", store.UserQuery{}, []string{slash}, 1},
		{"o", store.UserQuery{}, nil, 0}, // "o/z@…" starts with "o/" but is another address
		{"nia@", store.UserQuery{}, nil, 0},
		{"%", store.UserQuery{}, nil, 0},
		{"nobody@example.com", store.UserQuery{}, nil, 0},
	} {
		tc.q.Email = tc.email
		users, total, err := e.st.Users(ctx, tc.q)
		if err != nil || total != tc.total || !slices.Equal(userIDs(users), tc.want) {
			t.Errorf("Users(%+v) = %v, %d, %v; want %v, %d", tc.q, userIDs(users), total, err, tc.want, tc.total)
		}
	}
}

func deleteUserRemovesTheUserWithEverythingItOwns(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	rose := e.signIn(store.SignIn{Account: account("rose", "rose@example.com", true)})
	roseGH := e.signIn(store.SignIn{Account: account("rose-gh", "rose@work.example", false), LinkToUser: rose.User.ID}).Account
	sam := e.signIn(store.SignIn{Account: account("sam", "sam@example.com", true)})
	var sessions []string
	for _, uid := range []string{rose.User.ID, rose.User.ID, sam.User.ID} {
		s := &store.Session{UserID: uid, ExpiresAt: e.clk.Now().Add(time.Hour)}
		if err := e.st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s.ID)
	}
	samBefore := e.view(sam.User.ID)
	if err := e.st.DeleteUser(ctx, rose.User.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.User(ctx, rose.User.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("User after delete = %v, want ErrNotFound", err)
	}
	for _, id := range []string{rose.Account.ID, roseGH.ID} {
		if _, err := e.st.ExternalAccount(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ExternalAccount(%s) after delete = %v, want ErrNotFound", id, err)
		}
	}
	for _, id := range sessions[:2] {
		if _, err := e.st.Session(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Session after delete = %v, want ErrNotFound", err)
		}
	}
	if accs, err := e.st.ExternalAccounts(ctx, rose.User.ID); err != nil || len(accs) != 0 {
		t.Errorf("ExternalAccounts after delete = %v, %v", accs, err)
	}
	if list, err := e.st.Sessions(ctx, rose.User.ID); err != nil || len(list) != 0 {
		t.Errorf("Sessions after delete = %v, %v", list, err)
	}
	if users, total, _ := e.st.Users(ctx, store.UserQuery{}); total != 1 || len(users) != 1 || users[0].ID != sam.User.ID {
		t.Errorf("Users after delete = %v (total %d), want only sam", userIDs(users), total)
	}
	for _, email := range []string{"rose@example.com", "rose@work.example"} {
		if _, total, _ := e.st.Users(ctx, store.UserQuery{Email: email}); total != 0 {
			t.Errorf("Users(%s) after delete: total %d, want 0", email, total)
		}
	}
	if samAfter := e.view(sam.User.ID); jsonOf(t, samAfter) != jsonOf(t, samBefore) {
		t.Errorf("sam changed: before %+v, after %+v", samBefore, samAfter)
	}
	e.checkClean()
	if err := e.st.DeleteUser(ctx, rose.User.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteUser = %v, want ErrNotFound", err)
	}
	// Her identities and email are free for anyone now.
	again := e.signIn(store.SignIn{Account: account("rose-gh", "rose@example.com", true), LinkByEmail: trustAll})
	if !again.UserCreated {
		t.Errorf("sign-in with a deleted user's identity = %+v, want a new user", again)
	}
}

func deleteUserUnknownUserIsNotFound(t *testing.T, o opener) {
	e := o.env(t)
	e.signIn(store.SignIn{Account: account("quin", "", false)})
	before := e.snapshot()
	for _, id := range []string{store.NewID("user"), "", "user/x"} {
		if err := e.st.DeleteUser(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteUser(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if after := e.snapshot(); after != before {
		t.Error("store changed by refused deletes")
	}
}

// A session created while its user is deleted either fails or goes with the
// user: it never outlives them.
func deleteUserConcurrentWithCreateSessionLeavesNoSession(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	for round := range 20 {
		u := e.signIn(store.SignIn{Account: account(fmt.Sprint("victim-", round), "", false)}).User
		const n = 8
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				s := &store.Session{UserID: u.ID, ExpiresAt: e.clk.Now().Add(time.Hour)}
				if err := e.st.CreateSession(ctx, s); err == nil {
					ids[i] = s.ID
				} else if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("CreateSession: %v", err)
				}
			})
		}
		wg.Go(func() {
			if err := e.st.DeleteUser(ctx, u.ID); err != nil {
				t.Errorf("DeleteUser: %v", err)
			}
		})
		wg.Wait()
		for _, id := range ids {
			if id == "" {
				continue
			}
			if s, err := e.st.Session(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("round %d: a session of the deleted user survives: %+v, %v", round, s, err)
			}
		}
	}
	e.checkClean()
}

// An identity linked while its user is deleted either fails or goes with the
// user: no account outlives its user.
func deleteUserConcurrentWithLinkLeavesNoAccount(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	for round := range 20 {
		u := e.signIn(store.SignIn{Account: account(fmt.Sprint("owner-", round), fmt.Sprint("owner-", round, "@example.com"), true)}).User
		var linked *store.ExternalAccount
		var wg sync.WaitGroup
		wg.Go(func() {
			acc := account(fmt.Sprint("linked-", round), fmt.Sprint("owner-", round, "@example.com"), true)
			res, err := e.st.SignIn(ctx, store.SignIn{Account: acc, LinkToUser: u.ID})
			switch {
			case err == nil:
				linked = res.Account
			case !errors.Is(err, store.ErrNotFound):
				t.Errorf("SignIn: %v", err)
			}
		})
		wg.Go(func() {
			if err := e.st.DeleteUser(ctx, u.ID); err != nil {
				t.Errorf("DeleteUser: %v", err)
			}
		})
		wg.Wait()
		if linked != nil {
			if a, err := e.st.ExternalAccount(ctx, linked.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("round %d: an account of the deleted user survives: %+v, %v", round, a, err)
			}
		}
	}
	if users, accs := e.counts(); users != 0 || accs != 0 {
		t.Errorf("%d users and %d accounts left, want none", users, accs)
	}
	e.checkClean()
}
