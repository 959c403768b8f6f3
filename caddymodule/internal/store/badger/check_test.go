package badger

import (
	"context"
	"encoding/json"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// rawSet writes a value straight into the database, bypassing the store.
func rawSet(t testing.TB, b *Store, key []byte, val string) {
	t.Helper()
	if err := b.db.Update(func(txn *badger.Txn) error { return txn.Set(key, []byte(val)) }); err != nil {
		t.Fatalf("raw set %q: %v", key, err)
	}
}

func rawDelete(t testing.TB, b *Store, key []byte) {
	t.Helper()
	if err := b.db.Update(func(txn *badger.Txn) error { return txn.Delete(key) }); err != nil {
		t.Fatalf("raw delete %q: %v", key, err)
	}
}

// healthyStore holds two users, one with two accounts, and a session.
type healthyStore struct {
	b          *Store
	rose, sam  store.SignInResult // rose has two accounts: rose.Account and roseGH
	roseGH     *store.ExternalAccount
	roseSessID string
}

func newHealthyStore(t *testing.T, b *Store) healthyStore {
	t.Helper()
	h := healthyStore{b: b}
	h.rose = mustSignIn(t, b, store.SignIn{Account: account("rose", "rose@example.com", true)})
	h.roseGH = mustSignIn(t, b, store.SignIn{Account: account("rose-gh", "rose@work.example", false), LinkToUser: h.rose.User.ID}).Account
	h.sam = mustSignIn(t, b, store.SignIn{Account: account("sam", "sam@example.com", true)})
	s := &store.Session{UserID: h.rose.User.ID, ExpiresAt: time.Now().Add(time.Hour)}
	if err := b.CreateSession(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	h.roseSessID = s.ID
	return h
}

func TestCheck_HealthyStoreIsClean(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Store, _ *fakeClock) {
		newHealthyStore(t, b)
		if problems, err := b.Check(context.Background()); err != nil || len(problems) != 0 {
			t.Errorf("Check = %q, %v; want none", problems, err)
		}
	})
}

