package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/internal/testkit"
)

// jsonConfig is a JSON config with the socialgate app and one site whose
// socialgate handler has the given fields; the app keeps its store in dir.
func jsonConfig(t *testing.T, dir string, app, handler map[string]any) string {
	t.Helper()
	if _, ok := app["storage"]; !ok {
		app["storage"] = filepath.Join(dir, "socialgate")
	}
	handler["handler"] = "socialgate"
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true},
		"storage": map[string]any{"module": "file_system", "root": filepath.Join(dir, "caddy")},
		"apps": map[string]any{
			"socialgate": app,
			"http": map[string]any{"servers": map[string]any{"site": map[string]any{
				"listen":          []string{"127.0.0.1:0"},
				"routes":          []any{map[string]any{"handle": []any{handler}}},
				"automatic_https": map[string]any{"disable": true},
			}}},
		},
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// provisionMessage is the socialgate part of the error chain Caddy prints
// when a module fails to provision: what follows the last "provision
// socialgate: " or "provision http.handlers.socialgate: " (the prefix is
// Caddy's own, wrapped with %v, and depends on which app it loads first).
func provisionMessage(chain string) string {
	at, rest := -1, ""
	for _, marker := range []string{"provision socialgate: ", "provision http.handlers.socialgate: "} {
		if i := strings.LastIndex(chain, marker); i > at {
			at, rest = i, chain[i+len(marker):]
		}
	}
	return rest
}

// TestConfigMistakes_ProvisionSaysWhatIsWrong runs `socialgate validate` on
// mistakes that only the server can see (what a placeholder expands to, a
// directory) or that a JSON config makes: exit 1, and the gateway's part of
// Caddy's error chain is the short message alone.
func TestConfigMistakes_ProvisionSaysWhatIsWrong(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary; skipped with -short")
	}
	bin := cli(testkit.Socialgate(t))
	t.Setenv("SG_TEST_SHORT_KEY", "0123456789")
	github := map[string]any{"name": "github", "type": "github", "client_id": "Iv1.abc", "client_secret": "s3cret"}
	dev := map[string]any{"listen": "localhost:9999"}
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name         string
		app, handler map[string]any
		caddyfile    string // instead of app and handler
		want         string
	}{
		{name: "client_secret from an unset variable",
			caddyfile: global("\t\tprovider google {\n\t\t\tclient_id abc\n\t\t\tclient_secret {env.SG_TEST_UNSET_SECRET}\n\t\t}"),
			want:      "provider google: client_secret is empty: {env.SG_TEST_UNSET_SECRET} expands to nothing (is the environment variable set for the server, or the file there and readable?)"},
		{name: "api_key from a variable too short",
			caddyfile: global("\t\tdev_provider\n\t\tapi_key {env.SG_TEST_SHORT_KEY}"),
			want:      "api_key: key 1 is 10 characters; use at least 32 random characters, like the output of openssl rand -base64 32"},
		{name: "storage in a file, not a directory",
			caddyfile: global("\t\tdev_provider\n\t\tstorage " + notADir + "/socialgate"),
			want:      fmt.Sprintf("storage %[1]s/socialgate: open %[1]s/socialgate/keys.json: not a directory", notADir)},
		{name: "require a typo of a configured provider",
			app: map[string]any{"providers": []any{github}}, handler: map[string]any{"require": []any{map[string]any{"provider": "gitub"}}},
			want: "socialgate require gitub: no provider named gitub is configured (did you mean github?)"},
		{name: "google without client_secret",
			app:  map[string]any{"providers": []any{map[string]any{"name": "google", "type": "google", "client_id": "abc"}}},
			want: "provider google: client_secret is required: write the secret the provider issued with the client id, like client_secret {env.GOOGLE_CLIENT_SECRET}"},
		{name: "storage and postgres",
			app:  map[string]any{"dev_provider": dev, "storage": "/var/lib/socialgate", "postgres": map[string]any{"dsn": "postgres://localhost/sg", "secret": "{env.SG_SECRET}"}},
			want: "storage: both a directory and postgres are configured: keep one"},
		{name: "negative duration",
			app: map[string]any{"dev_provider": dev, "session_lifetime": "-1h"}, want: "session_lifetime: -1h0m0s is negative"},
		{name: "negative idle timeout",
			app: map[string]any{"dev_provider": dev, "session_idle_timeout": "-30m"}, want: "session_idle_timeout: -30m0s is negative"},
		{name: "dev provider on every interface",
			app:  map[string]any{"dev_provider": map[string]any{"listen": ":9999"}},
			want: "dev_provider: :9999 is reachable from other machines, and the dev provider signs anyone in as anyone: listen on localhost:PORT, or add allow_remote to the dev_provider block if that is what you want"},
		{name: "no provider", app: map[string]any{}, want: "no provider is configured: add dev_provider or a provider block to the socialgate global option"},
		{name: "two forward_tokens in one header",
			app: map[string]any{"dev_provider": dev, "providers": []any{github}},
			handler: map[string]any{"forward_tokens": []any{map[string]any{"provider": "github", "header": "Authorization"},
				map[string]any{"provider": "dev", "header": "authorization"}}},
			want: "socialgate forward_token dev: header Authorization already carries github's token"},
		{name: "redirect URL listed twice", app: map[string]any{"dev_provider": dev, "redirect_urls": []string{"myapp://cb", "myapp://cb"}},
			want: `redirect_urls: "myapp://cb" is listed twice`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file, args := filepath.Join(dir, "Caddyfile"), []string{"validate", "--config"}
			src := tc.caddyfile
			if src == "" {
				if tc.handler == nil {
					tc.handler = map[string]any{}
				}
				file, src = filepath.Join(dir, "caddy.json"), jsonConfig(t, dir, tc.app, tc.handler)
			}
			if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			r := bin.run(t, append(args, file)...)
			if chain := lastError(r.stderr); r.code != 1 || provisionMessage(chain) != tc.want {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and, after Caddy's prefix, %q", r.code, r.stderr, tc.want)
			}
		})
	}
}

