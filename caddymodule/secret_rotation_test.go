package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/internal/testkit"
)

const (
	oldSecret = "the-old-secret-of-the-cluster-0123456789"
	newSecret = "the-new-secret-of-the-cluster-9876543210"
)

// pgStorage is the storage option of a PostgreSQL store on dsn with secrets.
func pgStorage(dsn string, secrets ...string) string {
	return fmt.Sprintf("storage postgres {\n\t\t\tdsn %q\n\t\t\tsecret %s\n\t\t}", dsn, strings.Join(secrets, " "))
}

// storedToken reads a user's dev access token through the backend API,
// which opens the sealed token set; "" when it cannot.
func storedToken(t *testing.T, g *servingGateway, userID string) string {
	t.Helper()
	status, _, body := apiCall(t, g.site, "GET", "/users/"+userID+"/oauth_access_tokens/dev")
	list, _ := body.([]any)
	if status != http.StatusOK || len(list) != 1 {
		return ""
	}
	token, _ := list[0].(map[string]any)["token"].(string)
	return token
}

// TestPostgres_SecretRotation rotates the PostgreSQL secret as the docs say,
// through a running gateway: a changed secret alone is refused at reload
// (never ignored); the new secret with the old one after it is applied at
// once (old cookies and tokens keep working, new cookies and values use the
// new keys, the new identity key is published before it signs);
// secret-rotate re-seals what the old secret sealed, resumably, and says
// when the old secret can go; a restart with the new secret alone works.
func TestPostgres_SecretRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway binary on PostgreSQL; skipped with -short")
	}
	dsn := testkit.OwnPostgres(t)
	const delay = "identity_key_delay 2s"
	g := newServingGateway(t)
	g.start(pgStorage(dsn, oldSecret), delay)
	v := &jwksVerifier{url: g.site.Base + "/_auth/.well-known/jwks.json", cooldown: time.Minute}
	kidOf := func(what, token string) string { t.Helper(); return v.mustVerify(t, what, token) }

	first := newBrowser(t)
	_, token := first.signInDev(g.site, "/", ada)
	oldKid := kidOf("before the rotation", token)
	user := whoAmI(t, first, g.site.Base)
	accessToken := storedToken(t, g, user)
	if accessToken == "" {
		t.Fatal("the stored token cannot be read before the rotation")
	}

	// A changed secret alone cannot open the database: the reload is
	// refused with what to do, and the running config stays.
	status, body := g.reload(pgStorage(dsn, newSecret), delay)
	if status == http.StatusOK || !strings.Contains(body, "secret <new> <old>") || !strings.Contains(body, "secret-rotate") {
		t.Fatalf("a reload with a changed secret alone: HTTP %d %s", status, body)
	}
	if strings.Contains(body, newSecret) || strings.Contains(body, oldSecret) {
		t.Error("the refusal shows a secret")
	}
	resp, err := http.Get("http://" + g.admin + "/config/apps/socialgate/postgres/secret")
	if err != nil {
		t.Fatal(err)
	}
	running, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(running), oldSecret) {
		t.Errorf("after the refused reload the running config's secret is %s", running)
	}
	if kidOf("after the refused reload", g.identity(first)) != oldKid || len(jwksKids(t, g.site.Base)) != 1 {
		t.Error("the refused reload changed the identity keys")
	}

	// The new secret first, the old after it: applied at once.
	if status, body := g.reload(pgStorage(dsn, newSecret, oldSecret), delay); status != http.StatusOK {
		t.Fatalf("the reload with the new and the old secret: HTTP %d %s", status, body)
	}
	kids := jwksKids(t, g.site.Base)
	if len(kids) != 2 || kids[1] != oldKid {
		t.Fatalf("after the reload the JWKS holds %v, want the new key and %s", kids, oldKid)
	}
	newKid := kids[0]
	if kid := kidOf("the old session after the reload", g.identity(first)); kid != oldKid {
		t.Errorf("right after the reload %s signs, want the old key until the delay passes", kid)
	}
	if storedToken(t, g, user) != accessToken {
		t.Error("the token sealed under the old secret cannot be read after the reload")
	}
	second := newBrowser(t)
	if _, token := second.signInDev(g.site, "/", person("Grace Hopper", "grace@example.com", true)); kidOf("a new session", token) != oldKid {
		t.Error("the new identity key signs before the delay")
	}
	grace := whoAmI(t, second, g.site.Base)

	// The identity key of the database's secret cannot be rotated alone.
	g.bin.run(t, "identity-key-rotate", "--admin", g.admin).wantError(t, 2, "derive from its secret")

	// Finish the rotation while the gateway serves; running it again finds
	// nothing left (it can be stopped and resumed at any point).
	rotate := []string{"secret-rotate", "--dsn", dsn, "--secret", newSecret, "--previous-secret", oldSecret}
	r := g.bin.run(t, rotate...)
	// Ada's token set and session id were sealed under the old secret;
	// Grace's, after the reload, under the new one.
	r.want(t, 0, "sealed again under the new secret: 1 provider token set, 1 session id, ")
	for _, want := range []string{"the database opens with it alone", "1 live session began before the new secret was in use", "can be removed now"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("secret-rotate does not say %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout+r.stderr, newSecret) || strings.Contains(r.stdout+r.stderr, oldSecret) {
		t.Error("secret-rotate prints a secret")
	}
	g.bin.run(t, rotate...).want(t, 0, "sealed again under the new secret: 0 provider token sets, 0 session ids, 0 events")
	if storedToken(t, g, user) != accessToken || storedToken(t, g, grace) == "" {
		t.Error("a token cannot be read after secret-rotate")
	}

	// After the delay the new key signs; the verifier, holding JWKS as
	// long as it may, never met a key it lacked.
	time.Sleep(2 * time.Second)
	third := newBrowser(t)
	if _, token := third.signInDev(g.site, "/", person("Alan Turing", "alan@example.com", true)); kidOf("after the delay", token) != newKid {
		t.Error("the new identity key does not sign after the delay")
	}
	if v.Refetches != 0 {
		t.Errorf("the verifier met %d unknown keys", v.Refetches)
	}

	// A restart with the new secret alone works: everything stored opens,
	// the cookies of the new secret still sign in; a cookie of the old one
	// is no session (as secret-rotate said), never an error.
	g.stop()
	g.start(pgStorage(dsn, newSecret), delay)
	if storedToken(t, g, user) != accessToken || storedToken(t, g, grace) == "" {
		t.Error("a token cannot be read after a restart with the new secret alone")
	}
	for name, b := range map[string]*browser{"second": second, "third": third} {
		if g.identity(b) == "" {
			t.Errorf("the %s session, begun under the new secret, is gone after the restart", name)
		}
	}
	if resp, _ := first.get(g.site.Base + "/"); resp.StatusCode != http.StatusFound {
		t.Errorf("a cookie of the removed secret: HTTP %d, want a redirect to sign in", resp.StatusCode)
	}
	if kids := jwksKids(t, g.site.Base); !slices.Equal(kids, []string{newKid}) {
		t.Errorf("after the restart the JWKS holds %v, want only %s", kids, newKid)
	}
	// The old secret alone no longer opens the database: refused at start.
	r = g.bin.run(t, "validate", "--config", writeFile(t, g.caddyfile(pgStorage(dsn, oldSecret))), "--adapter", "caddyfile")
	r.wantError(t, 1, "the secret does not open this database")
}

// writeFile writes content to a new file of t and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := t.TempDir() + "/file"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
