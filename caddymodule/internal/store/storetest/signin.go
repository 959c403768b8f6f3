package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func signInFirstCreatesUserAndAccountSecondFindsThem(t *testing.T, o opener) {
	e := o.env(t)
	e.needClock()
	ctx := context.Background()
	withGroups := account("alice", "Alice@Example.com", true)
	withGroups.Groups = []string{"staff", "admins"}
	first := e.signIn(store.SignIn{Account: withGroups})
	if !first.UserCreated || !first.AccountCreated {
		t.Fatalf("first sign-in: created user %v, account %v; want both", first.UserCreated, first.AccountCreated)
	}
	u, a := first.User, first.Account
	if u.Name != "Name of alice" || u.ImageURL == "" || u.PrimaryEmail() != "Alice@Example.com" || u.ID[:5] != "user_" {
		t.Errorf("new user profile = %+v", u)
	}
	if a.UserID != u.ID || a.Status != store.StatusVerified || a.CreatedAt.IsZero() || a.ID[:4] != "eac_" {
		t.Errorf("new account = %+v", a)
	}
	if got, _ := e.st.User(ctx, u.ID); got == nil || len(got.Emails) != 1 || got.Emails[0].VerifiedBy[0] != a.ID {
		t.Errorf("stored user = %+v, want email vouched for by %s", got, a.ID)
	}

	e.clk.Advance(time.Minute)
	again := account("alice", "Alice@Example.com", true)
	again.Name = "" // Apple sends the name only once
	again.Tokens = store.TokenSet{AccessToken: "at-2"}
	again.ApprovedScopes = []string{"openid", "email"}
	again.Groups = []string{"staff"} // left admins at the provider
	second := e.signIn(store.SignIn{Account: again, Now: e.clk.Now()})
	if second.UserCreated || second.AccountCreated || second.User.ID != u.ID || second.Account.ID != a.ID {
		t.Fatalf("second sign-in = %+v, want the same user and account", second)
	}
	accs, err := e.st.ExternalAccounts(ctx, u.ID)
	if err != nil || len(accs) != 1 {
		t.Fatalf("ExternalAccounts = %v, %v", accs, err)
	}
	got := accs[0]
	if got.Tokens.AccessToken != "at-2" || got.Tokens.RefreshToken != "rt-alice" {
		t.Errorf("tokens = %+v, want the new access token and the kept refresh token", got.Tokens)
	}
	if got.Name != "Name of alice" || !slices.Equal(got.ApprovedScopes, again.ApprovedScopes) {
		t.Errorf("profile = %+v", got)
	}
	if !slices.Equal(first.Account.Groups, []string{"staff", "admins"}) || !slices.Equal(got.Groups, []string{"staff"}) {
		t.Errorf("groups: %q at the first sign-in, %q at the second; want what each sign-in said", first.Account.Groups, got.Groups)
	}
	if !got.UpdatedAt.Equal(e.clk.Now()) || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("account times: created %v updated %v", got.CreatedAt, got.UpdatedAt)
	}
	if user, _ := e.st.User(ctx, u.ID); !user.LastSignInAt.Equal(e.clk.Now()) || len(user.Emails) != 1 || !user.CreatedAt.Equal(u.CreatedAt) {
		t.Errorf("user after second sign-in = %+v", user)
	}
}

func signInConcurrentFirstSignInsCreateOneUser(t *testing.T, o opener) {
	e := o.env(t)
	const n = 20
	var wg sync.WaitGroup
	results := make([]store.SignInResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = e.st.SignIn(context.Background(), store.SignIn{Account: account("dave", "dave@example.com", true)})
		})
	}
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("sign-in %d: %v", i, errs[i])
		}
		if results[i].UserCreated {
			created++
		}
		if results[i].User.ID != results[0].User.ID {
			t.Errorf("sign-in %d got user %s, sign-in 0 got %s", i, results[i].User.ID, results[0].User.ID)
		}
	}
	if created != 1 {
		t.Errorf("%d sign-ins reported creating the user, want 1", created)
	}
	if users, accs := e.counts(); users != 1 || accs != 1 {
		t.Errorf("store holds %d users and %d accounts, want 1 and 1", users, accs)
	}
	e.checkClean()
}

func signInConcurrentFirstSignInsWithOneEmailLinkToOneUser(t *testing.T, o opener) {
	e := o.env(t)
	const n = 10
	users := e.signInsAtOnce(n, func(i int) store.SignIn {
		// n identities at n providers, one verified address, all at once.
		acc := account("same-person", "one@example.com", true)
		acc.Issuer = testIssuer + "/" + string(rune('a'+i))
		return store.SignIn{Account: acc, LinkByEmail: trustAll}
	})
	if got, accs := e.counts(); got != 1 || accs != n {
		t.Errorf("store holds %d users and %d accounts, want 1 and %d (users %v)", got, accs, n, users)
	}
	e.checkClean()
}

