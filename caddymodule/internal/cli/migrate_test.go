package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
	"github.com/socialgate/socialgate/internal/testkit"
)

const migrateTestSecret = "migrate-test-secret-0123456789abcdef"

// seedBadger creates a Badger store in dir with users, linked accounts
// (tokens, scopes, verified and unverified addresses), sessions and
// redirect URLs, and closes it.
func seedBadger(t *testing.T, dir string) {
	t.Helper()
	keys, err := keyring.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := badger.Open(badger.Options{Dir: dir, EncryptionKey: keys.StoreKey})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	for i := range 5 {
		acc := store.ExternalAccount{
			Provider: "google", Issuer: "https://accounts.google.com", Subject: fmt.Sprintf("g-%d", i),
			Email: fmt.Sprintf("Person%d@Example.com", i), EmailVerified: i%2 == 0, Name: fmt.Sprintf("Person %d", i),
			ApprovedScopes: []string{"openid", "email", fmt.Sprintf("scope-%d", i)},
			Tokens: store.TokenSet{AccessToken: fmt.Sprintf("at-%d", i), RefreshToken: fmt.Sprintf("rt-%d", i),
				IDToken: fmt.Sprintf("idt-%d", i), TokenType: "Bearer", Expiry: base.Add(time.Hour + time.Duration(i)*time.Nanosecond)},
		}
		res, err := st.SignIn(ctx, store.SignIn{Account: acc, Now: base.Add(time.Duration(i) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 { // a second, linked account with its own tokens
			gh := store.ExternalAccount{Provider: "github", Issuer: "https://github.com", Subject: fmt.Sprintf("gh-%d", i),
				Email: fmt.Sprintf("person%d@example.com", i), EmailVerified: true, Username: fmt.Sprintf("p%d", i),
				ApprovedScopes: []string{"read:user", "repo"}, Tokens: store.TokenSet{AccessToken: fmt.Sprintf("gh-at-%d", i), TokenType: "bearer"}}
			if _, err := st.SignIn(ctx, store.SignIn{Account: gh, LinkToUser: res.User.ID, Now: base.Add(time.Hour + time.Duration(i)*time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CreateSession(ctx, &store.Session{UserID: res.User.ID, ExpiresAt: time.Now().Add(time.Hour), Email: acc.Email}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"com.example.app://callback", "https://app.example.com/native"} {
		if _, err := st.CreateRedirectURL(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if problems, err := st.Check(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("seeded store: %v %v", problems, err)
	}
}

// snapshot is everything a migration must carry, read through store.Store,
// as JSON: users (with accounts, tokens included) and redirect URLs.
func snapshot(t *testing.T, st store.Store) (snap string, users, sessions int) {
	t.Helper()
	ctx := context.Background()
	list, total, err := st.Users(ctx, store.UserQuery{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	store.SortForExport(list)
	type userWith struct {
		User     *store.User
		ByID     *store.User
		Accounts []*store.ExternalAccount
	}
	var out []userWith
	for _, u := range list {
		byID, err := st.User(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		accs, err := st.ExternalAccounts(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range accs {
			one, err := st.ExternalAccount(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if j1, j2 := mustJSON(t, a), mustJSON(t, one); j1 != j2 {
				t.Fatalf("account %s: listed %s, loaded %s", a.ID, j1, j2)
			}
		}
		if len(u.Emails) > 0 { // the email index answers too
			found, _, err := st.Users(ctx, store.UserQuery{Email: strings.ToUpper(u.Emails[0].Email)})
			if err != nil || !containsUser(found, u.ID) {
				t.Fatalf("user %s not found by email %s: %v", u.ID, u.Emails[0].Email, err)
			}
		}
		ss, err := st.Sessions(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		sessions += len(ss)
		out = append(out, userWith{User: u, ByID: byID, Accounts: accs})
	}
	rus, _, err := st.RedirectURLs(ctx, store.RedirectURLQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, map[string]any{"users": out, "total": total, "redirect_urls": rus}), total, sessions
}

func containsUser(users []*store.User, id string) bool {
	for _, u := range users {
		if u.ID == id {
			return true
		}
	}
	return false
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func openBadgerAt(t *testing.T, dir string) *badger.Store {
	t.Helper()
	keys, err := keyring.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := badger.Open(badger.Options{Dir: dir, EncryptionKey: keys.StoreKey})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func openPostgresAt(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	keys, err := keyring.FromSecret([]byte(migrateTestSecret))
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, EncryptionKey: keys.StoreKey})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// migrateCode runs storage-migrate's migration, without progress, and
// returns its exit code.
func migrateCode(ctx context.Context, opts migrateOptions, w *bytes.Buffer) (int, error) {
	err := migrateStorage(ctx, opts, w, &progress{w: w, now: time.Now})
	return exitCode(err), err
}

func runMigrate(t *testing.T, opts migrateOptions, wantCode int) string {
	t.Helper()
	var out bytes.Buffer
	code, err := migrateCode(context.Background(), opts, &out)
	if code != wantCode {
		t.Fatalf("storage-migrate %s -> %s: exit %d (%v), want %d\n%s", opts.From, opts.To, code, err, wantCode, out.String())
	}
	t.Logf("storage-migrate %s -> %s: exit %d %v\n%s", opts.From, opts.To, code, err, out.String())
	return out.String()
}

func TestStorageMigrate_BadgerToPostgresAndBack(t *testing.T) {
	dsn := testkit.OwnPostgres(t)
	ctx := context.Background()

	src := t.TempDir()
	seedBadger(t, src)
	st := openBadgerAt(t, src)
	want, total, sessions := snapshot(t, st)
	if total != 5 || sessions != 5 || !strings.Contains(want, "rt-3") || !strings.Contains(want, "gh-at-1") {
		t.Fatalf("seeded snapshot is not what the test meant:\n%s", want)
	}
	// The Badger side in use: refused, nothing done.
	var out bytes.Buffer
	code, err := migrateCode(ctx, migrateOptions{From: "badger:" + src, To: "postgres", DSN: dsn, Secret: migrateTestSecret}, &out)
	if code != ExitFailed || !errors.Is(err, ops.ErrStoreInUse) {
		t.Fatalf("migrating from a store in use: exit %d, %v", code, err)
	}
	st.Close()

	toPG := migrateOptions{From: "badger:" + src, To: "postgres", DSN: dsn, Secret: migrateTestSecret}
	out1 := runMigrate(t, toPG, ExitOK)
	if !strings.Contains(out1, "users:           5 migrated, 0 skipped") || !strings.Contains(out1, "accounts:        7 migrated") ||
		!strings.Contains(out1, "redirect URLs:   2 migrated") || !strings.Contains(out1, "5 live sessions left behind") {
		t.Fatalf("first run counts:\n%s", out1)
	}
	out2 := runMigrate(t, toPG, ExitOK) // idempotent
	if !strings.Contains(out2, "users:           0 migrated, 5 skipped") || !strings.Contains(out2, "redirect URLs:   0 migrated, 2 skipped") {
		t.Fatalf("second run counts:\n%s", out2)
	}

	pg := openPostgresAt(t, dsn)
	got, _, sessions := snapshot(t, pg)
	if got != want || sessions != 0 {
		t.Fatalf("PostgreSQL after migration (%d sessions, want none):\n%s\nwant:\n%s", sessions, got, want)
	}
	if problems, err := pg.Check(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("PostgreSQL Check: %v %v", problems, err)
	}
	pg.Close()

	// And back, into a new Badger directory.
	back := filepath.Join(t.TempDir(), "back")
	toBadger := migrateOptions{From: "postgres", To: "badger:" + back, DSN: dsn, Secret: migrateTestSecret}
	out3 := runMigrate(t, toBadger, ExitOK)
	if !strings.Contains(out3, "users:           5 migrated") || !strings.Contains(out3, "accounts:        7 migrated") {
		t.Fatalf("reverse run counts:\n%s", out3)
	}
	out4 := runMigrate(t, toBadger, ExitOK)
	if !strings.Contains(out4, "users:           0 migrated, 5 skipped") {
		t.Fatalf("second reverse run counts:\n%s", out4)
	}
	bk := openBadgerAt(t, back)
	defer bk.Close()
	got, _, sessions = snapshot(t, bk)
	if got != want || sessions != 0 {
		t.Fatalf("Badger after the round trip (%d sessions, want none):\n%s\nwant:\n%s", sessions, got, want)
	}
	if problems, err := bk.Check(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("Badger Check after the round trip: %v %v", problems, err)
	}
	// A migrated identity signs in to its user, with its refresh token kept.
	users, _, err := bk.Users(ctx, store.UserQuery{Email: "person1@example.com"})
	if err != nil || len(users) != 1 {
		t.Fatalf("user of person1: %v %v", users, err)
	}
	res, err := bk.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "google", Issuer: "https://accounts.google.com", Subject: "g-1",
		Tokens: store.TokenSet{AccessToken: "new"}}})
	if err != nil || res.UserCreated || res.User.ID != users[0].ID || res.Account.Tokens.RefreshToken != "rt-1" {
		t.Fatalf("signing in with a migrated identity: %+v %v", res, err)
	}
}

func TestStorageMigrate_Arguments(t *testing.T) {
	ctx := context.Background()
	for _, o := range []migrateOptions{
		{From: "badger:/x", To: "badger:/y", DSN: "postgres://h/db", Secret: migrateTestSecret},
		{From: "mysql", To: "postgres", DSN: "postgres://h/db", Secret: migrateTestSecret},
		{From: "badger:/x", To: "postgres", Secret: migrateTestSecret},
		{From: "badger:/x", To: "postgres", DSN: "postgres://h/db", Secret: "short"},
		{From: "badger:" + t.TempDir(), To: "postgres", DSN: "postgres://h/db", Secret: migrateTestSecret}, // no store there
	} {
		var out bytes.Buffer
		if code, err := migrateCode(ctx, o, &out); code != ExitFailed || err == nil {
			t.Errorf("%+v: exit %d, %v; want 2 with an error", o, code, err)
		}
	}
}
