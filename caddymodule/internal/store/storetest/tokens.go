package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// importer is implemented by stores that import exported records.
type importer interface {
	Import(ctx context.Context, rec store.Record) (store.ImportResult, error)
}

// tokensSignInWithoutAGrantKeepsTheHeldSet: a native app's sign-in with a
// bare ID token brings no access token; the account's grant stays whole, so
// the next token read serves it and Check finds nothing half-written.
func tokensSignInWithoutAGrantKeepsTheHeldSet(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	expiry := time.Now().Add(time.Hour).Round(0)
	web := account("nat", "nat@example.com", true)
	web.Tokens = store.TokenSet{AccessToken: "at-web", RefreshToken: "rt-web", IDToken: "idt-web", TokenType: "Bearer", Expiry: expiry}
	first := e.signIn(store.SignIn{Account: web})
	held := first.Account.Tokens

	for name, tokens := range map[string]store.TokenSet{
		"no tokens at all":       {},
		"only a native ID token": {IDToken: "idt-native"},
	} {
		native := account("nat", "nat@example.com", true)
		native.Tokens = tokens
		again := e.signIn(store.SignIn{Account: native})
		if again.Account.ID != first.Account.ID {
			t.Fatalf("%s: signed in to account %s, want %s", name, again.Account.ID, first.Account.ID)
		}
		got, err := e.st.ExternalAccount(ctx, first.Account.ID)
		if err != nil {
			t.Fatal(err)
		}
		if jsonOf(t, got.Tokens) != jsonOf(t, held) || jsonOf(t, again.Account.Tokens) != jsonOf(t, held) {
			t.Errorf("%s: tokens after the sign-in = %+v, want the held set %+v whole", name, got.Tokens, held)
		}
	}
	e.checkClean()

	// A sign-in with a new grant replaces the set; without a new refresh
	// token the held one stays (the provider did not rotate it).
	renewed := account("nat", "nat@example.com", true)
	renewed.Tokens = store.TokenSet{AccessToken: "at-2", TokenType: "Bearer", Expiry: expiry.Add(time.Hour)}
	got := e.signIn(store.SignIn{Account: renewed}).Account.Tokens
	if got.AccessToken != "at-2" || got.RefreshToken != "rt-web" || got.IDToken != "" || !got.Expiry.Equal(expiry.Add(time.Hour)) {
		t.Errorf("tokens after a new grant = %+v", got)
	}

	// A grant of another client (a native app's bundle id) replaces the set
	// whole: the held refresh token is the web client's and would not
	// refresh it. The client is kept with the set.
	app := account("nat", "nat@example.com", true)
	app.Tokens = store.TokenSet{AccessToken: "at-app", TokenType: "Bearer", ClientID: "com.example.ios"}
	e.signIn(store.SignIn{Account: app})
	if got, _ := e.st.ExternalAccount(ctx, first.Account.ID); got.Tokens != app.Tokens {
		t.Errorf("tokens after another client's grant = %+v, want %+v", got.Tokens, app.Tokens)
	}

	// A first sign-in without a grant holds an empty set, which is whole.
	bare := account("nel", "nel@example.com", true)
	bare.Tokens = store.TokenSet{}
	if got := e.signIn(store.SignIn{Account: bare}).Account.Tokens; got != (store.TokenSet{}) {
		t.Errorf("tokens of a first sign-in without a grant = %+v", got)
	}
	e.checkClean()
}

// tokensHalfWrittenSetsAreRefusedEverywhere: no write path stores a refresh
// token or an expiry without its access token; a refused write changes
// nothing.
func tokensHalfWrittenSetsAreRefusedEverywhere(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	half := []store.TokenSet{
		{RefreshToken: "rt-alone"},
		{Expiry: time.Now().Add(time.Hour)},
		{RefreshToken: "rt", IDToken: "idt", Expiry: time.Now().Add(time.Hour)},
	}
	for _, tokens := range half {
		a := account("hal", "hal@example.com", true)
		a.Tokens = tokens
		if _, err := e.st.SignIn(ctx, store.SignIn{Account: a}); err == nil {
			t.Errorf("SignIn with the token set %+v succeeded", tokens)
		}
	}
	if users, accs := e.counts(); users != 0 || accs != 0 {
		t.Fatalf("refused first sign-ins left %d users and %d accounts", users, accs)
	}

	res := e.signIn(store.SignIn{Account: account("hal", "hal@example.com", true)})
	before := e.snapshot()
	for _, tokens := range half {
		a := account("hal", "hal@example.com", true)
		a.Tokens = tokens
		a.Name = "Changed"
		if _, err := e.st.SignIn(ctx, store.SignIn{Account: a}); err == nil {
			t.Errorf("SignIn of a known identity with the token set %+v succeeded", tokens)
		}
		_, err := e.st.UpdateExternalAccount(ctx, res.Account.ID, func(a *store.ExternalAccount) error {
			a.Tokens = tokens
			a.Label = "changed"
			return nil
		})
		if err == nil {
			t.Errorf("UpdateExternalAccount to the token set %+v succeeded", tokens)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("refused writes changed the store:\n%s\nwant\n%s", after, before)
	}

	if im, ok := e.st.(importer); ok {
		now := time.Now().Round(0)
		u := &store.User{ID: store.NewID("user"), CreatedAt: now, UpdatedAt: now}
		acc := &store.ExternalAccount{ID: store.NewID("eac"), UserID: u.ID, Provider: "test", Issuer: testIssuer, Subject: "imported",
			Status: store.StatusVerified, Tokens: store.TokenSet{RefreshToken: "rt-alone"}, CreatedAt: now, UpdatedAt: now}
		if _, err := im.Import(ctx, store.Record{User: u, Accounts: []*store.ExternalAccount{acc}}); err == nil {
			t.Error("Import of an account with a half-written token set succeeded")
		}
		if after := e.snapshot(); after != before {
			t.Errorf("a refused import changed the store:\n%s", after)
		}
	}
	e.checkClean()
}
