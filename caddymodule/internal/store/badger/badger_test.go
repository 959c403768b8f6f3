package badger

import (
	"bytes"
	"context"
	"errors"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// fakeClock is an injectable clock that starts at the real time, so Badger's
// own TTLs (real seconds) never fire before the clock says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// quietLogger drops everything; tests that care about logs don't use it.
type quietLogger struct{}

func (quietLogger) Errorf(string, ...any)   {}
func (quietLogger) Warningf(string, ...any) {}
func (quietLogger) Infof(string, ...any)    {}
func (quietLogger) Debugf(string, ...any)   {}

// openTest opens a store that is closed when the test ends.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger{}
	}
	b, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// eachBackend runs test against an in-memory and an on-disk store.
func eachBackend(t *testing.T, test func(t *testing.T, b *Store, clk *fakeClock)) {
	for _, name := range []string{"memory", "disk"} {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			opts := Options{InMemory: name == "memory", Now: clk.Now}
			if !opts.InMemory {
				opts.Dir = t.TempDir()
			}
			test(t, openTest(t, opts), clk)
		})
	}
}

// benchEachBackend runs bench against an in-memory and an on-disk store.
func benchEachBackend(b *testing.B, bench func(b *testing.B, st *Store)) {
	for _, name := range []string{"memory", "disk"} {
		b.Run(name, func(b *testing.B) {
			opts := Options{InMemory: name == "memory"}
			if !opts.InMemory {
				opts.Dir = b.TempDir()
			}
			bench(b, openTest(b, opts))
		})
	}
}

// dump returns every live key and value, raw.
func dump(t testing.TB, b *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := b.db.View(func(txn *badger.Txn) error {
		return scan(txn, "", false, func(key string, val []byte) error {
			out[key] = string(val)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	return out
}

// countPrefix counts live keys under prefix.
func countPrefix(t testing.TB, b *Store, prefix string) int {
	t.Helper()
	n := 0
	err := b.db.View(func(txn *badger.Txn) error {
		return scanKeys(txn, prefix, func(string) error { n++; return nil })
	})
	if err != nil {
		t.Fatalf("scan %s: %v", prefix, err)
	}
	return n
}

func TestOpen_RequiresDirUnlessInMemory(t *testing.T) {
	if _, err := Open(Options{}); err == nil {
		t.Fatal("Open without Dir succeeded")
	}
}

func TestOpen_RejectsBadEncryptionKeyLength(t *testing.T) {
	if b, err := Open(Options{Dir: t.TempDir(), EncryptionKey: []byte("short"), Logger: quietLogger{}}); err == nil {
		b.Close()
		t.Fatal("Open with a 5-byte key succeeded")
	}
}

func TestOpen_DataSurvivesCloseAndReopen(t *testing.T) {
	dir := t.TempDir()
	b := openTest(t, Options{Dir: dir})
	res, err := b.SignIn(context.Background(), store.SignIn{Account: account("alice", "alice@example.com", true)})
	if err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{UserID: res.User.ID, ExpiresAt: time.Now().Add(time.Hour)}
	if err := b.CreateSession(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openTest(t, Options{Dir: dir})
	again, err := b.SignIn(context.Background(), store.SignIn{Account: account("alice", "alice@example.com", true)})
	if err != nil {
		t.Fatal(err)
	}
	if again.UserCreated || again.AccountCreated || again.User.ID != res.User.ID {
		t.Errorf("after reopen: %+v, want the existing user %s", again, res.User.ID)
	}
	if _, err := b.Session(context.Background(), sess.ID); err != nil {
		t.Errorf("session after reopen: %v", err)
	}
	if problems, err := b.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Errorf("Check after reopen = %q, %v", problems, err)
	}
}

func TestOpen_EncryptionKeyHidesTokensAtRest(t *testing.T) {
	// No 4-byte run of it occurs elsewhere in the record, so Snappy keeps it
	// literal in the unencrypted case.
	const canary = "QZ7xK2vP9wL4mR8jHc3Yf6Tn"
	for _, tc := range []struct {
		name    string
		key     []byte
		visible bool
	}{
		{"without key the test can see the token", nil, true},
		{"with key no file holds the token", bytes.Repeat([]byte{7}, 32), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := openTest(t, Options{Dir: dir, EncryptionKey: tc.key})
			acc := account("bob", "bob@example.com", true)
			acc.Tokens.AccessToken = canary
			if _, err := b.SignIn(context.Background(), store.SignIn{Account: acc}); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			found := ""
			err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				raw, err := os.ReadFile(path)
				if bytes.Contains(raw, []byte(canary)) {
					found = path
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if visible := found != ""; visible != tc.visible {
				t.Errorf("token visible on disk = %v (%s), want %v", visible, found, tc.visible)
			}
			if tc.key == nil {
				return
			}
			// The same key opens it again; another key does not.
			b = openTest(t, Options{Dir: dir, EncryptionKey: tc.key})
			accs, err := b.ExternalAccounts(context.Background(), mustUserOf(t, b, acc))
			if err != nil || len(accs) != 1 || accs[0].Tokens.AccessToken != canary {
				t.Errorf("reading back with the key: %v, %v", accs, err)
			}
			b.Close()
			if b2, err := Open(Options{Dir: dir, EncryptionKey: bytes.Repeat([]byte{8}, 32), Logger: quietLogger{}}); err == nil {
				b2.Close()
				t.Error("Open with the wrong key succeeded")
			}
		})
	}
}

// mustUserOf returns the user that acc's identity is linked to.
func mustUserOf(t *testing.T, b *Store, acc store.ExternalAccount) string {
	t.Helper()
	var uid string
	err := b.db.View(func(txn *badger.Txn) error {
		eacID, err := getString(txn, identityKey(acc.Issuer, acc.Subject))
		if err != nil {
			return err
		}
		var a store.ExternalAccount
		err = getJSON(txn, eacKey(eacID), &a)
		uid = a.UserID
		return err
	})
	if err != nil {
		t.Fatalf("identity lookup: %v", err)
	}
	return uid
}

func TestClose_IsIdempotentAndStopsGC(t *testing.T) {
	before := runtime.NumGoroutine()
	b, err := Open(Options{Dir: t.TempDir(), Logger: quietLogger{}, gcInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.SignIn(context.Background(), store.SignIn{Account: account("carol", "", false)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let the GC loop run a few rounds
	select {
	case <-b.gcDone:
		t.Fatal("GC goroutine stopped before Close")
	default:
	}
	for range 3 {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	select {
	case <-b.gcDone:
	default:
		t.Fatal("GC goroutine still running after Close")
	}
	if _, err := b.User(context.Background(), "user_x"); !errors.Is(err, badger.ErrDBClosed) {
		t.Errorf("store.User after Close: %v, want ErrDBClosed", err)
	}
	// Badger's own goroutines wind down asynchronously; allow a little slack.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("goroutines: %d before Open, %d after Close", before, after)
	}
}

func TestDefaultLogger_KeepsOnlyWarningsAndErrors(t *testing.T) {
	var buf bytes.Buffer
	l := stderrLogger{log.New(&buf, "", 0)}
	l.Debugf("debug %d", 1)
	l.Infof("info %d", 2)
	l.Warningf("warning %d", 3)
	l.Errorf("error %d", 4)
	if got, want := buf.String(), "WARNING: warning 3\nERROR: error 4\n"; got != want {
		t.Errorf("logged %q, want %q", got, want)
	}
}
