package cli

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/socialgate/socialgate/caddymodule/internal/admin"
	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// at is the fixed time of the seeded records, so that outputs are stable.
var at = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

// world is a stopped Badger store with two users, Ada (a verified and an
// unverified account, one session) and, newer, Grace, in the commands'
// default storage directory.
type world struct {
	dir                                   string
	ada, grace, adaEAC, adaMore, graceEAC string
	adaSession                            string
	names                                 *strings.Replacer // ids and paths to their names in the golden files
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{dir: filepath.Join(t.TempDir(), "socialgate"), adaSession: "sess_golden0session0of0ada0000"}
	o, err := ops.Open(context.Background(), ops.Location{Dir: w.dir, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	signIn := func(user string, a store.ExternalAccount, when time.Time) store.SignInResult {
		t.Helper()
		a.Tokens = store.TokenSet{AccessToken: "tok-secret-material"}
		res, err := o.Store.SignIn(ctx, store.SignIn{LinkToUser: user, Account: a, Now: when})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	ada := signIn("", store.ExternalAccount{Provider: "dev", Issuer: "https://idp.example", Subject: "ada", Name: "Ada Lovelace",
		Email: "ada@example.com", EmailVerified: true, Status: store.StatusVerified}, at)
	w.ada, w.adaEAC = ada.User.ID, ada.Account.ID
	w.adaMore = signIn(w.ada, store.ExternalAccount{Provider: "github", Issuer: "https://github.com", Subject: "1234",
		Email: "ada@work.example", Status: store.StatusVerified}, at.Add(time.Minute)).Account.ID
	grace := signIn("", store.ExternalAccount{Provider: "dev", Issuer: "https://idp.example", Subject: "grace", Name: "Grace Hopper",
		Email: "grace@example.com", EmailVerified: true, Status: store.StatusVerified}, at.Add(time.Hour))
	w.grace, w.graceEAC = grace.User.ID, grace.Account.ID
	err = o.Store.CreateSession(ctx, &store.Session{ID: w.adaSession, UserID: w.ada, CreatedAt: at,
		ExpiresAt: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), IP: "192.0.2.1", UserAgent: "test\x1b[31m"})
	if err != nil {
		t.Fatal(err)
	}
	graceEmail := api.EmailAddressID(w.grace, "grace@example.com")
	w.names = strings.NewReplacer(w.ada, name(w.ada, "<ada>"), w.grace, name(w.grace, "<grace>"), w.adaEAC, name(w.adaEAC, "<ada-dev>"),
		w.adaMore, name(w.adaMore, "<ada-github>"), w.graceEAC, name(w.graceEAC, "<grace-dev>"),
		graceEmail, name(graceEmail, "<grace-email>"), w.dir, "<dir>")
	return w
}

// name is what an id stands as in the golden files: its name, as long as
// the id, so that tables keep their columns.
func name(id, n string) string { return n + strings.Repeat(".", max(len(id)-len(n), 0)) }

// result is what a command printed and how it exited.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the command args[0] with args[1:] as Caddy's CLI would, with
// the world's store as the default storage and the admin API (--admin) at
// adminURL.
func (w *world) run(t *testing.T, adminURL string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := -1
	env := &Env{DefaultStorage: w.dir, DefaultAdmin: "localhost:2019", Stdout: &stdout, Stderr: &stderr,
		Getenv: func(string) string { return "" }, Exit: func(c int) { code = c },
		Admin: func(addr string) admin.Doer {
			return func(ctx context.Context, method, uri string) (*http.Response, error) {
				if adminURL == "" {
					return nil, admin.ErrUnreachable
				}
				req, err := http.NewRequestWithContext(ctx, method, adminURL+uri, nil)
				if err != nil {
					return nil, err
				}
				return http.DefaultClient.Do(req)
			}
		}}
	root := &cobra.Command{Use: "socialgate", SilenceErrors: true, SilenceUsage: true}
	for _, c := range Commands {
		cmd := &cobra.Command{Use: c.Name + " " + c.Usage, Short: c.Short, Long: c.Long}
		c.Setup(cmd, env)
		root.AddCommand(cmd)
	}
	root.SetArgs(args)
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.Execute()
	if code == -1 {
		code = 0
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// serve runs the admin routes over the world's store, as a running gateway
// does, until the test ends.
func (w *world) serve(t *testing.T) string {
	t.Helper()
	o, err := ops.Open(context.Background(), ops.Location{Dir: w.dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	srv := httptest.NewServer(admin.NewHandler(func() []admin.Store {
		return []admin.Store{{Dir: o.Dir, Name: o.Name, Ops: ops.New(ops.Options{Store: o.Store})}}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// golden compares got with testdata/name.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// transcript is a command's run as a golden file shows it.
func (w *world) transcript(args []string, r result) string {
	return w.names.Replace("$ socialgate " + strings.Join(args, " ") + "\n" + r.stdout +
		"--- stderr\n" + r.stderr + "--- exit " + string(rune('0'+r.code)) + "\n")
}

// TestCommands_Golden runs the commands that show records, offline on the
// stopped store and online through the admin API: the same output, the
// same exit code, and each names the store it read.
func TestCommands_Golden(t *testing.T) {
	w := newWorld(t)
	cases := []struct {
		name string
		args func(w *world) []string
	}{
		{"users", func(*world) []string { return []string{"users"} }},
		{"users-page", func(*world) []string { return []string{"users", "--limit", "1", "--offset", "1"} }},
		{"user", func(w *world) []string { return []string{"user", w.ada} }},
		{"user-json", func(w *world) []string { return []string{"user", "--json", w.grace} }},
		{"user-unknown", func(*world) []string { return []string{"user", "user_nobody"} }},
		{"storage-check", func(*world) []string { return []string{"storage-check"} }},
		{"account-disconnect-unknown", func(w *world) []string { return []string{"account-disconnect", w.grace, w.adaEAC} }},
		{"session-revoke-unknown", func(*world) []string { return []string{"session-revoke", "sess_nobody"} }},
	}
	offline := map[string]result{}
	for _, tc := range cases {
		args := tc.args(w)
		r := w.run(t, "", args...)
		offline[tc.name] = r
		golden(t, tc.name, w.transcript(args, r))
	}
	url := w.serve(t)
	for _, tc := range cases {
		args := append(tc.args(w), "--admin", "gateway:2019")
		r := w.run(t, url, args...)
		want := offline[tc.name]
		if r.stdout != want.stdout || r.code != want.code {
			t.Errorf("%s online:\n%s\nwant what it prints offline:\n%s", tc.name, w.transcript(args, r), w.transcript(args, want))
		}
		if !strings.Contains(r.stderr, "store: Badger store "+w.dir+", through the running gateway's admin API at gateway:2019\n") {
			t.Errorf("%s online does not name the store it read:\n%s", tc.name, r.stderr)
		}
	}
}

// A gateway runs on PostgreSQL, full of users, while the default storage
// directory holds an empty Badger store: an explicit --admin asks the
// gateway, never the local store, and every run names the store it read.
func TestStorageCheck_AnExplicitAdminWinsOverALocalStore(t *testing.T) {
	dsn := testkit.OwnPostgres(t)
	ctx := context.Background()
	pg, err := ops.Open(ctx, ops.Location{DSN: dsn, Secrets: [][]byte{[]byte("the-secret-of-the-cli-test-0123456789")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	for _, who := range []string{"ada", "grace", "alan"} {
		if _, err := pg.Store.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "dev", Issuer: "https://idp.example", Subject: who}}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(admin.NewHandler(func() []admin.Store {
		return []admin.Store{{Name: pg.Name, Ops: ops.New(ops.Options{Store: pg.Store})}}
	}))
	t.Cleanup(srv.Close)
	w := &world{dir: filepath.Join(t.TempDir(), "socialgate")}
	empty, err := ops.Open(ctx, ops.Location{Dir: w.dir, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	empty.Close()

	r := w.run(t, srv.URL, "storage-check", "--admin", "localhost:2019")
	if r.code != 0 || r.stdout != "store is consistent: 3 users\n" ||
		r.stderr != "store: "+pg.Name+", through the running gateway's admin API at localhost:2019\n" {
		t.Errorf("with --admin: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := w.run(t, srv.URL, "users", "--admin", "localhost:2019"); !strings.Contains(r.stdout, "3 of 3 users") {
		t.Errorf("users with --admin:\n%s%s", r.stdout, r.stderr)
	}
	r = w.run(t, srv.URL, "storage-check")
	if r.code != 0 || r.stdout != "store is consistent: 0 users\n" ||
		r.stderr != "store: Badger store "+w.dir+", opened directly (no gateway holds it)\n" {
		t.Errorf("without --admin: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