func signInLinksByEmailOnlyWhenVerifiedAndAllowed(t *testing.T, o opener) {
	for _, tc := range []struct {
		name       string
		existing   store.ExternalAccount // signs in first
		newcomer   store.ExternalAccount
		allowed    bool // LinkByEmail trusts every provider, or is nil
		wantLinked bool
	}{
		{"verified and allowed links", account("g1", "erin@example.com", true), account("h1", "erin@example.com", true), true, true},
		{"email match ignores case", account("g1", "Erin@Example.COM", true), account("h1", "erin@example.com", true), true, true},
		{"flag off never links", account("g1", "erin@example.com", true), account("h1", "erin@example.com", true), false, false},
		{"unverified newcomer never links", account("g1", "erin@example.com", true), account("h1", "erin@example.com", false), true, false},
		{"unverified holder is not indexed", account("g1", "erin@example.com", false), account("h1", "erin@example.com", true), true, false},
		{"different email does not link", account("g1", "erin@example.com", true), account("h1", "frank@example.com", true), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := o.env(t)
			first := e.signIn(store.SignIn{Account: tc.existing})
			in := store.SignIn{Account: tc.newcomer}
			if tc.allowed {
				in.LinkByEmail = trustAll
			}
			second := e.signIn(in)
			if linked := second.User.ID == first.User.ID; linked != tc.wantLinked {
				t.Errorf("linked = %v, want %v", linked, tc.wantLinked)
			}
			if second.UserCreated == tc.wantLinked || !second.AccountCreated {
				t.Errorf("result flags: user created %v, account created %v", second.UserCreated, second.AccountCreated)
			}
			e.checkClean()
		})
	}
}

func signInUnverifiedEmailIsRecordedButNeverLinks(t *testing.T, o opener) {
	e := o.env(t)
	res := e.signIn(store.SignIn{Account: account("gina", "gina@example.com", false)})
	if em := res.User.Emails; len(em) != 1 || em[0].Email != "gina@example.com" || em[0].Verified || len(em[0].VerifiedBy) != 0 {
		t.Errorf("emails = %+v, want gina@example.com unverified", em)
	}
	probe := e.linksTo("gina@example.com")
	if probe == res.User.ID {
		t.Error("an unverified address linked a sign-in")
	}
	// The same address verified later by the same account stays unverified
	// while the probe's user, which verified it first, holds it...
	res = e.signIn(store.SignIn{Account: account("gina", "GINA@example.com", true)})
	if em := res.User.Emails; len(em) != 1 || em[0].Verified {
		t.Errorf("emails after verification, the address held by another user = %+v", em)
	}
	// ...and links then, once that user is gone.
	if err := e.st.DeleteUser(context.Background(), probe); err != nil {
		t.Fatal(err)
	}
	res = e.signIn(store.SignIn{Account: account("gina", "GINA@example.com", true)})
	if em := res.User.Emails; len(em) != 1 || !em[0].Verified || em[0].Email != "gina@example.com" {
		t.Errorf("emails after verification = %+v", em)
	}
	if e.linksTo("gina@example.com") != res.User.ID {
		t.Error("the verified address does not link to its holder")
	}
	e.checkClean()
}

