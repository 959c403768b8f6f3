package ops_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/internal/testkit"
)

// seedDir makes a Badger store in a new directory with one user, two
// accounts, a session and a redirect URL, and closes it.
func seedDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "socialgate")
	o, err := ops.Open(context.Background(), ops.Location{Dir: dir, Create: true, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	res, err := o.Store.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "dev", Issuer: "https://dev.example",
		Subject: "ada", Email: "ada@example.com", EmailVerified: true, Tokens: store.TokenSet{AccessToken: "at", RefreshToken: "rt"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Store.SignIn(ctx, store.SignIn{LinkToUser: res.User.ID, Account: store.ExternalAccount{Provider: "corp",
		Issuer: "https://corp.example", Subject: "ada"}}); err != nil {
		t.Fatal(err)
	}
	if err := o.Store.CreateSession(ctx, &store.Session{UserID: res.User.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Store.CreateRedirectURL(ctx, "myapp://cb"); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOpen_Badger(t *testing.T) {
	ctx := context.Background()
	empty := filepath.Join(t.TempDir(), "none")
	if _, err := ops.Open(ctx, ops.Location{Dir: empty}); !errors.Is(err, ops.ErrNoStore) {
		t.Errorf("a directory without a store: %v, want ErrNoStore", err)
	}
	if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("opening without Create made %s", empty)
	}
	dir := seedDir(t)
	o, err := ops.Open(ctx, ops.Location{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Dir != dir || o.Name != "Badger store "+dir || o.Keys == nil {
		t.Errorf("opened %+v", o)
	}
	if _, err := ops.Open(ctx, ops.Location{Dir: dir}); !errors.Is(err, ops.ErrStoreInUse) {
		t.Errorf("a store held by another opener: %v, want ErrStoreInUse", err)
	}
}

func TestCheck_CountsUsersAndReportsViolations(t *testing.T) {
	f := newFixture(t)
	report, err := f.svc.Check(context.Background())
	if err != nil || report.Users != 2 || len(report.Violations) != 0 {
		t.Errorf("Check = %+v, %v", report, err)
	}
	if _, err := ops.New(ops.Options{Store: storeWithout{f.st}}).Check(context.Background()); !errors.Is(err, ops.ErrUnsupported) {
		t.Errorf("a store without a check: %v", err)
	}
}

// storeWithout hides the Badger store's extra methods (Check, Backup,
// Export, Import).
type storeWithout struct{ store.Store }

func TestBackupAndRestore_RoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := seedDir(t)
	o, err := ops.Open(ctx, ops.Location{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var backup bytes.Buffer
	if err := ops.New(ops.Options{Store: o.Store}).Backup(ctx, &backup); err != nil {
		t.Fatal(err)
	}
	o.Close()
	if err := ops.New(ops.Options{Store: storeWithout{}}).Backup(ctx, &bytes.Buffer{}); !errors.Is(err, ops.ErrUnsupported) {
		t.Errorf("backup of a store that cannot: %v", err)
	}

	withKeys := func(t *testing.T) string {
		to := filepath.Join(t.TempDir(), "restored")
		if err := os.MkdirAll(to, 0o700); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, keyring.FileName))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, keyring.FileName), b, 0o600); err != nil {
			t.Fatal(err)
		}
		return to
	}
	for _, tc := range []struct {
		name    string
		dir     func(t *testing.T) string
		input   []byte
		wantErr string // "" restores
	}{
		{"into a directory with the keys", withKeys, backup.Bytes(), ""},
		{"no such directory", func(t *testing.T) string { return filepath.Join(t.TempDir(), "none") }, backup.Bytes(), "create it and copy"},
		{"no keys", func(t *testing.T) string { return t.TempDir() }, backup.Bytes(), "keys.json is missing"},
		{"over a store", func(*testing.T) string { return dir }, backup.Bytes(), "is not empty"},
		{"not a backup", withKeys, []byte("not a backup at all, just text"), "remove everything but keys.json"},
		{"truncated", withKeys, backup.Bytes()[:backup.Len()/2], "remove everything but keys.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			report, err := ops.Restore(ctx, tc.dir(t), bytes.NewReader(tc.input))
			if tc.wantErr == "" {
				if err != nil || report.Users != 1 || len(report.Violations) != 0 {
					t.Fatalf("Restore = %+v, %v", report, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Restore = %v, want an error saying %q", err, tc.wantErr)
			}
		})
	}
}

func TestMigrate_CopiesUsersAndRedirectURLsOnceAndLeavesSessions(t *testing.T) {
	ctx := context.Background()
	src, err := ops.Open(ctx, ops.Location{Dir: seedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := ops.Open(ctx, ops.Location{Dir: filepath.Join(t.TempDir(), "new"), Create: true, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	var seen int
	first, err := ops.Migrate(ctx, src.Store, dst.Store, func(ops.MigrateCounts) { seen++ })
	want := ops.MigrateCounts{Users: 1, Accounts: 2, RedirectURLs: 1, SessionsLeft: 1}
	if err != nil || !equalCounts(first, want) || seen != 2 {
		t.Fatalf("first run: %+v, %v (%d progress calls), want %+v", first, err, seen, want)
	}
	again, err := ops.Migrate(ctx, src.Store, dst.Store, nil)
	want = ops.MigrateCounts{UsersSkipped: 1, AccountsSkipped: 2, RedirectURLsSkipped: 1, SessionsLeft: 1}
	if err != nil || !equalCounts(again, want) {
		t.Fatalf("second run: %+v, %v, want %+v", again, err, want)
	}
	report, err := ops.New(ops.Options{Store: dst.Store}).Check(ctx)
	if err != nil || report.Users != 1 || len(report.Violations) != 0 {
		t.Errorf("target after migration: %+v, %v", report, err)
	}
	if _, err := ops.Migrate(ctx, storeWithout{src.Store}, dst.Store, nil); !errors.Is(err, ops.ErrUnsupported) {
		t.Errorf("a store without export: %v", err)
	}
}

func equalCounts(a, b ops.MigrateCounts) bool {
	return len(a.Conflicts) == len(b.Conflicts) && a.Users == b.Users && a.UsersSkipped == b.UsersSkipped &&
		a.Accounts == b.Accounts && a.AccountsSkipped == b.AccountsSkipped && a.RedirectURLs == b.RedirectURLs &&
		a.RedirectURLsSkipped == b.RedirectURLsSkipped && a.SessionsLeft == b.SessionsLeft
}

func TestRotateIdentityKey(t *testing.T) {
	ctx := context.Background()
	o, err := ops.Open(ctx, ops.Location{Dir: seedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	keys, err := ops.NewKeys(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	svc := ops.New(ops.Options{Store: o.Store, Keys: keys})
	before := keys.Set().Keys()[0]

	// Stopped: the file changes, nothing is published.
	offline, err := svc.RotateIdentityKey(ctx)
	if err != nil || offline.Published || offline.NewKey == "" {
		t.Fatalf("offline rotation: %+v, %v", offline, err)
	}
	if err := keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if ks := keys.Set().Keys(); len(ks) != 2 || !ks[0].Published.IsZero() || !ks[1].Private.Equal(before.Private) {
		t.Fatalf("after an offline rotation the keys are %+v", ks)
	}

	// Serving: published at once, signing after the delay.
	if err := keys.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	online, err := svc.RotateIdentityKey(ctx)
	newest := keys.Set().Keys()[0]
	if err != nil || !online.Published || newest.Published.IsZero() || online.Keys != 3 ||
		!online.SignsFrom.Equal(newest.Published.Add(keys.Set().Delay())) || online.Signing == online.NewKey {
		t.Fatalf("online rotation: %+v, %v (newest published %v)", online, err, newest.Published)
	}
	if _, err := ops.New(ops.Options{Store: o.Store}).RotateIdentityKey(ctx); !errors.Is(err, ops.ErrUnsupported) {
		t.Errorf("a service without keys: %v", err)
	}
}

// On PostgreSQL the opener names the database without its password, a
// wrong secret is ErrWrongSecret, identity keys derive from the secret, and
// a secret rotation waits for a gateway to run with the new secret first.
func TestPostgres_OpenAndRotateSecret(t *testing.T) {
	dsn := testkit.OwnPostgres(t)
	ctx := context.Background()
	old, fresh := []byte("the-old-secret-of-the-ops-test-0123456"), []byte("the-new-secret-of-the-ops-test-6543210")
	o, err := ops.Open(ctx, ops.Location{DSN: dsn, Secrets: [][]byte{old}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(o.Name, "PostgreSQL database ") || o.Dir != "" {
		t.Errorf("named %q", o.Name)
	}
	if pw := passwordOf(dsn); pw != "" && strings.Contains(o.Name, pw) {
		t.Errorf("the name shows the password: %q", o.Name)
	}
	pgKeys, err := ops.NewKeys(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ops.New(ops.Options{Store: o.Store, Keys: pgKeys}).RotateIdentityKey(ctx); !errors.Is(err, ops.ErrUnsupported) ||
		!strings.Contains(err.Error(), "derive from its secret") {
		t.Errorf("an identity-key rotation on PostgreSQL: %v", err)
	}
	o.Close()
	if _, err := ops.Open(ctx, ops.Location{DSN: dsn, Secrets: [][]byte{fresh}}); !errors.Is(err, ops.ErrWrongSecret) ||
		!strings.Contains(err.Error(), "secret <new> <old>") {
		t.Errorf("a changed secret alone: %v", err)
	}

	rotated, err := ops.Open(ctx, ops.Location{DSN: dsn, Secrets: [][]byte{fresh, old}})
	if err != nil {
		t.Fatal(err)
	}
	defer rotated.Close()
	if _, err := ops.RotateSecret(ctx, rotated); !errors.Is(err, ops.ErrSecretNotInUse) {
		t.Fatalf("before any gateway ran with the new secret: %v", err)
	}
	keys, err := ops.NewKeys(ctx, rotated)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.Publish(ctx); err != nil { // what a starting gateway does
		t.Fatal(err)
	}
	r, err := ops.RotateSecret(ctx, rotated)
	if err != nil || !r.Done || r.InUse.IsZero() || r.TokensUntil.IsZero() || r.RemovableAfter.Before(r.TokensUntil) {
		t.Fatalf("RotateSecret = %+v, %v", r, err)
	}
	reopened, err := ops.Open(ctx, ops.Location{DSN: dsn, Secrets: [][]byte{fresh}})
	if err != nil {
		t.Fatalf("the new secret alone after the rotation: %v", err)
	}
	reopened.Close()
}

func passwordOf(dsn string) string {
	_, rest, ok := strings.Cut(dsn, "password=")
	if !ok {
		return ""
	}
	pw, _, _ := strings.Cut(rest, " ")
	return pw
}
