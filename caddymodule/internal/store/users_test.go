package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// signInUsers creates n users a second apart (sign-in k at clk + k s) and
// returns their ids, oldest first.
func signInUsers(t testing.TB, b *Badger, clk *fakeClock, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		res, err := b.SignIn(context.Background(), SignIn{Account: account(fmt.Sprintf("%s%03d", prefix, i), "", false), Now: clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = res.User.ID
		clk.Advance(time.Second)
	}
	return ids
}

func userIDs(users []*User) []string {
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	return ids
}

func TestUsers_PagesNewestFirstWithTheTotal(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		ids := signInUsers(t, b, clk, "u", 25)
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
			users, total, err := b.Users(ctx, UserQuery{Limit: 10, Offset: tc.offset})
			if err != nil {
				t.Fatal(err)
			}
			if got := userIDs(users); total != 25 || !slices.Equal(got, tc.want) {
				t.Errorf("offset %d: %d users %v (total %d), want %d %v (total 25)", tc.offset, len(got), got, total, len(tc.want), tc.want)
			}
		}
	})
}

func TestUsers_LimitAndOffsetDefaults(t *testing.T) {
	b := openTest(t, Options{InMemory: true})
	clk := newClock()
	ids := signInUsers(t, b, clk, "u", maxUsersLimit+1)
	slices.Reverse(ids)
	for _, tc := range []struct {
		name  string
		q     UserQuery
		want  []string
		total int
	}{
		{"zero limit is 10", UserQuery{}, ids[:10], len(ids)},
		{"negative limit is 10", UserQuery{Limit: -3}, ids[:10], len(ids)},
		{"limit is at most 500", UserQuery{Limit: 10000}, ids[:500], len(ids)},
		{"negative offset is 0", UserQuery{Limit: 2, Offset: -7}, ids[:2], len(ids)},
		{"offset counts from the newest", UserQuery{Limit: 2, Offset: 499}, ids[499:], len(ids)},
	} {
		users, total, err := b.Users(context.Background(), tc.q)
		if err != nil || total != tc.total || !slices.Equal(userIDs(users), tc.want) {
			t.Errorf("%s: %d users, total %d, %v; want %d, %d", tc.name, len(users), total, err, len(tc.want), tc.total)
		}
	}
}

func TestUsers_FiltersByAnyAddressIgnoringCase(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		at := func(subject, email string, verified bool) string {
			clk.Advance(time.Second)
			return mustSignIn(t, b, SignIn{Account: account(subject, email, verified), Now: clk.Now()}).User.ID
		}
		verified := at("nia", "Nia@Example.com", true)
		unverified := at("nia-2", "nia@example.com", false) // a second person claiming it, unverified
		slash := at("oz", "o/z@example.com", true)
		other := at("pam", "pam@example.com", true)
		second := mustSignIn(t, b, SignIn{Account: account("pam-2", "pam@work.example", false), LinkToUser: other}).User.ID
		for _, tc := range []struct {
			email string
			q     UserQuery
			want  []string
			total int
		}{
			{"nia@example.com", UserQuery{}, []string{unverified, verified}, 2},
			{"NIA@EXAMPLE.COM", UserQuery{}, []string{unverified, verified}, 2},
			{"nia@example.com", UserQuery{Limit: 1}, []string{unverified}, 2},
			{"nia@example.com", UserQuery{Limit: 1, Offset: 1}, []string{verified}, 2},
			{"nia@example.com", UserQuery{Offset: 2}, nil, 2},
			{"pam@work.example", UserQuery{}, []string{second}, 1},
			{"o/z@example.com", UserQuery{}, []string{slash}, 1},
			{"o", UserQuery{}, nil, 0}, // "o/z@…" starts with "o/" but is another address
			{"nia@", UserQuery{}, nil, 0},
			{"nobody@example.com", UserQuery{}, nil, 0},
		} {
			tc.q.Email = tc.email
			users, total, err := b.Users(ctx, tc.q)
			if err != nil || total != tc.total || !slices.Equal(userIDs(users), tc.want) {
				t.Errorf("Users(%+v) = %v, %d, %v; want %v, %d", tc.q, userIDs(users), total, err, tc.want, tc.total)
			}
		}
	})
}

func TestSignIn_ConcurrentNewUsersAreAllCounted(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		const n = 50
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, err := b.SignIn(context.Background(), SignIn{Account: account(fmt.Sprint("new", i), "", false)}); err != nil {
					t.Errorf("SignIn: %v", err)
				}
			})
		}
		wg.Wait()
		if _, total, err := b.Users(context.Background(), UserQuery{}); err != nil || total != n {
			t.Errorf("Users total = %d, %v; want %d", total, err, n)
		}
		checkClean(t, b)
	})
}

