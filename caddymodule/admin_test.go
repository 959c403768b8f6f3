package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/internal/testkit"
)

// adminGet calls the admin API directly and decodes its JSON answer.
func adminGet(t *testing.T, rawURL string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("not JSON (HTTP %d): %s", resp.StatusCode, body)
	}
	return resp.StatusCode, out
}

// copyKeys copies the store's keys.json into a new directory, as an operator
// restoring a backup does.
func copyKeys(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "restored")
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(from, keyring.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, keyring.FileName), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return to
}

// TestAdminCLI_Online runs the operator commands against the store of a
// running gateway: they find it locked and go through the admin API.
func TestAdminCLI_Online(t *testing.T) {
	bin := cli(testkit.Socialgate(t))
	s := seedStore(t)
	gw := startGateway(t, string(bin), s.dir, true)
	admin := gw.admin
	on := func(args ...string) result {
		return bin.run(t, append(args, "--storage", s.dir, "--admin", admin)...)
	}

	t.Run("AdminRoutes", func(t *testing.T) {
		code, out := adminGet(t, "http://"+admin+"/socialgate/check")
		if code != http.StatusOK || out["users"] != float64(2) || len(out["violations"].([]any)) != 0 {
			t.Errorf("check: HTTP %d %v", code, out)
		}
		code, out = adminGet(t, "http://"+admin+"/socialgate/users?storage=/nowhere")
		if code != http.StatusNotFound || !strings.Contains(fmt.Sprint(out["error"]), "no store open at /nowhere") {
			t.Errorf("unknown storage: HTTP %d %v", code, out)
		}
		code, out = adminGet(t, "http://"+admin+"/socialgate/users/"+s.ada+"?storage="+s.dir)
		if code != http.StatusOK || out["user"].(map[string]any)["id"] != s.ada {
			t.Errorf("user: HTTP %d %v", code, out)
		}
	})

	t.Run("ReadCommands", func(t *testing.T) {
		on("users").want(t, 0, "2 of 2 users")
		r := on("users", "--json", "--email", "grace@EXAMPLE.com")
		r.want(t, 0, s.grace)
		if strings.Contains(r.stdout, s.ada) {
			t.Errorf("the email filter let Ada through:\n%s", r.stdout)
		}
		r = on("user", s.ada)
		for _, want := range []string{"Ada Lovelace", "ada@example.com (verified)", s.adaEAC, "https://idp.example", "\n1 account\n", "\n1 session\n", s.adaSession, "192.0.2.1"} {
			r.want(t, 0, want)
		}
		r = on("user", "--json", s.ada)
		r.want(t, 0, s.adaSession)
		if strings.Contains(r.stdout+r.stderr, s.tokenTag) {
			t.Errorf("token material printed:\n%s", r.stdout)
		}
		on("user", "user_nobody").wantError(t, 1, "there is no user user_nobody")
		on("storage-check").want(t, 0, "store is consistent: 2 users")
	})

	backup := filepath.Join(t.TempDir(), "online.bak")
	t.Run("BackupWhileServing", func(t *testing.T) {
		on("backup", "--output", backup).want(t, 0, "backed up the store to "+backup)
		if fi, err := os.Stat(backup); err != nil || fi.Size() == 0 {
			t.Fatalf("backup file: %v", err)
		}
	})

	t.Run("ChangingCommands", func(t *testing.T) {
		on("session-revoke", s.adaSession).want(t, 0, "revoked a session of user "+s.ada)
		r := on("session-revoke", s.adaSession)
		r.wantError(t, 1, "there is no live session")
		if strings.Contains(r.stderr, s.adaSession) {
			t.Errorf("the error repeats the session id:\n%s", r.stderr)
		}
		on("account-disconnect", s.ada, s.adaEAC).want(t, 0, "disconnected account "+s.adaEAC)
		on("account-disconnect", s.ada, s.adaEAC).wantError(t, 1, "there is no external account "+s.adaEAC)
		on("user-delete", s.grace).want(t, 0, "deleted user "+s.grace)
		on("user-delete", s.grace).wantError(t, 1, "there is no user "+s.grace)
		on("user", s.ada).want(t, 0, "0 accounts")
		on("storage-check").want(t, 0, "store is consistent: 1 user\n")
	})

	// The serving gateway caches sessions (here for an hour): what the
	// commands end must be refused by the very next request.
	t.Run("ChangesReachTheServingGateway", func(t *testing.T) {
		signedIn := func(who url.Values) (*browser, map[string]any) {
			b := newBrowser(t)
			if resp, page := b.signInDev(gw.site, "/", who); resp.StatusCode != http.StatusOK || page != "hello" {
				t.Fatalf("sign-in: status %d %q", resp.StatusCode, page)
			}
			resp, page := b.get(gw.site.Base + "/_auth/me")
			var me map[string]any
			if err := json.Unmarshal([]byte(page), &me); resp.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("/_auth/me: status %d %v", resp.StatusCode, err)
			}
			return b, me
		}
		refused := func(b *browser, after string) {
			t.Helper()
			resp, _ := b.get(gw.site.Base + "/")
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther ||
				!strings.Contains(loc, "/_auth/sign-in") {
				t.Errorf("after %s the session still opens the site: status %d, Location %q", after, resp.StatusCode, loc)
			}
		}
		b, me := signedIn(person("Kit Revoked", "kit@example.com", true))
		on("session-revoke", me["session_id"].(string)).want(t, 0, "revoked a session of user "+me["id"].(string))
		refused(b, "session-revoke")

		b, me = signedIn(person("Lou Deleted", "lou@example.com", true))
		on("user-delete", me["id"].(string)).want(t, 0, "deleted user "+me["id"].(string))
		refused(b, "user-delete")
	})

	t.Run("UnreachableAdminExitsTwo", func(t *testing.T) {
		dead := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
		bin.run(t, "users", "--storage", s.dir, "--admin", dead).
			wantError(t, 2, "the gateway is running and holds the store")
	})

	t.Run("AdminWithoutSocialgateRoutesExitsTwo", func(t *testing.T) {
		other := httptest.NewServer(http.NotFoundHandler())
		defer other.Close()
		r := bin.run(t, "users", "--storage", s.dir, "--admin", strings.TrimPrefix(other.URL, "http://"))
		r.wantError(t, 2, "the gateway is running and holds the store")
		r.wantError(t, 2, "has no socialgate routes")
	})

	t.Run("RestoreRefusesTheLiveStore", func(t *testing.T) {
		bin.run(t, "restore", "--storage", s.dir, "--input", backup).wantError(t, 2, "is not empty")
	})

	t.Run("RestoreTheOnlineBackup", func(t *testing.T) {
		dir := copyKeys(t, s.dir)
		bin.run(t, "restore", "--storage", dir, "--input", backup).want(t, 0, "restored 2 users")
		// The backup was taken before the changes: Grace and Ada's session are there.
		bin.run(t, "user", "--storage", dir, s.grace).want(t, 0, "Grace Hopper")
		bin.run(t, "user", "--storage", dir, s.ada).want(t, 0, s.adaSession)
		bin.run(t, "storage-check", "--storage", dir).want(t, 0, "store is consistent: 2 users")
	})
}

