package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/storetest"
	"github.com/socialgate/socialgate/internal/testkit"
)

// server is the PostgreSQL server of this test binary.
var server testkit.SharedPostgres

func TestMain(m *testing.M) {
	code := m.Run()
	if err := server.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping postgres:", err)
	}
	os.Exit(code)
}

// freshDSN returns a DSN of an empty schema of its own for t. Without a
// server the test is skipped, except in CI, where it fails: CI installs
// PostgreSQL, and a suite skipped there would pass unseen.
func freshDSN(t testing.TB) string {
	t.Helper()
	return server.DSN(t)
}

var testKey = bytes.Repeat([]byte{7}, 32)

// openDSN opens a store on dsn that is closed when t ends.
func openDSN(t testing.TB, dsn string, opts Options) *Store {
	t.Helper()
	opts.DSN = dsn
	if opts.EncryptionKey == nil {
		opts.EncryptionKey = testKey
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	freshDSN(t) // skip early without a server
	storetest.Run(t, func(t *testing.T) store.Store {
		return openDSN(t, freshDSN(t), Options{Now: storetest.Now(t)})
	})
}

// exec runs one statement on the store's database, bypassing the store.
func exec(t testing.TB, s *Store, sql string, args ...any) {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestOpen_RefusesBadOptions(t *testing.T) {
	dsn := freshDSN(t)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"no DSN", Options{EncryptionKey: testKey}},
		{"no key", Options{DSN: dsn}},
		{"short key", Options{DSN: dsn, EncryptionKey: []byte("short")}},
		{"one connection", Options{DSN: dsn, EncryptionKey: testKey, MaxConns: 1}},
		{"bad DSN", Options{DSN: "postgres://u:secret-pw@[::1", EncryptionKey: testKey}},
	} {
		s, err := Open(context.Background(), tc.opts)
		if err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", tc.name)
		} else if bytes.Contains([]byte(err.Error()), []byte("secret-pw")) {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
	}
}

func TestOpen_UnreachableServerFailsWithinTheConnectTimeout(t *testing.T) {
	start := time.Now()
	// 192.0.2.0/24 is TEST-NET-1: nothing answers there.
	_, err := Open(context.Background(), Options{DSN: "postgres://u@192.0.2.1:5432/db?sslmode=disable",
		EncryptionKey: testKey, ConnectTimeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("Open succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open took %v to fail", d)
	}
}

func TestOpen_GatewaysStartingTogetherMigrateOnce(t *testing.T) {
	dsn := freshDSN(t)
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			s, err := Open(context.Background(), Options{DSN: dsn, EncryptionKey: testKey})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	s := openDSN(t, dsn, Options{})
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var rows, newest int
	if err := s.pool.QueryRow(context.Background(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&rows, &newest); err != nil {
		t.Fatal(err)
	}
	if rows != len(ms) || newest != len(ms) {
		t.Errorf("schema_migrations has %d rows up to version %d, want %d", rows, newest, len(ms))
	}
}

func TestOpen_RefusesASchemaNewerThanItKnows(t *testing.T) {
	dsn := freshDSN(t)
	s := openDSN(t, dsn, Options{})
	exec(t, s, `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`)
	if s2, err := Open(context.Background(), Options{DSN: dsn, EncryptionKey: testKey}); err == nil {
		s2.Close()
		t.Fatal("Open succeeded on a schema from the future")
	}
}

func TestOpen_RefusesAnotherKey(t *testing.T) {
	dsn := freshDSN(t)
	openDSN(t, dsn, Options{}).Close()
	if s, err := Open(context.Background(), Options{DSN: dsn, EncryptionKey: bytes.Repeat([]byte{8}, 32)}); err == nil {
		s.Close()
		t.Fatal("Open with another key succeeded")
	}
	openDSN(t, dsn, Options{}) // the right key still opens it
}

func TestOpen_DataSurvivesCloseAndReopen(t *testing.T) {
	dsn := freshDSN(t)
	ctx := context.Background()
	s := openDSN(t, dsn, Options{})
	res, err := s.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "p", Issuer: "https://i.example", Subject: "a",
		Tokens: store.TokenSet{AccessToken: "at", RefreshToken: "rt"}}})
	if err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{UserID: res.User.ID, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openDSN(t, dsn, Options{})
	if a, err := s.ExternalAccount(ctx, res.Account.ID); err != nil || a.Tokens.AccessToken != "at" || a.Tokens.RefreshToken != "rt" {
		t.Errorf("account after reopen = %+v, %v", a, err)
	}
	if _, err := s.Session(ctx, sess.ID); err != nil {
		t.Errorf("session after reopen: %v", err)
	}
}