func TestDeleteUser_RemovesTheUserWithEverythingItOwns(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		h := newHealthyStore(t, b) // rose: two accounts, a verified and an unverified email, a session
		s2 := &Session{UserID: h.rose.User.ID, ExpiresAt: clk.Now().Add(time.Hour)}
		if err := b.CreateSession(ctx, s2); err != nil {
			t.Fatal(err)
		}
		samBefore := dump(t, b)
		if err := b.DeleteUser(ctx, h.rose.User.ID); err != nil {
			t.Fatal(err)
		}
		gone := []string{h.rose.User.ID, h.rose.Account.ID, h.roseGH.ID, h.roseSessID, s2.ID, "rose@"}
		after := dump(t, b)
		// The outbox names what was deleted until it is pruned, by design:
		// that is what the events announce.
		outbox := func(k, _ string) bool {
			return strings.HasPrefix(k, prefixEvent) || k == keyEventClock || k == keyEventsPruned
		}
		maps.DeleteFunc(samBefore, outbox)
		maps.DeleteFunc(after, outbox)
		for k, v := range after {
			for _, g := range gone {
				if strings.Contains(k, g) || strings.Contains(v, g) {
					t.Errorf("%q = %q still mentions %s", k, v, g)
				}
			}
		}
		for k, v := range samBefore {
			if after[k] != v && k != keyUserCount && !slices.ContainsFunc(gone, func(g string) bool { return strings.Contains(k+v, g) }) {
				t.Errorf("%q changed from %q to %q", k, v, after[k])
			}
		}
		if _, err := b.User(ctx, h.rose.User.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("User after delete = %v, want ErrNotFound", err)
		}
		if _, err := b.Session(ctx, h.roseSessID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Session after delete = %v, want ErrNotFound", err)
		}
		if users, total, _ := b.Users(ctx, UserQuery{}); total != 1 || len(users) != 1 || users[0].ID != h.sam.User.ID {
			t.Errorf("Users after delete = %v (total %d), want only sam", userIDs(users), total)
		}
		checkClean(t, b)
		if err := b.DeleteUser(ctx, h.rose.User.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second DeleteUser = %v, want ErrNotFound", err)
		}
		// Her identities and email are free for anyone now.
		again := mustSignIn(t, b, SignIn{Account: account("rose-gh", "rose@example.com", true), LinkByVerifiedEmail: true})
		if !again.UserCreated {
			t.Errorf("sign-in with a deleted user's identity = %+v, want a new user", again)
		}
	})
}

func TestDeleteUser_UnknownUserIsNotFound(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		mustSignIn(t, b, SignIn{Account: account("quin", "", false)})
		before := dump(t, b)
		for _, id := range []string{NewID("user"), "", "user/x"} {
			if err := b.DeleteUser(context.Background(), id); !errors.Is(err, ErrNotFound) {
				t.Errorf("DeleteUser(%q) = %v, want ErrNotFound", id, err)
			}
		}
		if after := dump(t, b); len(after) != len(before) || after[keyUserCount] != "1" {
			t.Errorf("store changed: %d keys, count %q", len(after), after[keyUserCount])
		}
	})
}

func TestDeleteUser_EndsSessionsInBatchesWhenTooManyForOneTransaction(t *testing.T) {
	b := openTest(t, Options{InMemory: true})
	ctx := context.Background()
	u := mustSignIn(t, b, SignIn{Account: account("ray", "ray@example.com", true)}).User
	// More sessions than one transaction can delete (see Badger's maxBatchCount).
	const n = 8000
	exp := time.Now().Add(time.Hour)
	wb := b.db.NewWriteBatch()
	for range n {
		s := &Session{ID: NewID("sess"), UserID: u.ID, ExpiresAt: exp}
		val := fmt.Sprintf(`{"id":%q,"user_id":%q,"expires_at":%q}`, s.ID, u.ID, exp.Format(time.RFC3339Nano))
		for _, e := range []*badger.Entry{
			{Key: sessionKey(s.ID), Value: []byte(val), ExpiresAt: badgerExpiry(exp)},
			{Key: userSessKey(u.ID, s.ID), ExpiresAt: badgerExpiry(exp)},
		} {
			if err := wb.SetEntry(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.db.Update(func(txn *badger.Txn) error { return deleteUser(txn, new(Outbox), u.ID, time.Now()) }); !errors.Is(err, badger.ErrTxnTooBig) {
		t.Fatalf("one transaction = %v, want ErrTxnTooBig (the test needs more sessions)", err)
	}
	if err := b.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	left := dump(t, b)
	maps.DeleteFunc(left, func(k, _ string) bool {
		return strings.HasPrefix(k, prefixEvent) || k == keyEventClock || k == keyEventsPruned
	})
	if len(left) != 1 || left[keyUserCount] != "0" {
		t.Errorf("%d keys left besides the outbox, want only the count 0", len(left))
	}
	checkClean(t, b)
}

func BenchmarkUsersPage(b *testing.B) {
	st := openTest(b, Options{InMemory: true})
	clk := newClock()
	signInUsers(b, st, clk, "u", 2000)
	ctx := context.Background()
	for i := range 20 { // twenty people claim one address
		acc := account(fmt.Sprint("shared", i), "shared@example.com", false)
		if _, err := st.SignIn(ctx, SignIn{Account: acc}); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		q    UserQuery
	}{
		{"first", UserQuery{Limit: 10}},
		{"offset-1000", UserQuery{Limit: 10, Offset: 1000}},
		{"email", UserQuery{Email: "Shared@example.com"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, total, err := st.Users(ctx, bc.q); err != nil || total < 20 {
					b.Fatal(total, err)
				}
			}
		})
	}
}

func BenchmarkExternalAccount(b *testing.B) {
	for _, name := range []string{"memory", "disk"} {
		b.Run(name, func(b *testing.B) {
			opts := Options{InMemory: name == "memory"}
			if !opts.InMemory {
				opts.Dir = b.TempDir()
			}
			st := openTest(b, opts)
			ctx := context.Background()
			res, err := st.SignIn(ctx, SignIn{Account: account("bench", "bench@example.com", true)})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.ExternalAccount(ctx, res.Account.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