// TestAdminCLI_Offline covers the new commands on a stopped store.
func TestAdminCLI_Offline(t *testing.T) {
	bin := cli(testkit.Socialgate(t))
	s := seedStore(t)

	bin.run(t, "user", "--storage", s.dir, s.ada).want(t, 0, "1 session\n")
	bin.run(t, "account-disconnect", "--storage", s.dir, s.ada, s.adaEAC).want(t, 0, "disconnected account "+s.adaEAC)
	// Ada's session was signed in through that account: it ended with it.
	bin.run(t, "user", "--storage", s.dir, s.ada).want(t, 0, "0 sessions")
	bin.run(t, "account-disconnect", "--storage", s.dir, s.ada, s.adaEAC).wantError(t, 1, "there is no external account")
	bin.run(t, "account-disconnect", "--storage", s.dir, s.ada).wantError(t, 2, "give a user id and an external account id")

	backup := filepath.Join(t.TempDir(), "offline.bak")
	bin.run(t, "backup", "--storage", s.dir).wantError(t, 2, "give --output")
	bin.run(t, "backup", "--storage", s.dir, "--output", backup).want(t, 0, "backed up the store")

	dir := copyKeys(t, s.dir)
	bin.run(t, "restore", "--storage", dir, "--input", backup).want(t, 0, "restored 2 users")
	bin.run(t, "user", "--storage", dir, s.ada).want(t, 0, "0 accounts")
	bin.run(t, "users", "--storage", dir).want(t, 0, "2 of 2 users")
	// A second restore into the now non-empty directory is refused.
	bin.run(t, "restore", "--storage", dir, "--input", backup).wantError(t, 2, "is not empty")

	noKeys := t.TempDir()
	bin.run(t, "restore", "--storage", noKeys, "--input", backup).wantError(t, 2, "keys.json is missing")

	// A backup restored with other keys cannot be read as the old store's.
	other := t.TempDir()
	if _, err := keyring.LoadOrCreate(other); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.bak")
	os.WriteFile(garbage, []byte("not a backup"), 0o600)
	bin.run(t, "restore", "--storage", other, "--input", garbage).wantError(t, 2, "restoring")
}
