package store

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

const testIssuer = "https://issuer.example"

// account is a provider's report of an identity.
func account(subject, email string, verified bool) ExternalAccount {
	return ExternalAccount{
		Provider:      "test",
		Issuer:        testIssuer,
		Subject:       subject,
		Email:         email,
		EmailVerified: verified,
		Name:          "Name of " + subject,
		ImageURL:      "https://img.example/" + subject,
		Tokens:        TokenSet{AccessToken: "at-" + subject, RefreshToken: "rt-" + subject},
	}
}

func mustSignIn(t *testing.T, b *Badger, in SignIn) SignInResult {
	t.Helper()
	res, err := b.SignIn(context.Background(), in)
	if err != nil {
		t.Fatalf("SignIn(%s): %v", in.Account.Subject, err)
	}
	return res
}

func TestSignIn_FirstCreatesUserAndAccountSecondFindsThem(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		first := mustSignIn(t, b, SignIn{Account: account("alice", "Alice@Example.com", true)})
		if !first.UserCreated || !first.AccountCreated {
			t.Fatalf("first sign-in: created user %v, account %v; want both", first.UserCreated, first.AccountCreated)
		}
		u, a := first.User, first.Account
		if u.Name != "Name of alice" || u.ImageURL == "" || u.PrimaryEmail() != "Alice@Example.com" {
			t.Errorf("new user profile = %+v", u)
		}
		if a.UserID != u.ID || a.Status != StatusVerified || a.CreatedAt.IsZero() {
			t.Errorf("new account = %+v", a)
		}
		if got, _ := b.User(ctx, u.ID); got == nil || got.Emails[0].VerifiedBy[0] != a.ID {
			t.Errorf("stored user = %+v, want email vouched for by %s", got, a.ID)
		}

		clk.Advance(time.Minute)
		again := account("alice", "Alice@Example.com", true)
		again.Name = "" // Apple sends the name only once
		again.Tokens = TokenSet{AccessToken: "at-2"}
		again.ApprovedScopes = []string{"openid", "email"}
		second := mustSignIn(t, b, SignIn{Account: again, Now: clk.Now()})
		if second.UserCreated || second.AccountCreated || second.User.ID != u.ID || second.Account.ID != a.ID {
			t.Fatalf("second sign-in = %+v, want the same user and account", second)
		}
		accs, err := b.ExternalAccounts(ctx, u.ID)
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
		if !got.UpdatedAt.Equal(clk.Now()) || !got.CreatedAt.Equal(a.CreatedAt) {
			t.Errorf("account times: created %v updated %v", got.CreatedAt, got.UpdatedAt)
		}
		if user, _ := b.User(ctx, u.ID); !user.LastSignInAt.Equal(clk.Now()) || len(user.Emails) != 1 {
			t.Errorf("user after second sign-in = %+v", user)
		}
	})
}

func TestSignIn_ConcurrentFirstSignInsCreateOneUser(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		const n = 20
		var wg sync.WaitGroup
		results := make([]SignInResult, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				results[i], errs[i] = b.SignIn(context.Background(), SignIn{Account: account("dave", "dave@example.com", true)})
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
		if users, accs := countPrefix(t, b, prefixUser), countPrefix(t, b, prefixEAC); users != 1 || accs != 1 {
			t.Errorf("store holds %d users and %d accounts, want 1 and 1", users, accs)
		}
	})
}

func TestSignIn_LinksByEmailOnlyWhenVerifiedAndAllowed(t *testing.T) {
	for _, tc := range []struct {
		name       string
		existing   ExternalAccount // signs in first
		newcomer   ExternalAccount
		allowed    bool // LinkByVerifiedEmail
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
			eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
				first := mustSignIn(t, b, SignIn{Account: tc.existing})
				second := mustSignIn(t, b, SignIn{Account: tc.newcomer, LinkByVerifiedEmail: tc.allowed})
				if linked := second.User.ID == first.User.ID; linked != tc.wantLinked {
					t.Errorf("linked = %v, want %v", linked, tc.wantLinked)
				}
				if second.UserCreated == tc.wantLinked || !second.AccountCreated {
					t.Errorf("result flags: user created %v, account created %v", second.UserCreated, second.AccountCreated)
				}
				if problems, err := b.Check(context.Background()); err != nil || len(problems) > 0 {
					t.Errorf("Check = %q, %v", problems, err)
				}
			})
		})
	}
}

func TestSignIn_UnverifiedEmailIsRecordedButNeverIndexed(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		res := mustSignIn(t, b, SignIn{Account: account("gina", "gina@example.com", false)})
		want := []EmailAddress{{Email: "gina@example.com"}}
		if !slices.EqualFunc(res.User.Emails, want, func(x, y EmailAddress) bool {
			return x.Email == y.Email && x.Verified == y.Verified && len(x.VerifiedBy) == 0
		}) {
			t.Errorf("emails = %+v, want %+v", res.User.Emails, want)
		}
		if n := countPrefix(t, b, prefixEmail); n != 0 {
			t.Errorf("%d email index entries, want 0", n)
		}
		// The same address verified later by the same account is indexed then.
		res = mustSignIn(t, b, SignIn{Account: account("gina", "GINA@example.com", true)})
		if e := res.User.Emails; len(e) != 1 || !e[0].Verified || e[0].Email != "gina@example.com" {
			t.Errorf("emails after verification = %+v", e)
		}
		if n := countPrefix(t, b, prefixEmail+"gina@example.com"); n != 1 {
			t.Errorf("%d email index entries, want 1", n)
		}
	})
}

