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

// signInRefusesAnAddressWithAControlCharacter: a provider asserting an
// email with a NUL (or another control character) is refused with a clear
// error on every store, writing nothing, rather than failing in the
// database on one and keeping an address no one can have on the other.
func signInRefusesAnAddressWithAControlCharacter(t *testing.T, o opener) {
	e := o.env(t)
	before := e.snapshot()
	for _, email := range []string{"a\x00b@example.com", "a\nb@example.com"} {
		acc := account("ctl", email, true)
		if _, err := e.st.SignIn(context.Background(), store.SignIn{Account: acc}); err == nil {
			t.Errorf("SignIn with the address %q succeeded", email)
		}
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

// createUserRefusesAnAddressWithAControlCharacter: the backend API cannot
// create a user with such an address either: ErrInvalidUser naming the
// field, nothing written.
func createUserRefusesAnAddressWithAControlCharacter(t *testing.T, o opener) {
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
