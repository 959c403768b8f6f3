package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// The tests of this file hold the rules on which the Badger and PostgreSQL
// stores once disagreed, before both took them from store.Rules: each
// failed on one of the two.

// signInRefusesNULInTheSubject: a subject with a NUL is no identity on any
// store (PostgreSQL's text cannot hold it); the sign-in fails and writes
// nothing.
func signInRefusesNULInTheSubject(t *testing.T, o opener) {
	e := o.env(t)
	before := e.snapshot()
	acc := account("a\x00b", "nul@example.com", true)
	if _, err := e.st.SignIn(context.Background(), store.SignIn{Account: acc}); err == nil {
		t.Fatal("SignIn with a NUL in the subject succeeded")
	}
	if after := e.snapshot(); after != before {
		t.Errorf("a refused sign-in changed the store:\n%s", after)
	}
}

// signInRefusesAnAddressWithANUL: a provider asserting an email with a
// NUL is refused with a clear error on every store, writing nothing,
// rather than failing in the database on one and keeping an address no one
// can have on the other.
func signInRefusesAnAddressWithANUL(t *testing.T, o opener) {
	e := o.env(t)
	before := e.snapshot()
	acc := account("nul", "a\x00b@example.com", true)
	if _, err := e.st.SignIn(context.Background(), store.SignIn{Account: acc}); err == nil {
		t.Error("SignIn with an address with a NUL succeeded")
	}
	if after := e.snapshot(); after != before {
		t.Errorf("a refused sign-in changed the store:\n%s", after)
	}
	// An account whose provider later reports such an address keeps the
	// one it had.
	res := e.signIn(store.SignIn{Account: account("ok", "ok@example.com", true)})
	_, err := e.st.UpdateExternalAccount(context.Background(), res.Account.ID, func(a *store.ExternalAccount) error {
		a.Email = "x\x00@example.com"
		return nil
	})
	if err == nil {
		t.Error("UpdateExternalAccount to an address with a NUL succeeded")
	}
	if got, _ := e.st.ExternalAccount(context.Background(), res.Account.ID); got == nil || got.Email != "ok@example.com" {
		t.Errorf("the account's email is %+v, want ok@example.com kept", got)
	}
	e.checkClean()
}

// createUserRefusesAnAddressWithANUL: the backend API cannot
// create a user with such an address either: ErrInvalidUser naming the
// field, nothing written.
func createUserRefusesAnAddressWithANUL(t *testing.T, o opener) {
	e := o.env(t)
	before := e.snapshot()
	u := store.User{Emails: emails("ok@example.com", "a\x00b@example.com")}
	err := e.st.CreateUser(context.Background(), &u)
	var fe *store.FieldError
	if !errors.Is(err, store.ErrInvalidUser) || !errors.As(err, &fe) || fe.Field != "email_address" {
		t.Fatalf("CreateUser = %v, want ErrInvalidUser on email_address", err)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("a refused creation changed the store:\n%s", after)
	}
}

// importRefusesATakenSessionID: an imported session whose id is a live
// session of the target refuses the record whole; the live session stays
// its user's (never handed to the imported one).
func importRefusesATakenSessionID(t *testing.T, o opener) {
	e := o.env(t)
	im, ok := e.st.(importer)
	if !ok {
		t.Skip("the store does not import")
	}
	ctx := context.Background()
	owner := e.signIn(store.SignIn{Account: account("owner", "owner@example.com", true)}).User.ID
	taken := e.newSession(owner, time.Hour)
	before := e.snapshot()
	now := e.clk.Now().Round(0)
	u := &store.User{ID: store.NewID("user"), CreatedAt: now, UpdatedAt: now}
	s := &store.Session{ID: taken.ID, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if res, err := im.Import(ctx, store.Record{User: u, Sessions: []*store.Session{s}}); err == nil {
		t.Fatalf("Import of a taken session id = %+v, want an error", res)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("a refused import changed the store:\n%s", after)
	}
	if got := e.sessionRecord(taken.ID); got == nil || got.UserID != owner {
		t.Errorf("the session is %+v, want it still %s's", got, owner)
	}
	e.checkClean()
}

// importRefusesAnAddressWithANUL: an imported user or account with such an
// address is refused whole, on every store.
func importRefusesAnAddressWithANUL(t *testing.T, o opener) {
	e := o.env(t)
	im, ok := e.st.(importer)
	if !ok {
		t.Skip("the store does not import")
	}
	now := e.clk.Now().Round(0)
	u := &store.User{ID: store.NewID("user"), CreatedAt: now, UpdatedAt: now,
		Emails: []store.EmailAddress{{Email: "a\x00b@example.com"}}}
	if res, err := im.Import(context.Background(), store.Record{User: u}); err == nil {
		t.Errorf("Import of a user with an address with a NUL = %+v, want an error", res)
	}
	u.Emails = nil
	acc := &store.ExternalAccount{ID: store.NewID("eac"), UserID: u.ID, Provider: "p", Issuer: testIssuer, Subject: "s",
		Email: "a\x00b@example.com", Status: store.StatusVerified, CreatedAt: now, UpdatedAt: now}
	if res, err := im.Import(context.Background(), store.Record{User: u, Accounts: []*store.ExternalAccount{acc}}); err == nil {
		t.Errorf("Import of an account with an address with a NUL = %+v, want an error", res)
	}
	if users, _ := e.counts(); users != 0 {
		t.Errorf("%d users after refused imports, want 0", users)
	}
}