func TestSignIn_LinkToUserLinksTheIdentity(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		owner := mustSignIn(t, b, SignIn{Account: account("hank", "hank@example.com", true)})
		clk.Advance(time.Second)
		linked := mustSignIn(t, b, SignIn{Account: account("hank-gh", "other@example.com", true), LinkToUser: owner.User.ID})
		if linked.User.ID != owner.User.ID || linked.UserCreated || !linked.AccountCreated {
			t.Fatalf("link result = %+v", linked)
		}
		if len(linked.User.Emails) != 2 || linked.User.Name != "Name of hank" {
			t.Errorf("user after link = %+v, want both emails and the first name", linked.User)
		}
		accs, err := b.ExternalAccounts(context.Background(), owner.User.ID)
		if err != nil || len(accs) != 2 || accs[0].ID != owner.Account.ID || accs[1].ID != linked.Account.ID {
			t.Errorf("ExternalAccounts = %v, %v; want oldest first", accs, err)
		}
		// Connecting an identity the user already has is a plain sign-in.
		again := mustSignIn(t, b, SignIn{Account: account("hank-gh", "other@example.com", true), LinkToUser: owner.User.ID})
		if again.AccountCreated || again.Account.ID != linked.Account.ID {
			t.Errorf("re-link = %+v", again)
		}
	})
}

func TestSignIn_LinkToUserRefusesAnotherUsersIdentity(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		ivy := mustSignIn(t, b, SignIn{Account: account("ivy", "ivy@example.com", true)})
		jack := mustSignIn(t, b, SignIn{Account: account("jack", "jack@example.com", true)})
		before := dump(t, b)

		changed := account("jack", "new@example.com", true)
		changed.Tokens.AccessToken = "stolen"
		_, err := b.SignIn(context.Background(), SignIn{Account: changed, LinkToUser: ivy.User.ID})
		if !errors.Is(err, ErrIdentityTaken) {
			t.Fatalf("SignIn = %v, want ErrIdentityTaken", err)
		}
		if after := dump(t, b); !maps.Equal(before, after) {
			t.Errorf("store changed on a refused link:\nbefore %q\nafter  %q", before, after)
		}
		if accs, _ := b.ExternalAccounts(context.Background(), jack.User.ID); len(accs) != 1 {
			t.Errorf("jack has %d accounts, want 1", len(accs))
		}
	})
}

func TestSignIn_LinkToUnknownUserIsNotFound(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		for _, uid := range []string{NewID("user"), "user/../x", ""} {
			_, err := b.SignIn(context.Background(), SignIn{Account: account("kim", "", false), LinkToUser: uid})
			if uid == "" {
				if err != nil {
					t.Errorf("SignIn without LinkToUser: %v", err)
				}
				continue
			}
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("SignIn linking to %q = %v, want ErrNotFound", uid, err)
			}
		}
		if n := countPrefix(t, b, prefixEAC); n != 1 {
			t.Errorf("%d accounts, want only the unlinked one", n)
		}
	})
}

func TestSignIn_RejectsIncompleteIdentity(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		for _, acc := range []ExternalAccount{
			{Provider: "p", Issuer: testIssuer},
			{Provider: "p", Subject: "s"},
			{Provider: "p", Issuer: "a\x00b", Subject: "s"},
		} {
			if _, err := b.SignIn(context.Background(), SignIn{Account: acc}); err == nil {
				t.Errorf("SignIn(%q, %q) succeeded", acc.Issuer, acc.Subject)
			}
		}
	})
}

func TestSignIn_SameSubjectAtTwoIssuersIsTwoIdentities(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		x := account("42", "", false)
		y := x
		y.Issuer = "https://other.example"
		if rx, ry := mustSignIn(t, b, SignIn{Account: x}), mustSignIn(t, b, SignIn{Account: y}); rx.User.ID == ry.User.ID {
			t.Error("two issuers' subject 42 share a user")
		}
	})
}

func TestSignIn_ChangedEmailWithdrawsTheOldVouching(t *testing.T) {
	eachBackend(t, func(t *testing.T, b *Badger, _ *fakeClock) {
		// lou's provider account now reports another address; the old one may
		// be handed to someone else at the provider and must stop linking.
		lou := mustSignIn(t, b, SignIn{Account: account("lou", "lou@old.example", true)})
		again := mustSignIn(t, b, SignIn{Account: account("lou", "lou@new.example", true)})
		e := again.User.Emails
		if len(e) != 2 || e[0].Verified || len(e[0].VerifiedBy) != 0 || !e[1].Verified {
			t.Errorf("emails = %+v, want lou@old.example unverified and lou@new.example verified", e)
		}
		heir := mustSignIn(t, b, SignIn{Account: account("heir", "lou@old.example", true), LinkByVerifiedEmail: true})
		if heir.User.ID == lou.User.ID {
			t.Error("the old address still links to lou")
		}
		if n := mustSignIn(t, b, SignIn{Account: account("twin", "lou@new.example", true), LinkByVerifiedEmail: true}); n.User.ID != lou.User.ID {
			t.Error("the new address does not link to lou")
		}
		checkClean(t, b)
	})
}
