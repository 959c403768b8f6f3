package badger

import (
	"context"
	"errors"
	"fmt"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// signInUsers creates n users a second apart (sign-in k at clk + k s) and
// returns their ids, oldest first.
func signInUsers(t testing.TB, b *Store, clk *fakeClock, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		res, err := b.SignIn(context.Background(), store.SignIn{Account: account(fmt.Sprintf("%s%03d", prefix, i), "", false), Now: clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = res.User.ID
		clk.Advance(time.Second)
	}
	return ids
}

// TestDeleteUser_RemovesTheUserWithEverythingItOwns checks the raw keys: none
// but the outbox's still names the user or what she owned, and no other key
// changed besides the user and session counts. What the interface shows is storetest's
// DeleteUser_RemovesTheUserWithEverythingItOwns.
func TestDeleteUser_RemovesTheUserWithEverythingItOwns(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Store, clk *fakeClock) {
		ctx := context.Background()
		h := newHealthyStore(t, b) // rose: two accounts, a verified and an unverified email, a session
		s2 := &store.Session{UserID: h.rose.User.ID, ExpiresAt: clk.Now().Add(time.Hour)}
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
			counter := k == keyUserCount || strings.HasPrefix(k, prefixSessionCount) // store-wide counts
			if after[k] != v && !counter && !slices.ContainsFunc(gone, func(g string) bool { return strings.Contains(k+v, g) }) {
				t.Errorf("%q changed from %q to %q", k, v, after[k])
			}
		}
		checkClean(t, b)
	})
}

// TestDeleteUser_UnknownUserIsNotFound checks that refused deletes leave the
// raw keys and the user count as they were (storetest compares what the
// interface shows).
func TestDeleteUser_UnknownUserIsNotFound(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Store, _ *fakeClock) {
		mustSignIn(t, b, store.SignIn{Account: account("quin", "", false)})
		before := dump(t, b)
		for _, id := range []string{store.NewID("user"), "", "user/x"} {
			if err := b.DeleteUser(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
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
	u := mustSignIn(t, b, store.SignIn{Account: account("ray", "ray@example.com", true)}).User
	// More sessions than one transaction can delete (see Badger's maxBatchCount).
	const n = 8000
	exp := time.Now().Add(time.Hour)
	wb := b.db.NewWriteBatch()
	counts := map[string]int{} // the session counts the store keeps
	for range n {
		s := &store.Session{ID: store.NewID("sess"), UserID: u.ID, ExpiresAt: exp}
		counts[string(sessionCountKey(store.ExpiryHour(exp), store.SessionStripe(s.ID)))]++
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
	for key, count := range counts {
		if err := wb.Set([]byte(key), fmt.Append(nil, count)); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := b.db.Update(func(txn *badger.Txn) error { return tx{txn, time.Now()}.DeleteUser(u) }); !errors.Is(err, badger.ErrTxnTooBig) {
		t.Fatalf("one transaction = %v, want ErrTxnTooBig (the test needs more sessions)", err)
	}
	if err := b.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	left := dump(t, b)
	maps.DeleteFunc(left, func(k, _ string) bool {
		return strings.HasPrefix(k, prefixEvent) || k == keyEventClock || k == keyEventsPruned ||
			k == keySearchIndex || k == keySessionsCounted // the versions of the store's indexes
	})
	if len(left) != 1 || left[keyUserCount] != "0" {
		t.Errorf("%d keys left besides the outbox, want only the count 0: %q", len(left), slices.Sorted(maps.Keys(left)))
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
		if _, err := st.SignIn(ctx, store.SignIn{Account: acc}); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		q    store.UserQuery
	}{
		{"first", store.UserQuery{Limit: 10}},
		{"offset-1000", store.UserQuery{Limit: 10, Offset: 1000}},
		{"email", store.UserQuery{Email: "Shared@example.com"}},
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
	benchEachBackend(b, func(b *testing.B, st *Store) {
		ctx := context.Background()
		res, err := st.SignIn(ctx, store.SignIn{Account: account("bench", "bench@example.com", true)})
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
