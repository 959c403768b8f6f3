package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// accountAt is a provider's report of an identity, the provider's own
// namespace of subjects.
func accountAt(provider, subject, email string, verified bool) store.ExternalAccount {
	a := account(subject, email, verified)
	a.Provider, a.Issuer = provider, testIssuer+"/"+provider
	return a
}

// session starts a live session of the user and returns its id.
func (e *env) session(userID string) string {
	e.t.Helper()
	s := &store.Session{UserID: userID, ExpiresAt: time.Now().Add(time.Hour)}
	if err := e.st.CreateSession(context.Background(), s); err != nil {
		e.t.Fatal(err)
	}
	return s.ID
}

// live reports whether the session is still there.
func (e *env) live(id string) bool {
	e.t.Helper()
	_, err := e.st.Session(context.Background(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

func signInLinkByEmailNeedsATrustedProviderOnBothSides(t *testing.T, o opener) {
	trusted := trusting("google", "github")
	const addr = "kim@example.com"
	// What a second first sign-in with the address does to the first user,
	// who holds it.
	const (
		joined   = "joins the holder"
		apart    = "gets a user of its own; the holder keeps the address"
		takeover = "gets a user of its own, which takes the address over"
		refused  = "is refused"
	)
	for _, tc := range []struct {
		name             string
		holder, newcomer store.ExternalAccount
		linkByEmail      func(string) bool
		want             string
	}{
		{"both trusted", accountAt("google", "g", addr, true), accountAt("github", "h", "Kim@Example.com", true), trusted, joined},
		{"holder at an untrusted provider", accountAt("shady", "g", addr, true), accountAt("github", "h", addr, true), trusted, takeover},
		{"newcomer at an untrusted provider", accountAt("google", "g", addr, true), accountAt("shady", "h", addr, true), trusted, refused},
		{"both untrusted", accountAt("shady", "g", addr, true), accountAt("corp", "h", addr, true), trusted, apart},
		{"trusted newcomer, address unverified", accountAt("google", "g", addr, true), accountAt("github", "h", addr, false), trusted, apart},
		{"untrusted newcomer, address unverified", accountAt("google", "g", addr, true), accountAt("shady", "h", addr, false), trusted, apart},
		{"linking by email off", accountAt("google", "g", addr, true), accountAt("shady", "h", addr, true), nil, apart},
		{"holder's provider no longer trusted", accountAt("google", "g", addr, true), accountAt("github", "h", addr, true), trusting("github"), takeover},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := o.env(t)
			first := e.signIn(store.SignIn{Account: tc.holder, LinkByEmail: trusted})
			before := e.snapshot()
			second, err := e.st.SignIn(context.Background(), store.SignIn{Account: tc.newcomer, LinkByEmail: tc.linkByEmail})
			got := ""
			switch {
			case errors.Is(err, store.ErrEmailHeld):
				got = refused
				if after := e.snapshot(); after != before {
					t.Errorf("a refused sign-in changed the store:\n%s\nwas\n%s", after, before)
				}
			case err != nil:
				t.Fatalf("SignIn: %v", err)
			case second.User.ID == first.User.ID:
				got = joined
				if !second.LinkedByEmail || second.UserCreated {
					t.Errorf("a join reports linked by email %v, user created %v", second.LinkedByEmail, second.UserCreated)
				}
			case e.linksTo(addr) == first.User.ID:
				got = apart
			case e.linksTo(addr) == second.User.ID:
				got = takeover
			}
			if got != tc.want {
				t.Errorf("the newcomer %q, want it %s", got, tc.want)
			}
			if got != joined && second.LinkedByEmail {
				t.Error("a sign-in that joined no one reports a link by email")
			}
			e.checkClean()
		})
	}
}

func signInLinkByEmailRevokesTheHoldersSessions(t *testing.T, o opener) {
	e := o.env(t)
	holder := e.signIn(store.SignIn{Account: accountAt("google", "lou", "lou@example.com", true), LinkByEmail: trustAll})
	s1, s2 := e.session(holder.User.ID), e.session(holder.User.ID)
	other := e.session(e.signIn(store.SignIn{Account: account("someone", "someone@example.com", true)}).User.ID)
	cursor := lastEventID(e)

	res := e.signIn(store.SignIn{Account: accountAt("github", "lou-gh", "lou@example.com", true), LinkByEmail: trustAll})
	if !res.LinkedByEmail || res.User.ID != holder.User.ID {
		t.Fatalf("result: linked by email %v into %s, want a link into %s", res.LinkedByEmail, res.User.ID, holder.User.ID)
	}
	if got := slices.Sorted(slices.Values(res.RevokedSessions)); !slices.Equal(got, slices.Sorted(slices.Values([]string{s1, s2}))) {
		t.Errorf("RevokedSessions = %q, want the holder's two", got)
	}
	if e.live(s1) || e.live(s2) {
		t.Error("a session of the holder outlived the link by email")
	}
	if !e.live(other) {
		t.Error("another user's session ended")
	}
	evs := e.newEvents(&cursor)
	types := eventTypes(evs)
	want := []string{store.EventAccountCreated, store.EventAccountLinkedByEmail, store.EventSessionRevoked, store.EventSessionRevoked, store.EventUserUpdated}
	if !slices.Equal(types, want) {
		t.Fatalf("a link by email recorded %q, want %q", types, want)
	}
	if a := evs[1].Account; a == nil || a.ID != res.Account.ID || a.UserID != holder.User.ID || a.Provider != "github" {
		t.Errorf("external_account.linked_by_email is about %+v, want the new account of user %s", a, holder.User.ID)
	}
	ended := []string{evs[2].Session.ID, evs[3].Session.ID}
	if !slices.Equal(slices.Sorted(slices.Values(ended)), slices.Sorted(slices.Values([]string{s1, s2}))) {
		t.Errorf("session.revoked events are about %q, want %s and %s", ended, s1, s2)
	}

	// The identity is known now: signing in again links nothing, ends nothing.
	s3 := e.session(holder.User.ID)
	again := e.signIn(store.SignIn{Account: accountAt("github", "lou-gh", "lou@example.com", true), LinkByEmail: trustAll})
	if again.LinkedByEmail || len(again.RevokedSessions) > 0 || !e.live(s3) {
		t.Errorf("a known identity's sign-in: linked by email %v, revoked %q", again.LinkedByEmail, again.RevokedSessions)
	}
	e.checkClean()
}

func signInPreAccountHijackLeavesTheVictimApart(t *testing.T, o opener) {
	e := o.env(t)
	trusted := trusting("google", "github")
	// Mallory signs up first through a provider that lets her claim any
	// address as verified, and keeps a session.
	mallory := e.signIn(store.SignIn{Account: accountAt("shady", "mallory", "victim@example.com", true), LinkByEmail: trusted})
	malloryS := e.session(mallory.User.ID)
	// The address's owner arrives through trusted providers, twice.
	victim := e.signIn(store.SignIn{Account: accountAt("google", "vic", "victim@example.com", true), LinkByEmail: trusted})
	if victim.User.ID == mallory.User.ID || !victim.UserCreated || victim.LinkedByEmail {
		t.Fatalf("the victim's first sign-in landed in %s (created %v, linked %v); the attacker is %s",
			victim.User.ID, victim.UserCreated, victim.LinkedByEmail, mallory.User.ID)
	}
	second := e.signIn(store.SignIn{Account: accountAt("github", "vic-gh", "Victim@Example.com", true), LinkByEmail: trusted})
	if second.User.ID != victim.User.ID {
		t.Errorf("the victim's second provider landed in %s, want the victim's own user %s", second.User.ID, victim.User.ID)
	}
	// Mallory signs in again: she keeps her own user and no more.
	back := e.signIn(store.SignIn{Account: accountAt("shady", "mallory", "victim@example.com", true), LinkByEmail: trusted})
	if back.User.ID != mallory.User.ID {
		t.Errorf("the attacker's identity moved to %s", back.User.ID)
	}
	if v := e.view(mallory.User.ID); len(v.Accounts) != 1 || !e.live(malloryS) {
		t.Errorf("the attacker's user has %d accounts, want 1 (hers)", len(v.Accounts))
	}
	if v := e.view(victim.User.ID); len(v.Accounts) != 2 {
		t.Errorf("the victim's user has %d accounts, want 2", len(v.Accounts))
	}
	if got := e.linksTo("victim@example.com"); got != victim.User.ID {
		t.Errorf("the address links to %s, want the victim %s", got, victim.User.ID)
	}
	e.checkClean()
}

func signInConcurrentTakeOversMakeOneUser(t *testing.T, o opener) {
	e := o.env(t)
	trusted := trusting("google")
	squatter := e.signIn(store.SignIn{Account: accountAt("shady", "squatter", "one@example.com", true), LinkByEmail: trusted})
	const n = 8
	users := e.signInsAtOnce(n, func(i int) store.SignIn {
		acc := accountAt("google", fmt.Sprint("owner-", i), "one@example.com", true)
		acc.Issuer += fmt.Sprint("/", i)
		return store.SignIn{Account: acc, LinkByEmail: trusted}
	})
	if got, accs := e.counts(); got != 2 || accs != n+1 {
		t.Errorf("store holds %d users and %d accounts, want 2 and %d (the squatter, and the owner with %d)", got, accs, n+1, n)
	}
	if distinct := slices.Compact(slices.Sorted(slices.Values(users))); len(distinct) != 1 || distinct[0] == squatter.User.ID {
		t.Errorf("the owner's sign-ins landed in %q; the squatter is %s", users, squatter.User.ID)
	}
	e.checkClean()
}
