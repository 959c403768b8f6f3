package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// The rules of store.Emails: a verified address belongs to at most one user
// at a time, the one the email index links it to; a take-over withdraws it
// from the squatter, ending the squatter's sessions that carry it; a
// session never goes on carrying an address its user lost.

const heldAddr = "victim@example.com"

// sessionCarrying starts a live session of the user that carries its
// address email as verified, as the gateway's sessions do, and returns it
// as the store kept it.
func (e *env) sessionCarrying(userID, email string) *store.Session {
	e.t.Helper()
	s := &store.Session{UserID: userID, Email: email, EmailVerified: true, ExpiresAt: e.clk.Now().Add(time.Hour)}
	if err := e.st.CreateSession(context.Background(), s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// standsFor fails the test unless the address is verified on exactly the
// user want ("" for no one) among users.
func (e *env) standsFor(email, want string, users ...string) {
	e.t.Helper()
	for _, id := range users {
		u := e.view(id).User
		if holds := u.Holds(email); holds != (id == want) {
			e.t.Errorf("user %s: %s verified %v (primary %q), want %v", id, email, holds, u.PrimaryEmail(), id == want)
		}
	}
}

// emailsAVerifiedAddressStandsForItsHolderOnly: every way a second user
// could come to carry an address another user holds leaves it unverified on
// the second user, who never presents it.
func emailsAVerifiedAddressStandsForItsHolderOnly(t *testing.T, o opener) {
	trusted := trusting("google", "github")
	for _, tc := range []struct {
		name string
		// second makes the other user carry heldAddr and returns its id.
		second func(e *env) string
	}{
		{"a first sign-in beside an untrusted holder", func(e *env) string {
			return e.signIn(store.SignIn{Account: accountAt("corp", "m", heldAddr, true), LinkByEmail: trusted}).User.ID
		}},
		{"a connect through an untrusted provider", func(e *env) string {
			mallory := e.signIn(store.SignIn{Account: accountAt("dev", "m", "mallory@evil.example", false), LinkByEmail: trusted})
			e.signIn(store.SignIn{Account: accountAt("shady", "m", heldAddr, true), LinkToUser: mallory.User.ID, LinkByEmail: trusted})
			return mallory.User.ID
		}},
		{"a connect with linking by email off", func(e *env) string {
			mallory := e.signIn(store.SignIn{Account: accountAt("dev", "m", "mallory@evil.example", false)})
			e.signIn(store.SignIn{Account: accountAt("github", "m", heldAddr, true), LinkToUser: mallory.User.ID})
			return mallory.User.ID
		}},
		{"a known identity's address changing to the held one", func(e *env) string {
			mallory := e.signIn(store.SignIn{Account: accountAt("shady", "m", "mallory@evil.example", true), LinkByEmail: trusted})
			e.signIn(store.SignIn{Account: accountAt("shady", "m", heldAddr, true), LinkByEmail: trusted})
			return mallory.User.ID
		}},
		{"an account update to the held address", func(e *env) string {
			mallory := e.signIn(store.SignIn{Account: accountAt("github", "m", "mallory@evil.example", true), LinkByEmail: trusted})
			if _, err := e.st.UpdateExternalAccount(context.Background(), mallory.Account.ID, func(a *store.ExternalAccount) error {
				a.Email, a.EmailVerified = heldAddr, true
				return nil
			}); err != nil {
				e.t.Fatal(err)
			}
			return mallory.User.ID
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := o.env(t)
			// The holder vouched through an untrusted provider, so only the
			// trusted paths below may take the address over; none does.
			holder := e.signIn(store.SignIn{Account: accountAt("shady", "owner", heldAddr, true), LinkByEmail: trusted}).User.ID
			kept := e.sessionCarrying(holder, heldAddr)
			second := tc.second(e)
			if second == holder {
				t.Fatal("the second identity landed in the holder's user")
			}
			e.standsFor(heldAddr, holder, holder, second)
			if !e.live(kept.ID) {
				t.Error("the holder's session ended")
			}
			// A session started for the second user from its record does not
			// carry the address, even if asked to.
			if s := e.sessionCarrying(second, heldAddr); s.VerifiedEmail() != "" {
				t.Errorf("a session of the second user carries %q", s.VerifiedEmail())
			}
			if got := e.linksTo(heldAddr); got != holder {
				t.Errorf("the address links to %s, want its holder %s", got, holder)
			}
			e.checkClean()
		})
	}
}

// emailsTakeOverWithdrawsTheAddressAndEndsTheSquattersSessions: whether the
// owner arrives by a first sign-in or connects a trusted provider, the
// squatter's user loses the address, the squatter's sessions that carry it
// end (session.revoked), and signing in again does not bring it back.
func emailsTakeOverWithdrawsTheAddressAndEndsTheSquattersSessions(t *testing.T, o opener) {
	trusted := trusting("google")
	for _, tc := range []struct {
		name  string
		owner func(e *env) store.SignInResult
	}{
		{"by a first sign-in", func(e *env) store.SignInResult {
			return e.signIn(store.SignIn{Account: accountAt("google", "vic", heldAddr, true), LinkByEmail: trusted})
		}},
		{"by a connect", func(e *env) store.SignInResult {
			vic := e.signIn(store.SignIn{Account: accountAt("dev", "vic", "", false), LinkByEmail: trusted})
			return e.signIn(store.SignIn{Account: accountAt("google", "vic", "Victim@Example.com", true), LinkToUser: vic.User.ID, LinkByEmail: trusted})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := o.env(t)
			mallory := e.signIn(store.SignIn{Account: accountAt("shady", "mallory", heldAddr, true), LinkByEmail: trusted}).User.ID
			carrying := e.sessionCarrying(mallory, heldAddr)
			plain := e.session(mallory)
			cursor := lastEventID(e)

			res := tc.owner(e)
			if res.User.ID == mallory {
				t.Fatal("the owner landed in the squatter's user")
			}
			if !slices.Equal(res.Relieved, []string{mallory}) || !slices.Contains(res.RevokedSessions, carrying.ID) || slices.Contains(res.RevokedSessions, plain) {
				t.Errorf("result: relieved %q, revoked %q; want the squatter relieved and only her session carrying the address revoked",
					res.Relieved, res.RevokedSessions)
			}
			e.standsFor(heldAddr, res.User.ID, res.User.ID, mallory)
			if e.live(carrying.ID) || !e.live(plain) {
				t.Errorf("after the take-over: the squatter's session carrying the address live %v, her other one live %v; want false, true",
					e.live(carrying.ID), e.live(plain))
			}
			var revoked, relieved bool
			for _, ev := range e.newEvents(&cursor) {
				switch {
				case ev.Type == store.EventSessionRevoked && ev.Session.ID == carrying.ID:
					revoked = true
				case ev.Type == store.EventUserUpdated && ev.User.ID == mallory:
					relieved = !ev.User.Holds(heldAddr)
				}
			}
			if !revoked || !relieved {
				t.Errorf("events: session.revoked of the squatter's session %v, user.updated of the squatter without the address %v", revoked, relieved)
			}

			// The squatter signs in again, still asserting the address.
			back := e.signIn(store.SignIn{Account: accountAt("shady", "mallory", heldAddr, true), LinkByEmail: trusted})
			if back.User.ID != mallory || back.User.PrimaryEmail() != "" {
				t.Errorf("the squatter's next sign-in: user %s, primary %q; want %s with no address", back.User.ID, back.User.PrimaryEmail(), mallory)
			}
			e.standsFor(heldAddr, res.User.ID, res.User.ID, mallory)
			e.checkClean()
		})
	}
}

// emailsAGivenUpAddressLeavesTheSessionsWithoutIt: when a user's own change
// withdraws an address (an unlink, the provider reporting another one), the
// user's sessions that carry it go on without it; the others are untouched.
func emailsAGivenUpAddressLeavesTheSessionsWithoutIt(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	ann := e.signIn(store.SignIn{Account: accountAt("google", "ann", "ann@old.example", true)})
	other := e.signIn(store.SignIn{Account: accountAt("github", "ann", "ann@gh.example", true), LinkToUser: ann.User.ID})
	old := e.sessionCarrying(ann.User.ID, "Ann@Old.example")
	gh := e.sessionCarrying(ann.User.ID, "ann@gh.example")
	carries := func(s *store.Session) string {
		t.Helper()
		got := e.sessionRecord(s.ID)
		if got == nil {
			t.Fatal("a session ended")
		}
		return got.VerifiedEmail()
	}
	cursor := lastEventID(e)

	// The provider reports another address now.
	res := e.signIn(store.SignIn{Account: accountAt("google", "ann", "ann@new.example", true)})
	if len(res.RevokedSessions) > 0 || carries(old) != "" || carries(gh) != "ann@gh.example" {
		t.Errorf("after the address changed: revoked %q, the old session carries %q, the other %q; want none revoked, nothing, ann@gh.example",
			res.RevokedSessions, carries(old), carries(gh))
	}
	e.expectEvents(&cursor, "a sign-in that withdrew an address", store.EventUserUpdated)

	// Unlinking the only account that vouches for an address.
	if _, revoked, err := e.st.DeleteExternalAccount(ctx, ann.User.ID, other.Account.ID, nil); err != nil || len(revoked) > 0 {
		t.Fatalf("DeleteExternalAccount: revoked %q, %v", revoked, err)
	}
	if got := carries(gh); got != "" {
		t.Errorf("a session carries %q, the address of the unlinked account", got)
	}
	e.expectEvents(&cursor, "an unlink that withdrew an address", store.EventAccountDeleted, store.EventUserUpdated)
	e.checkClean()
}

// emailsImportLeavesAnAddressHeldElsewhereUnverified: an imported user
// whose verified address another user of the target holds gets it
// unverified, and its sessions that carry it are not written.
func emailsImportLeavesAnAddressHeldElsewhereUnverified(t *testing.T, o opener) {
	e := o.env(t)
	im, ok := e.st.(importer)
	if !ok {
		t.Skip("the store does not import")
	}
	ctx := context.Background()
	holder := e.signIn(store.SignIn{Account: accountAt("google", "owner", heldAddr, true)}).User.ID
	now := e.clk.Now().Round(0)
	u := &store.User{ID: store.NewID("user"), CreatedAt: now, UpdatedAt: now}
	acc := &store.ExternalAccount{ID: store.NewID("eac"), UserID: u.ID, Provider: "shady", Issuer: testIssuer + "/shady", Subject: "m",
		Email: heldAddr, EmailVerified: true, Status: store.StatusVerified, CreatedAt: now, UpdatedAt: now}
	u.Emails = []store.EmailAddress{{Email: heldAddr, Verified: true, VerifiedBy: []string{acc.ID}}}
	carrying := &store.Session{ID: store.NewID("sess"), UserID: u.ID, Email: heldAddr, EmailVerified: true, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	plain := &store.Session{ID: store.NewID("sess"), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	res, err := im.Import(ctx, store.Record{User: u, Accounts: []*store.ExternalAccount{acc}, Sessions: []*store.Session{carrying, plain}})
	if err != nil || !res.Imported || res.Sessions != 1 {
		t.Fatalf("Import = %+v, %v; want it imported with 1 session", res, err)
	}
	if !u.Emails[0].Verified {
		t.Error("Import changed the caller's record")
	}
	e.standsFor(heldAddr, holder, holder, u.ID)
	if e.live(carrying.ID) || !e.live(plain.ID) {
		t.Errorf("imported sessions: the one carrying the held address live %v, the other %v; want false, true", e.live(carrying.ID), e.live(plain.ID))
	}
	e.checkClean()
}
