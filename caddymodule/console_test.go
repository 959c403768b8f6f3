package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/internal/testkit"
)

// consoleEnv runs a gateway whose console admits ada@example.com, on the
// Badger store or (storage "postgres") on a private PostgreSQL server.
func consoleEnv(t *testing.T, storage, global string) *env {
	t.Helper()
	global = "admins ada@example.com\n\t\t" + global
	if storage == "postgres" {
		global += fmt.Sprintf("\n\t\tstorage postgres {\n\t\t\tdsn %q\n\t\t\tsecret %s\n\t\t}", testkit.OwnPostgres(t), pgSecret)
	}
	return newEnv(t, options{Global: global})
}

// consoleUser signs a browser in through the dev provider as a person.
func consoleUser(t *testing.T, e *env, name, email string) *browser {
	b := newBrowser(t)
	b.signInDev(e, "/", person(name, email, true))
	return b
}

var userIDPattern = regexp.MustCompile(`user_[0-9a-zA-Z]+`)

// userIDOf is the id of the user signed in on b.
func userIDOf(t *testing.T, e *env, b *browser) string {
	t.Helper()
	_, me := apiGet(t, b.c, e.Base+"/_auth/me", nil)
	id, _ := me["id"].(string)
	if id == "" {
		t.Fatalf("/me: %v", me)
	}
	return id
}

// auditEntry is one line of the socialgate.audit log.
type auditEntry struct {
	Logger, Msg                                string
	Actor, UserID, Provider, ExternalAccountID string
	Target                                     string
}

// auditLog returns the audit entries the gateway wrote so far.
func auditLog(t *testing.T, e *env) []auditEntry {
	t.Helper()
	data, _ := os.ReadFile(filepath.Join(e.Storage, "debug.log"))
	var out []auditEntry
	for _, line := range strings.Split(string(data), "\n") {
		var raw map[string]any
		if json.Unmarshal([]byte(line), &raw) != nil || raw["logger"] != "socialgate.audit" {
			continue
		}
		s := func(k string) string { v, _ := raw[k].(string); return v }
		out = append(out, auditEntry{Logger: s("logger"), Msg: s("msg"), Actor: s("actor"), UserID: s("user_id"),
			Provider: s("provider"), ExternalAccountID: s("external_account_id"), Target: s("target")})
	}
	return out
}

func TestConsole_OnlyAdminsGetIn(t *testing.T) {
	e := consoleEnv(t, "badger", "")
	mallory := consoleUser(t, e, "Mallory", "mallory@example.com")
	ada := consoleUser(t, e, "Ada Lovelace", "ada@example.com")

	resp, _ := newBrowser(t).get(e.Base + "/_auth/admin")
	if loc := location(t, resp); !strings.Contains(loc, "/_auth/sign-in?return_to=%2F_auth%2Fadmin") {
		t.Errorf("anonymous visitor sent to %s, want the sign-in page", loc)
	}
	for _, path := range []string{"/_auth/admin", "/_auth/admin/gateway", "/_auth/admin/users/" + userIDOf(t, e, ada)} {
		resp, page := mallory.get(e.Base + path)
		if resp.StatusCode != http.StatusForbidden || strings.Contains(page, "Ada") || strings.Contains(page, "Users") {
			t.Errorf("GET %s as a non-admin: status %d\n%.400s", path, resp.StatusCode, page)
		}
		// They see who they are signed in as, and can sign out to sign in
		// with another account.
		if !strings.Contains(page, "signed in as mallory@example.com") || !strings.Contains(page, `<form method="post" action="/_auth/sign-out">`) {
			t.Errorf("GET %s as a non-admin: the 403 page lacks the account or the sign-out form\n%s", path, page)
		}
	}
	resp, page := mallory.post(e.Base+"/_auth/admin/users/"+userIDOf(t, e, ada)+"/ban", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST ban as a non-admin: status %d\n%.300s", resp.StatusCode, page)
	}

	resp, page = ada.get(e.Base + "/_auth/admin")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "mallory@example.com") || !strings.Contains(page, "1–2 of 2") {
		t.Fatalf("the admin's user list: status %d\n%s", resp.StatusCode, page)
	}
	if strings.Index(page, "ada@example.com") > strings.Index(page, "mallory@example.com") {
		t.Error("the user list is not newest first")
	}
	for q, want := range map[string]string{"mall": "mallory@example.com", "ADA": "ada@example.com",
		userIDOf(t, e, mallory): "mallory@example.com", "mallory@example.com": "mallory@example.com"} {
		_, page := ada.get(e.Base + "/_auth/admin?q=" + q)
		if !strings.Contains(page, want) || !strings.Contains(page, "1–1 of 1") {
			t.Errorf("search %q does not find only %s:\n%s", q, want, page)
		}
	}
	if _, page := ada.get(e.Base + "/_auth/admin?q=nobody"); !strings.Contains(page, "No users found") {
		t.Errorf("a search that finds nobody:\n%s", page)
	}
	// In the reader's language, like every page of the gateway.
	req, _ := http.NewRequest(http.MethodGet, e.Base+"/_auth/admin", nil)
	req.Header.Set("Accept-Language", "de-DE, en;q=0.5")
	if _, page := ada.do(req); !strings.Contains(page, `<html lang="de"`) || !strings.Contains(page, "1–2 von 2") ||
		!strings.Contains(page, "Nach E-Mail, Name, ID oder externer ID suchen") {
		t.Errorf("the console in German:\n%s", page)
	}
	req, _ = http.NewRequest(http.MethodGet, e.Base+"/_auth/admin", nil)
	req.Header.Set("Accept-Language", "ar")
	if _, page := mallory.do(req); !strings.Contains(page, `dir="rtl"`) || !strings.Contains(page, "ليس لديك صلاحية الوصول إلى هذه الصفحة.") {
		t.Errorf("the 403 page in Arabic:\n%s", page)
	}
	// The 403 page's sign-out button signs them out.
	_, page = mallory.get(e.Base + "/_auth/admin")
	csrf := html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))
	if resp, _ := mallory.post(e.Base+"/_auth/sign-out", url.Values{"csrf_token": {csrf}}); resp.StatusCode >= 400 {
		t.Fatalf("signing out from the 403 page: status %d", resp.StatusCode)
	}
	if resp, _ := mallory.get(e.Base + "/_auth/admin"); resp.StatusCode == http.StatusForbidden {
		t.Error("still signed in after the 403 page's sign-out")
	}
}

func TestConsole_NotServedWithoutAdmins(t *testing.T) {
	e := newEnv(t, options{})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	if resp, _ := b.get(e.Base + "/_auth/admin"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the console without admins: status %d, want 404", resp.StatusCode)
	}
}

func TestConsole_AdminsConfigErrorsNameTheRule(t *testing.T) {
	e := newEnv(t, options{})
	for global, want := range map[string]string{
		"admins example.com": `admins: "example.com" is not provider:group`,
		"admins a*b@x.org":   `admins: "a*b@x.org": an address has no *`,
		"admins nope:ops":    `admins: "nope:ops": no provider named nope is configured`,
		"admins":             "wrong argument count",
	} {
		if err := e.Load(options{Global: global}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", global, err, want)
		}
	}
}
