package caddymodule_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/internal/testkit"
)

// dataHome is where privateEnv puts Caddy's data directory.
var dataHome = regexp.MustCompile(`"/[^"]*/caddy/socialgate"`)

// TestCLI_HelpGolden is the help an operator reads, as the binary prints
// it: the socialgate commands under their own heading before Caddy's,
// the same for the bare command and --help, and each command's help with
// its examples and exit codes.
func TestCLI_HelpGolden(t *testing.T) {
	bin := cli(testkit.Socialgate(t))
	check := func(name string, args ...string) string {
		t.Helper()
		r := bin.run(t, args...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("socialgate %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
		got := dataHome.ReplaceAllString(r.stdout, `"$$XDG_DATA_HOME/caddy/socialgate"`)
		path := filepath.Join("..", "testdata", "cli", name+".golden")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			return got
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test -run TestCLI_HelpGolden -update writes it)", err)
		}
		if got != string(want) {
			t.Errorf("socialgate %s differs from %s:\n%s", strings.Join(args, " "), path, got)
		}
		return got
	}

	help := check("help", "help")
	ours, caddys := strings.Index(help, "\nsocialgate commands"), strings.Index(help, "\nCaddy commands:")
	if ours < 0 || caddys < ours || strings.Contains(help[caddys:], "storage-check") || !strings.Contains(help[ours:caddys], "storage-check") {
		t.Errorf("the socialgate commands are not under their own heading before Caddy's:\n%s", help)
	}
	for _, args := range [][]string{nil, {"--help"}, {"-h"}} {
		if r := bin.run(t, args...); r.stdout != bin.run(t, "help").stdout {
			t.Errorf("socialgate %v does not print what socialgate help does", args)
		}
	}
	for _, name := range []string{"users", "user", "user-delete", "session-revoke", "account-disconnect", "storage-check",
		"backup", "restore", "storage-migrate", "identity-key-rotate", "secret-rotate", "webhook-replay"} {
		h := check("help-"+name, "help", name)
		if examples := strings.Index(h, "\nExamples:\n"); examples < 0 || !strings.Contains(h[examples:], "socialgate "+name) || !strings.Contains(h, "Exit codes:") {
			t.Errorf("socialgate help %s has no examples or exit codes", name)
		}
	}
}

// A failing command prints one sentence on standard error, never a JSON
// log line, and exits with the documented code.
func TestCLI_ErrorsAreSentences(t *testing.T) {
	bin := cli(testkit.Socialgate(t))
	s := seedStore(t)
	nowhere := filepath.Join(t.TempDir(), "nowhere")
	backup := filepath.Join(t.TempDir(), "sg.bak")
	if err := os.WriteFile(backup, []byte("not a backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"users", "--storage", nowhere}, 2, "socialgate users: storage " + nowhere + ": no socialgate store here"},
		{[]string{"user", "--storage", s.dir, "user_nobody"}, 1, "socialgate user: there is no user user_nobody\n"},
		{[]string{"user-delete", "--storage", s.dir}, 2, "socialgate user-delete: give exactly one user id\n"},
		{[]string{"restore", "--storage", s.dir, "--input", backup}, 2, "socialgate restore: restoring " + backup + ": storage " + s.dir + " is not empty"},
		{[]string{"restore", "--storage", s.dir, "--input", nowhere}, 2, "socialgate restore: restoring " + nowhere + ": open " + nowhere},
	} {
		r := bin.run(t, tc.args...)
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, `"level"`) ||
			len(lines) > 2 || strings.HasPrefix(lines[len(lines)-1], "{") {
			t.Errorf("socialgate %s: exit %d, stderr:\n%s\nwant exit %d and a sentence %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.code, tc.want)
		}
	}
}
