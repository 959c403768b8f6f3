package caddymodule_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	badgerstore "github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/internal/testkit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testkit.RemoveBuilds()
	os.Exit(code)
}

// privateEnv gives a command its own HOME, so that Caddy's default
// directories are never the real ones.
func privateEnv(t *testing.T) []string {
	home := t.TempDir()
	return append(os.Environ(), "HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
}

// result is what a command printed and how it exited.
type result struct {
	stdout, stderr string
	code           int
}

// cli is the path of a socialgate binary.
type cli string

// run runs the binary with args.
func (bin cli) run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, string(bin), args...)
	cmd.Env = privateEnv(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		r.code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("socialgate %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func (r result) want(t *testing.T, code int, stdout string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stdout, stdout) {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d and stdout containing %q", r.code, r.stdout, r.stderr, code, stdout)
	}
}

func (r result) wantError(t *testing.T, code int, message string) {
	t.Helper()
	if r.code != code || !strings.Contains(r.stderr, message) {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d and stderr containing %q", r.code, r.stdout, r.stderr, code, message)
	}
}

// seeded is a stopped store with two users: Ada (one session) and, newer,
// Grace.
type seeded struct {
	dir                  string
	ada, grace, adaEAC   string
	adaSession, tokenTag string
}

func seedStore(t *testing.T) seeded {
	t.Helper()
	s := seeded{dir: filepath.Join(t.TempDir(), "socialgate"), tokenTag: "tok-secret-material"}
	keys, err := keyring.LoadOrCreate(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := badgerstore.Open(badgerstore.Options{Dir: s.dir, EncryptionKey: keys.StoreKey})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	signIn := func(subject, name, email string, at time.Time) store.SignInResult {
		res, err := st.SignIn(ctx, store.SignIn{Now: at, Account: store.ExternalAccount{
			Provider: "dev", Issuer: "https://idp.example", Subject: subject, Name: name,
			Email: email, EmailVerified: true, Status: store.StatusVerified,
			Tokens: store.TokenSet{AccessToken: s.tokenTag + "-access", RefreshToken: s.tokenTag + "-refresh"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	now := time.Now()
	a := signIn("ada", "Ada Lovelace", "ada@example.com", now.Add(-time.Hour))
	s.ada, s.adaEAC = a.User.ID, a.Account.ID
	s.grace = signIn("grace", "Grace Hopper", "Grace@Example.com", now).User.ID
	sess := &store.Session{UserID: s.ada, AccountID: s.adaEAC, ExpiresAt: now.Add(time.Hour), IP: "192.0.2.1", UserAgent: "test"}
	if err := st.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	s.adaSession = sess.ID
	return s
}

// corrupt writes key=value straight into the store, behind the store's back.
func corrupt(t *testing.T, dir, key, value string) {
	t.Helper()
	keys, err := keyring.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := badger.Open(badger.DefaultOptions(dir).WithEncryptionKey(keys.StoreKey).WithIndexCacheSize(16 << 20).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(key), []byte(value)) }); err != nil {
		t.Fatal(err)
	}
}

// TestOperatorCommands runs the operator commands as an operator does: the
// real binary, a separate process, against a store prepared here.
func TestOperatorCommands(t *testing.T) {
	bin := cli(testkit.Socialgate(t))

	t.Run("StorageCheck_ConsistentStoreExitsZero", func(t *testing.T) {
		s := seedStore(t)
		bin.run(t, "storage-check", "--storage", s.dir).want(t, 0, "store is consistent: 2 users")
	})

	t.Run("StorageCheck_NamesADanglingIdentityIndexEntry", func(t *testing.T) {
		s := seedStore(t)
		corrupt(t, s.dir, "idx/identity/https://ghost.example\x00ghost", "eac_ghost")
		r := bin.run(t, "storage-check", "--storage", s.dir)
		r.want(t, 1, `identity index entry "https://ghost.example\x00ghost": account eac_ghost is missing`)
		if !strings.Contains(r.stderr, "1 invariant violation\n") {
			t.Errorf("stderr does not count the violations:\n%s", r.stderr)
		}
	})

	t.Run("StorageCheck_MissingStoreExitsTwoAndCreatesNothing", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nothing-here")
		bin.run(t, "storage-check", "--storage", dir).wantError(t, 2, "no socialgate store here")
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the check created %s: %v", dir, err)
		}
	})

	t.Run("Commands_RefuseTheStoreOfARunningGateway", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "socialgate")
		startGateway(t, string(bin), dir, false)
		for _, args := range [][]string{
			{"storage-check", "--storage", dir},
			{"users", "--storage", dir},
			{"user-delete", "--storage", dir, "user_x"},
		} {
			bin.run(t, args...).wantError(t, 2, "the gateway is running and holds the store: stop it first")
		}
	})

	t.Run("Users_ListsNewestFirst", func(t *testing.T) {
		s := seedStore(t)
		r := bin.run(t, "users", "--storage", s.dir)
		r.want(t, 0, "2 of 2 users")
		lines := strings.Split(r.stdout, "\n")
		if len(lines) < 3 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], s.grace) || !strings.HasPrefix(lines[2], s.ada) {
			t.Fatalf("want a header, then Grace, then Ada:\n%s", r.stdout)
		}
		for _, want := range []string{"Grace Hopper", "Grace@Example.com", "ada@example.com"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("the table lacks %q:\n%s", want, r.stdout)
			}
		}
	})

	t.Run("Users_FiltersAndPages", func(t *testing.T) {
		s := seedStore(t)
		for _, tc := range []struct {
			name string
			args []string
			want []string // user ids, in order
		}{
			{"email any case", []string{"--email", "grace@EXAMPLE.com"}, []string{s.grace}},
			{"unknown email", []string{"--email", "nobody@example.com"}, nil},
			{"limit", []string{"--limit", "1"}, []string{s.grace}},
			{"offset", []string{"--offset", "1"}, []string{s.ada}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := bin.run(t, append([]string{"users", "--storage", s.dir, "--json"}, tc.args...)...)
				r.want(t, 0, "")
				var got []string
				for line := range strings.Lines(r.stdout) {
					var u map[string]any
					if err := json.Unmarshal([]byte(line), &u); err != nil {
						t.Fatalf("not a JSON line: %q", line)
					}
					got = append(got, u["id"].(string))
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("got users %v, want %v", got, tc.want)
				}
			})
		}
	})

	t.Run("User_ShowsAccountsAndSessionsWithoutTokens", func(t *testing.T) {
		s := seedStore(t)
		r := bin.run(t, "user", "--storage", s.dir, s.ada)
		for _, want := range []string{s.ada, "Ada Lovelace", "ada@example.com (verified)", s.adaEAC, "https://idp.example", "\n1 account\n", "\n1 session\n", s.adaSession, "192.0.2.1"} {
			r.want(t, 0, want)
		}
		r = bin.run(t, "user", "--storage", s.dir, "--json", s.ada)
		r.want(t, 0, "")
		var out struct {
			User struct {
				ID               string           `json:"id"`
				ExternalAccounts []map[string]any `json:"external_accounts"`
			} `json:"user"`
			Sessions []map[string]any `json:"sessions"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("%v:\n%s", err, r.stdout)
		}
		if out.User.ID != s.ada || len(out.User.ExternalAccounts) != 1 || len(out.Sessions) != 1 || out.Sessions[0]["id"] != s.adaSession {
			t.Errorf("unexpected JSON:\n%s", r.stdout)
		}
		for _, args := range [][]string{{"user", s.ada}, {"user", "--json", s.ada}, {"users"}, {"users", "--json"}} {
			r := bin.run(t, append(args, "--storage", s.dir)...)
			if strings.Contains(r.stdout+r.stderr, s.tokenTag) {
				t.Errorf("%v prints token material:\n%s", args, r.stdout)
			}
		}
	})

	t.Run("User_UnknownIDExitsOne", func(t *testing.T) {
		s := seedStore(t)
		bin.run(t, "user", "--storage", s.dir, "user_nobody").wantError(t, 1, "there is no user user_nobody")
	})

	t.Run("UserDelete_RemovesTheUserAndKeepsTheStoreConsistent", func(t *testing.T) {
		s := seedStore(t)
		bin.run(t, "user-delete", "--storage", s.dir, s.ada).want(t, 0, "deleted user "+s.ada)
		bin.run(t, "user", "--storage", s.dir, s.ada).wantError(t, 1, "there is no user")
		bin.run(t, "user-delete", "--storage", s.dir, s.ada).wantError(t, 1, "there is no user "+s.ada)
		bin.run(t, "storage-check", "--storage", s.dir).want(t, 0, "store is consistent: 1 user\n")
	})

	t.Run("SessionRevoke_EndsTheSession", func(t *testing.T) {
		s := seedStore(t)
		bin.run(t, "session-revoke", "--storage", s.dir, s.adaSession).want(t, 0, "revoked a session of user "+s.ada)
		bin.run(t, "user", "--storage", s.dir, s.ada).want(t, 0, "0 sessions")
		r := bin.run(t, "session-revoke", "--storage", s.dir, s.adaSession)
		r.wantError(t, 1, "there is no live session")
		if strings.Contains(r.stderr, s.adaSession) {
			t.Errorf("the error repeats the session id:\n%s", r.stderr)
		}
		bin.run(t, "storage-check", "--storage", s.dir).want(t, 0, "store is consistent: 2 users")
	})

	t.Run("Commands_BadArgumentsExitTwo", func(t *testing.T) {
		s := seedStore(t)
		for _, tc := range []struct {
			args    []string
			message string
		}{
			{[]string{"user", "--storage", s.dir}, "give exactly one user id"},
			{[]string{"user-delete", "--storage", s.dir, "a", "b"}, "give exactly one user id"},
			{[]string{"session-revoke", "--storage", s.dir}, "give exactly one session id"},
			{[]string{"users", "--storage", s.dir, "--limit", "0"}, "--limit must be 1-500"},
			{[]string{"users", "--storage", s.dir, "--bogus"}, "unknown flag: --bogus"},
			{[]string{"storage-check", "--storage"}, "flag needs an argument"},
		} {
			bin.run(t, tc.args...).wantError(t, 2, tc.message)
		}
	})
}

// gatewayProcess is the gateway binary running on a Badger store for a test.
type gatewayProcess struct {
	admin string // Caddy's admin API, host:port ("" without it)
	site  *env   // its protected site (respond "hello") and dev provider
}

// startGateway runs bin as a gateway with the dev provider on storage dir
// until the test ends, with Caddy's admin API on a free loopback port when
// admin is set, and waits until it serves (and its socialgate admin routes
// answer). Its sessions are cached for an hour, so a revocation that does
// not reach the cache shows. global are extra lines of its socialgate
// global option.
func startGateway(t *testing.T, bin, dir string, admin bool, global ...string) gatewayProcess {
	t.Helper()
	port, devPort := testkit.FreePort(t), testkit.FreePort(t)
	g := gatewayProcess{site: &env{t: t, Base: fmt.Sprintf("http://127.0.0.1:%d", port), DevURL: fmt.Sprintf("http://127.0.0.1:%d", devPort)}}
	adminAddr := "off"
	if admin {
		g.admin = fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
		adminAddr = g.admin
	}
	conf := filepath.Join(t.TempDir(), "Caddyfile")
	caddyfile := fmt.Sprintf(`{
	admin %s
	persist_config off
	auto_https off
	storage file_system %s/caddy
	socialgate {
		storage %s
		dev_provider 127.0.0.1:%d
		session_cache 1h
		%s
	}
}
http://127.0.0.1:%d {
	socialgate
	respond "hello"
}
`, adminAddr, filepath.Dir(dir), dir, devPort, strings.Join(global, "\n\t\t"), port)
	if err := os.WriteFile(conf, []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", conf, "--adapter", "caddyfile")
	cmd.Env = privateEnv(t)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// Both answer: the admin API may be up before the site listens.
	ready := []string{g.site.Base + "/_auth/health"}
	if admin {
		ready = append(ready, "http://"+g.admin+"/socialgate/check")
	}
	answers := func(u string) bool {
		resp, err := http.Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !slices.ContainsFunc(ready, func(u string) bool { return !answers(u) }) {
			return g
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatalf("the gateway did not start:\n%s", logs.String())
	return g
}
