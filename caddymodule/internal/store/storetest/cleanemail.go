package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// An address is trimmed of surrounding whitespace and must then be a plain
// addr-spec (store.CleanEmail); anything else is no address at all.

// spacedAddrs are heldAddr with whitespace around it: each is heldAddr, so
// it never stands for a second user beside its holder (HTTP drops the
// space, so the upstream would read heldAddr).
// The ideographic full stop (U+3002) is a dot in a domain (store.ASCIIDomain).
var spacedAddrs = []string{" " + heldAddr, heldAddr + " ", "\t" + heldAddr + "\r\n", heldAddr + "\u00a0", "\u3000" + heldAddr,
	"victim@example\u3002com", "victim@EXAMPLE\u3002com"}

// notAddrs are not plain addresses; most would read as heldAddr to someone.
var notAddrs = []string{heldAddr + "\u200b", "Victim <" + heldAddr + ">", "victim @example.com", "\uff56ictim@example.com",
	heldAddr + "," + heldAddr, `"victim"@example.com`, "victim@example.com\u202e", "victim@[127.0.0.1]", "victim@example.com\x01"}

// emailsAnAddressIsTrimmedAndPlain: whichever way a second user asserts
// heldAddr with whitespace around it (a first sign-in, a known identity's
// change, a connect, an account update), it gets heldAddr unverified, as
// for heldAddr itself; an assertion that is not a plain address records no
// address, verified or not, and takes away the one the account vouched for.
func emailsAnAddressIsTrimmedAndPlain(t *testing.T, o opener) {
	ctx := context.Background()
	trusted := trusting("google")
	paths := []struct {
		name string
		// withdraws: the second account vouched for mallory@evil.example
		// before it asserted email, and no longer does.
		withdraws bool
		second    func(e *env, email string) store.SignInResult
	}{
		{"a first sign-in", false, func(e *env, email string) store.SignInResult {
			return e.signIn(store.SignIn{Account: accountAt("shady", "m", email, true)})
		}},
		{"a known identity's change", true, func(e *env, email string) store.SignInResult {
			e.signIn(store.SignIn{Account: accountAt("shady", "m", "mallory@evil.example", true), LinkByEmail: trusted})
			return e.signIn(store.SignIn{Account: accountAt("shady", "m", email, true), LinkByEmail: trusted})
		}},
		{"a connect", false, func(e *env, email string) store.SignInResult {
			m := e.signIn(store.SignIn{Account: accountAt("dev", "m", "mallory@evil.example", true)})
			return e.signIn(store.SignIn{Account: accountAt("shady", "m", email, true), LinkToUser: m.User.ID})
		}},
		{"an account update", true, func(e *env, email string) store.SignInResult {
			m := e.signIn(store.SignIn{Account: accountAt("shady", "m", "mallory@evil.example", true)})
			if _, err := e.st.UpdateExternalAccount(ctx, m.Account.ID, func(a *store.ExternalAccount) error {
				a.Email, a.EmailVerified = email, true
				return nil
			}); err != nil {
				e.t.Fatal(err)
			}
			m.Account, _ = e.st.ExternalAccount(ctx, m.Account.ID)
			return m
		}},
	}
	for _, p := range paths {
		for _, email := range append(append([]string{}, spacedAddrs...), notAddrs...) {
			t.Run(p.name+"/"+email, func(t *testing.T) {
				e := o.env(t)
				// Trusted on both sides, the holder is never taken over nor
				// joined: the second identity must not link to it either.
				holder := e.signIn(store.SignIn{Account: accountAt("google", "owner", heldAddr, true), LinkByEmail: trusting("google")}).User.ID
				res := p.second(e, email)
				if res.User.ID == holder {
					t.Fatalf("%q linked the second identity to the holder", email)
				}
				u := e.view(res.User.ID).User
				if got := u.PrimaryEmail(); got != "" && (p.withdraws || got != "mallory@evil.example") {
					t.Errorf("the second user's primary address is %q", got)
				}
				spaced := slices.Contains(spacedAddrs, email)
				for _, a := range u.Emails {
					if a.Email == heldAddr && spaced && !a.Verified {
						continue // the held address, unverified: as for heldAddr itself
					}
					if a.Email != "mallory@evil.example" {
						t.Errorf("the second user has %q (verified %v), want it %s", a.Email, a.Verified, map[bool]string{true: "as " + heldAddr + " unverified", false: "absent"}[spaced])
					}
				}
				acc, err := e.st.ExternalAccount(ctx, res.Account.ID)
				if want := map[bool]string{true: heldAddr}[spaced]; err != nil || acc.Email != want || (acc.EmailVerified && !spaced) {
					t.Errorf("the account's email is %q (verified %v, err %v), want %q", acc.Email, acc.EmailVerified, err, want)
				}
				if s := e.sessionCarrying(res.User.ID, email); s.VerifiedEmail() != "" {
					t.Errorf("a session of the second user carries %q", s.VerifiedEmail())
				}
				e.standsFor(heldAddr, holder, holder, res.User.ID)
				e.checkClean()
			})
		}
	}
}