func signInVerifiedEmailLinksToItsFirstHolderUntilDeleted(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	// A verified address links to the first user who verified it while it
	// was free, not to a later one who verified it too.
	first := e.signIn(store.SignIn{Account: account("ann", "ann@example.com", true)})
	twin := e.signIn(store.SignIn{Account: account("ann-twin", "ann@example.com", true)}) // no linking asked
	if twin.User.ID == first.User.ID {
		t.Fatal("a sign-in that did not ask to link was linked")
	}
	if got := e.linksTo("ann@example.com"); got != first.User.ID {
		t.Errorf("ann@example.com links to %s, want the first holder %s", got, first.User.ID)
	}
	if err := e.st.DeleteUser(ctx, first.User.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.linksTo("ann@example.com"); got == first.User.ID {
		t.Error("ann@example.com links to a deleted user")
	}
	e.checkClean()
}

func signInLinkToUserLinksTheIdentity(t *testing.T, o opener) {
	e := o.env(t)
	e.needClock()
	owner := e.signIn(store.SignIn{Account: account("hank", "hank@example.com", true), Now: e.clk.Now()})
	e.clk.Advance(time.Second)
	linked := e.signIn(store.SignIn{Account: account("hank-gh", "other@example.com", true), LinkToUser: owner.User.ID, Now: e.clk.Now()})
	if linked.User.ID != owner.User.ID || linked.UserCreated || !linked.AccountCreated {
		t.Fatalf("link result = %+v", linked)
	}
	if len(linked.User.Emails) != 2 || linked.User.Name != "Name of hank" {
		t.Errorf("user after link = %+v, want both emails and the first name", linked.User)
	}
	accs, err := e.st.ExternalAccounts(context.Background(), owner.User.ID)
	if err != nil || len(accs) != 2 || accs[0].ID != owner.Account.ID || accs[1].ID != linked.Account.ID {
		t.Errorf("ExternalAccounts = %v, %v; want oldest first", accs, err)
	}
	// Connecting an identity the user already has is a plain sign-in.
	again := e.signIn(store.SignIn{Account: account("hank-gh", "other@example.com", true), LinkToUser: owner.User.ID})
	if again.AccountCreated || again.Account.ID != linked.Account.ID {
		t.Errorf("re-link = %+v", again)
	}
	e.checkClean()
}

func signInLinkToUserRefusesAnotherUsersIdentity(t *testing.T, o opener) {
	e := o.env(t)
	ivy := e.signIn(store.SignIn{Account: account("ivy", "ivy@example.com", true)})
	jack := e.signIn(store.SignIn{Account: account("jack", "jack@example.com", true)})
	before := e.snapshot()

	changed := account("jack", "new@example.com", true)
	changed.Tokens.AccessToken = "stolen"
	_, err := e.st.SignIn(context.Background(), store.SignIn{Account: changed, LinkToUser: ivy.User.ID})
	if !errors.Is(err, store.ErrIdentityTaken) {
		t.Fatalf("SignIn = %v, want ErrIdentityTaken", err)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("store changed on a refused link:\nbefore %s\nafter  %s", before, after)
	}
	if accs, _ := e.st.ExternalAccounts(context.Background(), jack.User.ID); len(accs) != 1 {
		t.Errorf("jack has %d accounts, want 1", len(accs))
	}
}

func signInLinkToUnknownUserIsNotFound(t *testing.T, o opener) {
	e := o.env(t)
	for _, uid := range []string{store.NewID("user"), "user/../x", ""} {
		_, err := e.st.SignIn(context.Background(), store.SignIn{Account: account("kim", "", false), LinkToUser: uid})
		if uid == "" {
			if err != nil {
				t.Errorf("SignIn without LinkToUser: %v", err)
			}
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SignIn linking to %q = %v, want ErrNotFound", uid, err)
		}
	}
	if users, accs := e.counts(); users != 1 || accs != 1 {
		t.Errorf("%d users and %d accounts, want only the unlinked one", users, accs)
	}
	e.checkClean()
}

func signInRejectsIncompleteIdentity(t *testing.T, o opener) {
	e := o.env(t)
	for _, acc := range []store.ExternalAccount{
		{Provider: "p", Issuer: testIssuer},
		{Provider: "p", Subject: "s"},
		{Provider: "p", Issuer: "a\x00b", Subject: "s"},
	} {
		if _, err := e.st.SignIn(context.Background(), store.SignIn{Account: acc}); err == nil {
			t.Errorf("SignIn(%q, %q) succeeded", acc.Issuer, acc.Subject)
		}
	}
	if users, _ := e.counts(); users != 0 {
		t.Errorf("%d users after refused sign-ins, want 0", users)
	}
}

func signInSameSubjectAtTwoIssuersIsTwoIdentities(t *testing.T, o opener) {
	e := o.env(t)
	x := account("42", "", false)
	y := x
	y.Issuer = "https://other.example"
	if rx, ry := e.signIn(store.SignIn{Account: x}), e.signIn(store.SignIn{Account: y}); rx.User.ID == ry.User.ID {
		t.Error("two issuers' subject 42 share a user")
	}
}

func signInChangedEmailWithdrawsTheOldVouching(t *testing.T, o opener) {
	e := o.env(t)
	// lou's provider account now reports another address; the old one may
	// be handed to someone else at the provider and must stop linking.
	lou := e.signIn(store.SignIn{Account: account("lou", "lou@old.example", true)})
	again := e.signIn(store.SignIn{Account: account("lou", "lou@new.example", true)})
	em := again.User.Emails
	if len(em) != 2 || em[0].Verified || len(em[0].VerifiedBy) != 0 || !em[1].Verified {
		t.Errorf("emails = %+v, want lou@old.example unverified and lou@new.example verified", em)
	}
	if e.linksTo("lou@old.example") == lou.User.ID {
		t.Error("the old address still links to lou")
	}
	if e.linksTo("lou@new.example") != lou.User.ID {
		t.Error("the new address does not link to lou")
	}
	e.checkClean()
}

func signInConcurrentNewUsersAreAllCounted(t *testing.T, o opener) {
	e := o.env(t)
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			acc := account("new-"+string(rune('A'+i)), "", false)
			if _, err := e.st.SignIn(context.Background(), store.SignIn{Account: acc}); err != nil {
				t.Errorf("SignIn: %v", err)
			}
		})
	}
	wg.Wait()
	if _, total, err := e.st.Users(context.Background(), store.UserQuery{}); err != nil || total != n {
		t.Errorf("Users total = %d, %v; want %d", total, err, n)
	}
	e.checkClean()
}