// TestSecrets_NeverReachTheDatabaseInPlaintext reads every column of every
// table as text and looks for the secrets the store was given.
func TestSecrets_NeverReachTheDatabaseInPlaintext(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{})
	ctx := context.Background()
	secrets := map[string]string{
		"access token": "AT-QZ7xK2vP9wL4", "refresh token": "RT-mR8jHc3Yf6Tn", "id token": "IDT-eyJhbGciOi",
		"session id": store.NewID("sess"), "flow state": "state-Hc3Yf6TnQZ7x", "ephemeral value": "verifier-9wL4mR8j",
	}
	res, err := s.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "p", Issuer: "https://i.example", Subject: "a",
		Tokens: store.TokenSet{AccessToken: secrets["access token"], RefreshToken: secrets["refresh token"], IDToken: secrets["id token"]}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, &store.Session{ID: secrets["session id"], UserID: res.User.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutEphemeral(ctx, "flow", secrets["flow state"], []byte(secrets["ephemeral value"]), time.Minute); err != nil {
		t.Fatal(err)
	}
	// Each row as text, bytea columns as hex and as raw bytes.
	var dump bytes.Buffer
	for _, table := range []string{"meta", "users", "user_emails", "external_accounts", "sessions", "ephemeral", "redirect_urls"} {
		rows, err := s.pool.Query(ctx, `SELECT t::text FROM `+table+` t`)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range texts {
			dump.WriteString(text + "\n")
		}
	}
	for what, secret := range secrets {
		if bytes.Contains(dump.Bytes(), []byte(secret)) || bytes.Contains(dump.Bytes(), []byte(fmt.Sprintf("%x", secret))) {
			t.Errorf("the database holds the %s in plaintext", what)
		}
	}
	if !bytes.Contains(dump.Bytes(), []byte(res.Account.ID)) {
		t.Fatal("the dump is missing the account: the test reads nothing")
	}
}

func TestTokens_MovedToAnotherRowDoNotOpen(t *testing.T) {
	s := openDSN(t, freshDSN(t), Options{})
	ctx := context.Background()
	var ids []string
	for _, sub := range []string{"a", "b"} {
		res, err := s.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "p", Issuer: "https://i.example", Subject: sub,
			Tokens: store.TokenSet{AccessToken: "at-" + sub}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Account.ID)
	}
	exec(t, s, `UPDATE external_accounts SET tokens = (SELECT tokens FROM external_accounts WHERE id = $1) WHERE id = $2`, ids[0], ids[1])
	if a, err := s.ExternalAccount(ctx, ids[1]); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("ExternalAccount with another row's tokens = %+v, %v; want an error", a, err)
	}
	problems, err := s.Check(ctx)
	if err != nil || !matchLines(problems, []string{"account " + ids[1] + ": tokens: a sealed value does not open"}) {
		t.Errorf("Check = %q, %v", problems, err)
	}
}

func TestCleanup_DeletesExpiredRowsUntilClose(t *testing.T) {
	clk := storetest.NewClock()
	s := openDSN(t, freshDSN(t), Options{Now: clk.Now, CleanupInterval: 10 * time.Millisecond})
	ctx := context.Background()
	res, err := s.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "p", Issuer: "https://i.example", Subject: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ttl := range []time.Duration{time.Minute, time.Hour} {
		if err := s.CreateSession(ctx, &store.Session{UserID: res.User.ID, ExpiresAt: clk.Now().Add(ttl)}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutEphemeral(ctx, "flow", fmt.Sprint(ttl), []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (sessions, ephemeral int) {
		t.Helper()
		err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM ephemeral)`).Scan(&sessions, &ephemeral)
		if err != nil {
			t.Fatal(err)
		}
		return sessions, ephemeral
	}
	clk.Advance(time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for {
		sessions, ephemeral := count()
		if sessions == 1 && ephemeral == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after expiry: %d sessions and %d ephemeral rows, want 1 and 1", sessions, ephemeral)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	default:
		t.Error("the cleanup goroutine is still running after Close")
	}
}
