package badger

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"testing"
	"time"
)

// TestExportImport_Badger copies one store into another through
// Export/Import: ids, timestamps, tokens and live sessions arrive as they
// were, a second import skips everything, conflicts are refused whole, and
// both stores pass Check.
func TestExportImport_Badger(t *testing.T) {
	ctx := context.Background()
	src, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	now := time.Now().Round(0) // no monotonic reading: records compare as stored
	res, err := src.SignIn(ctx, store.SignIn{Now: now, Account: store.ExternalAccount{Provider: "p", Issuer: "https://iss", Subject: "s1",
		Email: "A@example.com", EmailVerified: true, ApprovedScopes: []string{"openid", "x"},
		Tokens: store.TokenSet{AccessToken: "at", RefreshToken: "rt", IDToken: "it", TokenType: "Bearer", Expiry: now.Add(time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{UserID: res.User.ID, ExpiresAt: now.Add(time.Hour), Email: "A@example.com"}
	if err := src.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	ru, err := src.CreateRedirectURL(ctx, "app://cb")
	if err != nil {
		t.Fatal(err)
	}
	var recs []store.Record
	if err := src.Export(ctx, func(r store.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].User == nil || len(recs[0].Accounts) != 1 || len(recs[0].Sessions) != 1 || recs[1].RedirectURL == nil {
		t.Fatalf("export: %+v", recs)
	}

	dst, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	for round := range 2 {
		for _, r := range recs {
			got, err := dst.Import(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if got.Imported != (round == 0) {
				t.Fatalf("round %d: %+v", round, got)
			}
		}
	}
	acc, err := dst.ExternalAccount(ctx, res.Account.ID)
	if j1, j2 := asJSON(t, acc), asJSON(t, res.Account); err != nil || j1 != j2 || acc.Tokens.RefreshToken != "rt" {
		t.Fatalf("imported account %+v, %v; want %+v", acc, err, res.Account)
	}
	got, err := dst.Session(ctx, sess.ID)
	if err != nil || got.UserID != res.User.ID {
		t.Fatalf("imported session: %+v %v", got, err)
	}
	if r, err := dst.RedirectURL(ctx, ru.ID); err != nil || r.URL != ru.URL {
		t.Fatalf("imported redirect URL: %+v %v", r, err)
	}
	// The identity links to the imported user.
	again, err := dst.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "p", Issuer: "https://iss", Subject: "s1", Tokens: store.TokenSet{AccessToken: "at2"}}})
	if err != nil || again.UserCreated || again.User.ID != res.User.ID || again.Account.Tokens.RefreshToken != "rt" {
		t.Fatalf("sign-in after import: %+v %v", again, err)
	}
	if users, total, err := dst.Users(ctx, store.UserQuery{Email: "a@EXAMPLE.com"}); err != nil || total != 1 || users[0].ID != res.User.ID {
		t.Fatalf("by email: %v %d %v", users, total, err)
	}

	// A different user with the same identity, or a URL under another id: refused whole.
	clash := recs[0]
	clash.User = &store.User{ID: store.NewID("user"), CreatedAt: now}
	a := *clash.Accounts[0]
	a.ID, a.UserID = store.NewID("eac"), clash.User.ID
	clash.Accounts = []*store.ExternalAccount{&a}
	clash.Sessions = nil
	if _, err := dst.Import(ctx, clash); !errors.Is(err, store.ErrImportConflict) {
		t.Fatalf("identity clash: %v", err)
	}
	if _, err := dst.User(ctx, clash.User.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the clashing user was written: %v", err)
	}
	if _, err := dst.Import(ctx, store.Record{RedirectURL: &store.RedirectURL{ID: store.NewID("ru"), URL: "app://cb", CreatedAt: now}}); !errors.Is(err, store.ErrImportConflict) {
		t.Fatalf("URL clash: %v", err)
	}
	for _, st := range []*Store{src, dst} {
		if problems, err := st.Check(ctx); err != nil || len(problems) > 0 {
			t.Fatalf("Check: %v %v", problems, err)
		}
	}
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