// TestConfigMistakes_ValidateBesideARunningGateway: a running gateway holds
// its Badger store's lock, and `socialgate validate` of a changed config
// on the same storage still reports the config's mistake, not the lock:
// the config is checked before the store is opened.
func TestConfigMistakes_ValidateBesideARunningGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary; skipped with -short")
	}
	e := newEnv(t, options{})
	bin := cli(testkit.Socialgate(t))
	file := filepath.Join(t.TempDir(), "Caddyfile")
	src := global(fmt.Sprintf("\t\tstorage %s/socialgate\n\t\tdev_provider\n\t\tprovider google {\n\t\t\tclient_id abc\n\t\t\tclient_secret {env.SG_TEST_UNSET_SECRET}\n\t\t}", e.Storage))
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	r := bin.run(t, "validate", "--config", file)
	want := "provider google: client_secret is empty: {env.SG_TEST_UNSET_SECRET} expands to nothing (is the environment variable set for the server, or the file there and readable?)"
	if got := provisionMessage(lastError(r.stderr)); r.code != 1 || got != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and %q", r.code, r.stderr, want)
	}
}

// TestConfigMistakes_SecretsWrittenOutAreWarnedOf: a secret written in the
// config (not {env.*} or {file.*}) is served by the admin API; validate
// warns, naming the option, never the value.
func TestConfigMistakes_SecretsWrittenOutAreWarnedOf(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary; skipped with -short")
	}
	bin := cli(testkit.Socialgate(t))
	const secret = "gh-secret-written-out-0123456789"
	file := filepath.Join(t.TempDir(), "Caddyfile")
	src := global("\t\tstorage " + filepath.Join(filepath.Dir(file), "socialgate") +
		"\n\t\tprovider github {\n\t\t\tclient_id Iv1.abc\n\t\t\tclient_secret " + secret + "\n\t\t}\n\t\tapi_key {env.SG_TEST_API_KEY}")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SG_TEST_API_KEY", "sk_from_the_environment_0123456789abcdef")
	r := bin.run(t, "validate", "--config", file)
	r.want(t, 0, "Valid configuration")
	var warned []string
	for _, line := range strings.Split(r.stderr, "\n") {
		var entry struct{ Level, Msg, Option string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Level == "warn" && strings.HasPrefix(entry.Msg, "a secret is written out") {
			warned = append(warned, entry.Option)
		}
	}
	if strings.Join(warned, ",") != "provider github: client_secret" || strings.Contains(r.stderr, secret) {
		t.Fatalf("warned of %q; stderr:\n%s", warned, r.stderr)
	}
}