func TestCheck_ReportsEachKindOfViolation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, h healthyStore)
		want    []string // substrings, one line each
	}{
		{"account whose user is missing", func(t *testing.T, h healthyStore) {
			rawDelete(t, h.b, userKey(h.sam.User.ID))
		}, []string{"account %sam.eac: its user", `email index entry "sam@example.com": user`,
			"user_created entry", `user_email entry "sam@example.com/`, "user count is 2; there are 1 users"}},
		{"identity entry pointing at a missing account", func(t *testing.T, h healthyStore) {
			rawSet(t, h.b, identityKey(testIssuer, "ghost"), store.NewID("eac"))
		}, []string{`identity index entry "https://issuer.example\x00ghost": account`}},
		{"identity entry pointing at an account with another identity", func(t *testing.T, h healthyStore) {
			rawSet(t, h.b, identityKey(testIssuer, "impostor"), h.sam.Account.ID)
		}, []string{"has issuer"}},
		{"account without its identity entry", func(t *testing.T, h healthyStore) {
			rawDelete(t, h.b, identityKey(testIssuer, "sam"))
		}, []string{"no identity index entry"}},
		{"half-written token set", func(t *testing.T, h healthyStore) {
			a := *h.roseGH
			a.Tokens = store.TokenSet{RefreshToken: "refresh-without-access"}
			raw, _ := json.Marshal(&a)
			rawSet(t, h.b, eacKey(a.ID), string(raw))
		}, []string{"half-written token set"}},
		{"account without its user_eac entry", func(t *testing.T, h healthyStore) {
			rawDelete(t, h.b, userEACKey(h.rose.User.ID, h.roseGH.ID))
		}, []string{"no user_eac index entry"}},
		{"user_eac entry under the wrong user", func(t *testing.T, h healthyStore) {
			rawSet(t, h.b, userEACKey(h.sam.User.ID, h.roseGH.ID), "")
		}, []string{"the account belongs to user"}},
		{"user_eac entry without its account", func(t *testing.T, h healthyStore) {
			rawSet(t, h.b, userEACKey(h.sam.User.ID, store.NewID("eac")), "")
		}, []string{"the account is missing"}},
		{"email entry pointing at a missing user", func(t *testing.T, h healthyStore) {
			rawSet(t, h.b, emailKey("ghost@example.com"), store.NewID("user"))
		}, []string{`email index entry "ghost@example.com": user`}},
		{"email entry pointing at a user without that verified email", func(t *testing.T, h healthyStore) {
			rawSet(t, h.b, emailKey("rose@work.example"), h.rose.User.ID) // recorded, unverified
		}, []string{"has no such verified email"}},
		{"session whose user is missing", func(t *testing.T, h healthyStore) {
			rawDelete(t, h.b, userKey(h.rose.User.ID))
		}, []string{"its user", "its user", `email index entry "rose@example.com": user`, "the user is missing",
			"user_created entry", `user_email entry "rose@example.com/`, `user_email entry "rose@work.example/`, "user count is 2"}},
		{"user_sess entry without its session", func(t *testing.T, h healthyStore) {
			rawDelete(t, h.b, sessionKey(h.roseSessID))
		}, []string{"the session is missing", "session count of hour"}},
		{"session without its user_sess entry", func(t *testing.T, h healthyStore) {
			rawDelete(t, h.b, userSessKey(h.rose.User.ID, h.roseSessID))
		}, []string{"no user_sess index entry"}},
		{"a session count off by one", func(t *testing.T, h healthyStore) {
			s, err := h.b.Session(context.Background(), h.roseSessID)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.b.db.Update(func(txn *badger.Txn) error { return countSession(txn, s, 1) }); err != nil {
				t.Fatal(err)
			}
		}, []string{"session count of hour"}},
		{"a search term without its user", func(t *testing.T, h healthyStore) {
			if err := h.b.db.Update(func(txn *badger.Txn) error {
				return txn.Set(termKey("stale", createdOrder(h.sam.User.CreatedAt), h.sam.User.ID), nil)
			}); err != nil {
				t.Fatal(err)
			}
		}, []string{"the user has no such term"}},
		{"user without its user_created entry", func(t *testing.T, h healthyStore) {
			rawDelete(t, h.b, createdKey(h.sam.User))
		}, []string{"no user_created index entry"}},
		{"user_created entry with another creation time", func(t *testing.T, h healthyStore) {
			rawDelete(t, h.b, createdKey(h.sam.User))
			moved := *h.sam.User
			moved.CreatedAt = moved.CreatedAt.Add(-time.Hour)
			rawSet(t, h.b, createdKey(&moved), "")
		}, []string{"no user_created index entry", "was created at"}},
		{"user_created entry without its user", func(t *testing.T, h healthyStore) {
			rawSet(t, h.b, createdKey(&store.User{ID: store.NewID("user"), CreatedAt: time.Now()}), "")
		}, []string{"user_created entry"}},
		{"address without its user_email entry", func(t *testing.T, h healthyStore) {
			rawDelete(t, h.b, userEmailKey("rose@work.example", h.rose.User.ID))
		}, []string{`no user_email index entry for "rose@work.example"`}},
		{"user_email entry for an address the user lacks", func(t *testing.T, h healthyStore) {
			rawSet(t, h.b, userEmailKey("x/y@example.com", h.sam.User.ID), createdOrder(h.sam.User.CreatedAt))
		}, []string{"has no such address"}},
		{"user_email entry with a wrong creation order", func(t *testing.T, h healthyStore) {
			rawSet(t, h.b, userEmailKey("sam@example.com", h.sam.User.ID), createdOrder(h.rose.User.CreatedAt))
		}, []string{"is not the creation order"}},
		{"user count that disagrees", func(t *testing.T, h healthyStore) {
			rawSet(t, h.b, []byte(keyUserCount), "3")
		}, []string{"user count is 3; there are 2 users"}},
		{"user count that is not a number", func(t *testing.T, h healthyStore) {
			rawSet(t, h.b, []byte(keyUserCount), "two")
		}, []string{`user count "two" is not a number`}},
		{"user count that is missing", func(t *testing.T, h healthyStore) {
			rawDelete(t, h.b, []byte(keyUserCount))
		}, []string{"user count is missing"}},
		{"undecodable account", func(t *testing.T, h healthyStore) {
			rawSet(t, h.b, eacKey(h.sam.Account.ID), "{")
		}, []string{"undecodable", "identity index entry", "the account is missing", "vouched for by missing account"}},
		{"email vouched for by another user's account", func(t *testing.T, h healthyStore) {
			rose := must(h.b.User(context.Background(), h.rose.User.ID))
			rose.Emails[0].VerifiedBy = []string{h.sam.Account.ID}
			rawSet(t, h.b, userKey(rose.ID), string(must(json.Marshal(rose))))
		}, []string{"of user " + "%sam.user"}},
		{"email vouched for by an account that no longer asserts it", func(t *testing.T, h healthyStore) {
			sam := *h.sam.Account
			sam.Email = "sam@new.example"
			rawSet(t, h.b, eacKey(sam.ID), string(must(json.Marshal(sam))))
		}, []string{`which asserts "sam@new.example"`}},
		{"verified email without vouchers", func(t *testing.T, h healthyStore) {
			sam := *h.sam.User
			sam.Emails = []store.EmailAddress{{Email: "sam@example.com", Verified: true}}
			rawSet(t, h.b, userKey(sam.ID), string(must(json.Marshal(sam))))
		}, []string{"has verified true and 0 vouching accounts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := openTest(t, Options{InMemory: true})
			h := newHealthyStore(t, b)
			tc.corrupt(t, h)
			problems, err := b.Check(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = strings.NewReplacer("%sam.eac", h.sam.Account.ID, "%sam.user", h.sam.User.ID).Replace(w)
			}
			if !matchLines(problems, want) {
				t.Errorf("Check =\n  %s\nwant one line each containing %q", strings.Join(problems, "\n  "), want)
			}
			for _, p := range problems {
				if strings.Contains(p, h.roseSessID) {
					t.Errorf("Check printed a session id: %q", p)
				}
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// matchLines reports whether lines and want pair up one to one, each line
// containing its substring.
func matchLines(lines, want []string) bool {
	if len(lines) != len(want) {
		return false
	}
	used := make([]bool, len(lines))
next:
	for _, w := range want {
		for i, l := range lines {
			if !used[i] && strings.Contains(l, w) {
				used[i] = true
				continue next
			}
		}
		return false
	}
	return true
}
