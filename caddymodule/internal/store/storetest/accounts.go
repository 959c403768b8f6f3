package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func externalAccountReturnsTheAccount(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	res := e.signIn(store.SignIn{Account: account("abe", "abe@example.com", true)})
	got, err := e.st.ExternalAccount(ctx, res.Account.ID)
	if err != nil || got.ID != res.Account.ID || got.UserID != res.User.ID || got.Tokens.RefreshToken != "rt-abe" || got.Tokens.AccessToken != "at-abe" {
		t.Errorf("ExternalAccount = %+v, %v", got, err)
	}
	for _, id := range []string{store.NewID("eac"), "", "eac/x", "a\x00b"} {
		if _, err := e.st.ExternalAccount(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ExternalAccount(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func externalAccountByIdentityFindsTheLinkedAccount(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	res := e.signIn(store.SignIn{Account: account("abe", "abe@example.com", true)})
	got, err := e.st.ExternalAccountByIdentity(ctx, testIssuer, "abe")
	if err != nil || got.ID != res.Account.ID || got.UserID != res.User.ID || got.Tokens.RefreshToken != "rt-abe" {
		t.Errorf("ExternalAccountByIdentity = %+v, %v", got, err)
	}
	for _, id := range [][2]string{{testIssuer, "nobody"}, {"https://other.example", "abe"}, {testIssuer + "/", "abe"},
		{testIssuer, "ABE"}, {"", "abe"}, {testIssuer, ""}, {testIssuer, "abe\x00"}, {testIssuer, strings.Repeat("x", 10000)}} {
		if _, err := e.st.ExternalAccountByIdentity(ctx, id[0], id[1]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ExternalAccountByIdentity(%q, %.10q) = %v, want ErrNotFound", id[0], id[1], err)
		}
	}
	if err := e.st.DeleteUser(ctx, res.User.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.ExternalAccountByIdentity(ctx, testIssuer, "abe"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ExternalAccountByIdentity after DeleteUser = %v, want ErrNotFound", err)
	}
}

func updateWritesWhatFnLeavesButNotTheIdentity(t *testing.T, o opener) {
	e := o.env(t)
	e.needClock()
	ctx := context.Background()
	res := e.signIn(store.SignIn{Account: account("bea", "bea@example.com", true), Now: e.clk.Now()})
	other := e.signIn(store.SignIn{Account: account("cal", "", false)})
	e.clk.Advance(time.Minute)
	expiry := e.clk.Now().Add(time.Hour)
	got, err := e.st.UpdateExternalAccount(ctx, res.Account.ID, func(a *store.ExternalAccount) error {
		a.Tokens = store.TokenSet{AccessToken: "at-new", RefreshToken: "rt-new", IDToken: "idt", TokenType: "Bearer", Expiry: expiry}
		a.Status = store.StatusNeedsReauthorization
		a.Label = "work"
		a.ApprovedScopes = append(a.ApprovedScopes, "repo")
		// None of these may stick.
		a.ID, a.UserID, a.Issuer, a.Subject = store.NewID("eac"), other.User.ID, "https://evil.example", "cal"
		a.CreatedAt = time.Time{}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := e.st.ExternalAccount(ctx, res.Account.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*store.ExternalAccount{got, stored} {
		if a.ID != res.Account.ID || a.UserID != res.User.ID || a.Issuer != testIssuer || a.Subject != "bea" ||
			!a.CreatedAt.Equal(res.Account.CreatedAt) {
			t.Errorf("identity fields moved: %+v", a)
		}
		if a.Tokens.RefreshToken != "rt-new" || a.Tokens.IDToken != "idt" || !a.Tokens.Expiry.Equal(expiry) ||
			a.Status != store.StatusNeedsReauthorization || a.Label != "work" ||
			!slices.Equal(a.ApprovedScopes, []string{"repo"}) || !a.UpdatedAt.Equal(e.clk.Now()) {
			t.Errorf("update not applied: %+v", a)
		}
	}
	if accs, _ := e.st.ExternalAccounts(ctx, other.User.ID); len(accs) != 1 {
		t.Errorf("the other user has %d accounts, want 1", len(accs))
	}
	// The identity still signs in to its own user.
	if again := e.signIn(store.SignIn{Account: account("bea", "bea@example.com", true)}); again.User.ID != res.User.ID || again.AccountCreated {
		t.Errorf("sign-in after update = %+v", again)
	}
	e.checkClean()
}

func updateFnErrorAbortsAndIsReturnedAsIs(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	res := e.signIn(store.SignIn{Account: account("dan", "dan@example.com", true)})
	before := e.snapshot()
	custom := errors.New("provider said no")
	for _, want := range []error{store.ErrStale, custom, fmt.Errorf("wrapped: %w", store.ErrStale)} {
		got, err := e.st.UpdateExternalAccount(ctx, res.Account.ID, func(a *store.ExternalAccount) error {
			a.Tokens.RefreshToken = "must not be written"
			a.Email = "must-not@example.com"
			return want
		})
		if err != want || got != nil {
			t.Errorf("UpdateExternalAccount = %v, %v; want exactly %v", got, err, want)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("store changed by aborted updates:\nbefore %s\nafter  %s", before, after)
	}
}

func updateUnknownAccountIsNotFound(t *testing.T, o opener) {
	e := o.env(t)
	called := false
	for _, id := range []string{store.NewID("eac"), "", "eac/x"} {
		_, err := e.st.UpdateExternalAccount(context.Background(), id, func(*store.ExternalAccount) error { called = true; return nil })
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateExternalAccount(%q) = %v, want ErrNotFound", id, err)
		}
	}
	if called {
		t.Error("fn was called for a missing account")
	}
}

// The token refresh's compare-and-swap: of 50 updaters that each expect the
// original refresh token, exactly one wins.
func updateConcurrentCompareAndSwapHasOneWinner(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	id := e.signIn(store.SignIn{Account: account("eve", "", false)}).Account.ID
	const n = 50
	var wins, stale atomic.Int32
	var winner atomic.Value
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := e.st.UpdateExternalAccount(ctx, id, func(a *store.ExternalAccount) error {
				if a.Tokens.RefreshToken != "rt-eve" {
					return store.ErrStale
				}
				a.Tokens.RefreshToken = "rt-" + strconv.Itoa(i)
				return nil
			})
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store("rt-" + strconv.Itoa(i))
			case errors.Is(err, store.ErrStale):
				stale.Add(1)
			default:
				t.Errorf("UpdateExternalAccount: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || stale.Load() != n-1 {
		t.Fatalf("%d winners and %d stale, want 1 and %d", wins.Load(), stale.Load(), n-1)
	}
	if got, err := e.st.ExternalAccount(ctx, id); err != nil || got.Tokens.RefreshToken != winner.Load() {
		t.Errorf("stored refresh token = %q, %v; want the winner's %q", got.Tokens.RefreshToken, err, winner.Load())
	}
}

func updateConcurrentIncrementsLoseNoUpdate(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	id := e.signIn(store.SignIn{Account: account("fay", "", false)}).Account.ID
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := e.st.UpdateExternalAccount(ctx, id, func(a *store.ExternalAccount) error {
				v, _ := strconv.Atoi(a.Label)    // "" is 0
				time.Sleep(3 * time.Millisecond) // a slow transaction
				a.Label = strconv.Itoa(v + 1)
				return nil
			})
			if err != nil {
				t.Errorf("UpdateExternalAccount: %v", err)
			}
		})
	}
	wg.Wait()
	if got, err := e.st.ExternalAccount(ctx, id); err != nil || got.Label != strconv.Itoa(n) {
		t.Errorf("counter = %q, %v; want %d", got.Label, err, n)
	}
}

func updateEmailChangeFollowsOnTheUser(t *testing.T, o opener) {
	type want struct {
		email    string
		verified bool
		vouched  bool // by the updated account
		links    bool // a verified sign-in with this address links to the user
	}
	for _, tc := range []struct {
		name   string
		second bool // a second account of the user also vouches for old@example.com
		change func(a *store.ExternalAccount)
		want   []want
	}{
		{"new verified address moves the vouching", false,
			func(a *store.ExternalAccount) { a.Email = "new@example.com" },
			[]want{{"old@example.com", false, false, false}, {"new@example.com", true, true, true}}},
		{"verification withdrawn", false,
			func(a *store.ExternalAccount) { a.EmailVerified = false },
			[]want{{"old@example.com", false, false, false}}},
		{"email cleared", false,
			func(a *store.ExternalAccount) { a.Email, a.EmailVerified = "", false },
			[]want{{"old@example.com", false, false, false}}},
		{"another account still vouches", true,
			func(a *store.ExternalAccount) { a.Email = "new@example.com" },
			[]want{{"old@example.com", true, false, true}, {"new@example.com", true, true, true}}},
		{"new unverified address is recorded only", false,
			func(a *store.ExternalAccount) { a.Email, a.EmailVerified = "New@Example.com", false },
			[]want{{"old@example.com", false, false, false}, {"New@Example.com", false, false, false}}},
		{"case change alone keeps everything", false,
			func(a *store.ExternalAccount) { a.Email = "OLD@example.com" },
			[]want{{"old@example.com", true, true, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := o.env(t)
			ctx := context.Background()
			res := e.signIn(store.SignIn{Account: account("gus", "old@example.com", true)})
			if tc.second {
				e.signIn(store.SignIn{Account: account("gus-2", "old@example.com", true), LinkToUser: res.User.ID})
			}
			if _, err := e.st.UpdateExternalAccount(ctx, res.Account.ID, func(a *store.ExternalAccount) error {
				tc.change(a)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			u, err := e.st.User(ctx, res.User.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(u.Emails) != len(tc.want) {
				t.Fatalf("emails = %+v, want %+v", u.Emails, tc.want)
			}
			for i, w := range tc.want {
				em := u.Emails[i]
				vouched := slices.Contains(em.VerifiedBy, res.Account.ID)
				if em.Email != w.email || em.Verified != w.verified || vouched != w.vouched {
					t.Errorf("email %d = %+v, want %+v", i, em, w)
				}
				if _, total, _ := e.st.Users(ctx, store.UserQuery{Email: w.email}); total != 1 {
					t.Errorf("Users(%s) total = %d, want 1", w.email, total)
				}
			}
			e.checkClean()
			// An address no longer vouched for links nobody any more.
			for _, w := range tc.want {
				if links := e.linksTo(w.email) == res.User.ID; links != w.links {
					t.Errorf("a stranger with %s linked = %v, want %v", w.email, links, w.links)
				}
			}
			e.checkClean()
		})
	}
}

func deleteAccountRemovesTheAccount(t *testing.T, o opener) {
	e := o.env(t)
	e.needClock()
	ctx := context.Background()
	first := e.signIn(store.SignIn{Account: account("hal", "hal@example.com", true), Now: e.clk.Now()})
	e.clk.Advance(time.Second)
	gh := account("hal-gh", "hal@work.example", true)
	gh.Tokens.RefreshToken = "rt-to-revoke"
	second := e.signIn(store.SignIn{Account: gh, LinkToUser: first.User.ID, Now: e.clk.Now()})
	var seen []*store.ExternalAccount
	got, _, err := e.st.DeleteExternalAccount(ctx, first.User.ID, second.Account.ID, func(remaining []*store.ExternalAccount) error {
		seen = remaining
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != second.Account.ID || got.Tokens.RefreshToken != "rt-to-revoke" {
		t.Errorf("returned account = %+v, want the unlinked one with its tokens", got)
	}
	if len(seen) != 1 || seen[0].ID != first.Account.ID || seen[0].Tokens.RefreshToken != "rt-hal" {
		t.Errorf("check saw %v, want only %s", seen, first.Account.ID)
	}
	if _, err := e.st.ExternalAccount(ctx, second.Account.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ExternalAccount after unlink = %v, want ErrNotFound", err)
	}
	if accs, _ := e.st.ExternalAccounts(ctx, first.User.ID); len(accs) != 1 || accs[0].ID != first.Account.ID {
		t.Errorf("ExternalAccounts after unlink = %v", accs)
	}
	if u, _ := e.st.User(ctx, first.User.ID); len(u.Emails) != 2 || u.Emails[1].Verified || len(u.Emails[1].VerifiedBy) != 0 {
		t.Errorf("emails after unlink = %+v, want hal@work.example unverified", u.Emails)
	}
	// The identity is free: signing in with it makes a new user.
	if again := e.signIn(store.SignIn{Account: gh}); again.User.ID == first.User.ID || !again.UserCreated {
		t.Errorf("sign-in with the unlinked identity = %+v, want a new user", again)
	}
	e.checkClean()
}

// errLastAccount is what a caller's check returns for a user's last account.
var errLastAccount = errors.New("the last sign-in method cannot be removed")

func refuseLast(remaining []*store.ExternalAccount) error {
	if len(remaining) == 0 {
		return errLastAccount
	}
	return nil
}

func deleteAccountRefusedByCheckChangesNothing(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	res := e.signIn(store.SignIn{Account: account("ida", "ida@example.com", true)})
	if err := e.st.CreateSession(ctx, &store.Session{UserID: res.User.ID, ExpiresAt: e.clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	before := e.snapshot()
	got, _, err := e.st.DeleteExternalAccount(ctx, res.User.ID, res.Account.ID, refuseLast)
	if err != errLastAccount || got != nil {
		t.Fatalf("DeleteExternalAccount = %v, %v; want exactly errLastAccount", got, err)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("store changed on a refused unlink:\nbefore %s\nafter  %s", before, after)
	}
	if e.linksTo("ida@example.com") != res.User.ID {
		t.Error("ida@example.com stopped linking to ida after a refused unlink")
	}
}

func deleteAccountOfTheOnlyVoucherUnverifiesTheEmail(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	// jo's Google account vouches for jo@example.com; her GitHub account
	// has no email. Unlinking Google leaves nobody vouching for it.
	google := e.signIn(store.SignIn{Account: account("jo-google", "jo@example.com", true)})
	e.clk.Advance(time.Second)
	github := e.signIn(store.SignIn{Account: account("jo-github", "", false), LinkToUser: google.User.ID})
	if _, _, err := e.st.DeleteExternalAccount(ctx, google.User.ID, google.Account.ID, refuseLast); err != nil {
		t.Fatal(err)
	}
	u, err := e.st.User(ctx, google.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Emails) != 1 || u.Emails[0].Verified || len(u.Emails[0].VerifiedBy) != 0 {
		t.Errorf("emails after unlink = %+v, want jo@example.com unverified", u.Emails)
	}
	// The address still finds jo in the user list...
	if users, total, err := e.st.Users(ctx, store.UserQuery{Email: "jo@example.com"}); err != nil || total != 1 || users[0].ID != u.ID {
		t.Errorf("Users(jo@example.com) = %v, %d, %v", userIDs(users), total, err)
	}
	// ...but links nobody to her.
	if e.linksTo("jo@example.com") == u.ID {
		t.Error("a later sign-in with jo@example.com linked to jo")
	}
	if accs, _ := e.st.ExternalAccounts(ctx, u.ID); len(accs) != 1 || accs[0].ID != github.Account.ID {
		t.Errorf("jo's accounts = %v, want only GitHub", accs)
	}
	e.checkClean()
}

func deleteAccountOfAnotherUserIsNotFound(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	kay := e.signIn(store.SignIn{Account: account("kay", "kay@example.com", true)})
	lou := e.signIn(store.SignIn{Account: account("lou", "lou@example.com", true)})
	before := e.snapshot()
	for _, tc := range []struct{ user, account string }{
		{kay.User.ID, lou.Account.ID},
		{lou.User.ID, kay.Account.ID},
		{kay.User.ID, store.NewID("eac")},
		{store.NewID("user"), kay.Account.ID},
		{"", kay.Account.ID},
		{kay.User.ID, "eac/x"},
	} {
		called := false
		_, _, err := e.st.DeleteExternalAccount(ctx, tc.user, tc.account, func([]*store.ExternalAccount) error { called = true; return nil })
		if !errors.Is(err, store.ErrNotFound) || called {
			t.Errorf("unlinking %q of %q = %v (check called: %v), want ErrNotFound", tc.account, tc.user, err, called)
		}
	}
	if after := e.snapshot(); after != before {
		t.Error("store changed by refused unlinks")
	}
}

func deleteAccountConcurrentUnlinksKeepTheLastAccount(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	for round := range 5 {
		first := e.signIn(store.SignIn{Account: account(fmt.Sprint("max-", round), "", false)})
		second := e.signIn(store.SignIn{Account: account(fmt.Sprint("max2-", round), "", false), LinkToUser: first.User.ID})
		var ok, refused atomic.Int32
		var wg sync.WaitGroup
		for _, id := range []string{first.Account.ID, second.Account.ID} {
			wg.Go(func() {
				_, _, err := e.st.DeleteExternalAccount(ctx, first.User.ID, id, refuseLast)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, errLastAccount):
					refused.Add(1)
				default:
					t.Errorf("DeleteExternalAccount: %v", err)
				}
			})
		}
		wg.Wait()
		if accs, _ := e.st.ExternalAccounts(ctx, first.User.ID); ok.Load() != 1 || refused.Load() != 1 || len(accs) != 1 {
			t.Errorf("round %d: %d unlinked, %d refused, %d left; want 1, 1, 1", round, ok.Load(), refused.Load(), len(accs))
		}
	}
	e.checkClean()
}