// errNotAdmitted is what the admission test's Admit answers.
var errNotAdmitted = errors.New("not admitted")

func signInAdmitRefusalWritesNothing(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	ada := e.signIn(store.SignIn{Account: account("ada", "ada@example.com", true)})
	cursor := lastEventID(e)
	var seen []*store.User
	var seenAccounts [][]*store.ExternalAccount
	refuse := func(u *store.User, accounts []*store.ExternalAccount) error {
		seen = append(seen, u)
		seenAccounts = append(seenAccounts, accounts)
		return errNotAdmitted
	}
	emailsOf := func(accounts []*store.ExternalAccount) []string {
		var out []string
		for _, a := range accounts {
			out = append(out, a.Email)
		}
		slices.Sort(out)
		return out
	}

	// A sign-up refused: no user, no account, no event.
	_, err := e.st.SignIn(ctx, store.SignIn{Account: account("eve", "eve@evil.example", true), Admit: refuse})
	if !errors.Is(err, errNotAdmitted) {
		t.Fatalf("refused sign-up: %v, want the Admit error", err)
	}
	if len(seen) == 0 || seen[len(seen)-1].ID == ada.User.ID || len(seen[len(seen)-1].Emails) != 1 ||
		seen[len(seen)-1].Emails[0].Email != "eve@evil.example" || !seen[len(seen)-1].Emails[0].Verified {
		t.Errorf("Admit saw %+v; want the new user with eve's verified address", seen)
	}
	if got := emailsOf(seenAccounts[len(seenAccounts)-1]); !slices.Equal(got, []string{"eve@evil.example"}) {
		t.Errorf("Admit saw accounts %q; want eve's new one", got)
	}
	// A known identity refused, and one linking by email to ada: Admit
	// sees ada as the sign-in would leave her, and nothing changes.
	before, _ := e.st.User(ctx, ada.User.ID)
	again := account("ada", "ada@changed.example", true)
	if _, err := e.st.SignIn(ctx, store.SignIn{Account: again, Admit: refuse}); !errors.Is(err, errNotAdmitted) {
		t.Fatalf("refused sign-in: %v", err)
	}
	if last := seen[len(seen)-1]; last.ID != ada.User.ID || len(last.Emails) != 2 {
		t.Errorf("Admit saw %+v; want ada with the new address merged in", last)
	}
	if got := emailsOf(seenAccounts[len(seenAccounts)-1]); !slices.Equal(got, []string{"ada@changed.example"}) {
		t.Errorf("Admit saw accounts %q; want ada's one account, refreshed", got)
	}
	byEmail := account("ada-gh", "ada@example.com", true)
	if _, err := e.st.SignIn(ctx, store.SignIn{Account: byEmail, LinkByEmail: trustAll, Admit: refuse}); !errors.Is(err, errNotAdmitted) {
		t.Fatalf("refused link by email: %v", err)
	}
	if last := seen[len(seen)-1]; last.ID != ada.User.ID {
		t.Errorf("Admit saw user %s; want ada, whom the address links to", last.ID)
	}
	if got := seenAccounts[len(seenAccounts)-1]; len(got) != 2 || got[0].Subject != "ada" || got[1].Subject != "ada-gh" {
		t.Errorf("Admit saw %d accounts; want ada's stored one and the new one", len(got))
	}
	if users, accounts := e.counts(); users != 1 || accounts != 1 {
		t.Errorf("after refused sign-ins: %d users, %d accounts; want ada alone", users, accounts)
	}
	if after, _ := e.st.User(ctx, ada.User.ID); !after.LastSignInAt.Equal(before.LastSignInAt) || len(after.Emails) != 1 {
		t.Errorf("a refused sign-in changed ada: %+v", after)
	}
	e.expectEvents(&cursor, "refused sign-ins")
	e.checkClean()

	// Admitted: the sign-in goes through as without Admit.
	ok := e.signIn(store.SignIn{Account: account("bea", "bea@example.com", true), Admit: func(*store.User, []*store.ExternalAccount) error { return nil }})
	if !ok.UserCreated {
		t.Errorf("admitted sign-up = %+v", ok)
	}
}