// emailsASpacedAddressIsTheAddress: an address with whitespace around it,
// free, is the address itself: held, verified, stored and linked to
// without the whitespace. The backend API trims it too, and refuses
// anything that is not a plain address.
func emailsASpacedAddressIsTheAddress(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	u := e.signIn(store.SignIn{Account: accountAt("google", "ann", " Ann@Example.com\u00a0", true)}).User
	if got := e.view(u.ID).User.PrimaryEmail(); got != "Ann@Example.com" {
		t.Errorf("primary address %q, want Ann@Example.com", got)
	}
	if got := e.linksTo("ann@example.com"); got != u.ID {
		t.Errorf("ann@example.com links to %s, want %s", got, u.ID)
	}
	created := store.User{Emails: emails(" bob@example.com ")}
	if err := e.st.CreateUser(ctx, &created); err != nil || created.PrimaryEmail() != "bob@example.com" {
		t.Errorf("CreateUser(\" bob@example.com \") = %q, %v", created.PrimaryEmail(), err)
	}
	if err := e.st.CreateUser(ctx, &store.User{Emails: emails("ann@example.com ")}); !errors.Is(err, store.ErrExists) {
		t.Errorf("CreateUser with Ann's address spaced = %v, want it taken", err)
	}
	for _, bad := range notAddrs {
		var fe *store.FieldError
		if err := e.st.CreateUser(ctx, &store.User{Emails: emails(bad)}); !errors.Is(err, store.ErrInvalidUser) || !errors.As(err, &fe) || fe.Field != "email_address" {
			t.Errorf("CreateUser(%q) = %v, want ErrInvalidUser on email_address", bad, err)
		}
	}
	e.checkClean()
}

// emailsImportCleansAddresses: a record from before the rule (a backup)
// comes in under it: a spaced address is the address (unverified here, as
// another user holds it), one that is not an address is left out, and the
// sessions carrying either are not written.
func emailsImportCleansAddresses(t *testing.T, o opener) {
	e := o.env(t)
	im, ok := e.st.(importer)
	if !ok {
		t.Skip("the store does not import")
	}
	holder := e.signIn(store.SignIn{Account: accountAt("google", "owner", heldAddr, true)}).User.ID
	now := e.clk.Now().Round(0)
	u := &store.User{ID: store.NewID("user"), CreatedAt: now, UpdatedAt: now}
	acc := &store.ExternalAccount{ID: store.NewID("eac"), UserID: u.ID, Provider: "shady", Issuer: testIssuer + "/shady", Subject: "m",
		Email: " " + heldAddr, EmailVerified: true, Status: store.StatusVerified, CreatedAt: now, UpdatedAt: now}
	u.Emails = []store.EmailAddress{{Email: " " + heldAddr, Verified: true, VerifiedBy: []string{acc.ID}},
		{Email: "Victim <" + heldAddr + ">", Verified: true, VerifiedBy: []string{acc.ID}}}
	carrying := &store.Session{ID: store.NewID("sess"), UserID: u.ID, Email: " " + heldAddr, EmailVerified: true, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if _, err := im.Import(context.Background(), store.Record{User: u, Accounts: []*store.ExternalAccount{acc}, Sessions: []*store.Session{carrying}}); err != nil {
		t.Fatal(err)
	}
	got := e.view(u.ID).User
	if len(got.Emails) != 1 || got.Emails[0].Email != heldAddr || got.Emails[0].Verified {
		t.Errorf("imported addresses %+v, want %s unverified only", got.Emails, heldAddr)
	}
	e.standsFor(heldAddr, holder, holder, u.ID)
	if e.live(carrying.ID) {
		t.Error("the imported session carrying the spaced address was written")
	}
	e.checkClean()
}
