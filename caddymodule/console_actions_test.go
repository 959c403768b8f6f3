package caddymodule_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/internal/testkit"
)

// consolePost submits a console form of the page at path as the browser's
// operator: the page's CSRF token and return_to, plus form.
func consolePost(t *testing.T, e *env, b *browser, page, action string, form url.Values) (*http.Response, string) {
	t.Helper()
	_, body := b.get(e.Base + page)
	csrf := html.UnescapeString(between(body, `name="csrf_token" value="`, `"`))
	if csrf == "" {
		t.Fatalf("%s has no CSRF token:\n%.500s", page, body)
	}
	f := url.Values{"csrf_token": {csrf}, "return_to": {page}}
	for k, v := range form {
		f[k] = v
	}
	return b.post(e.Base+action, f)
}

// wantAudit fails unless the audit log has an entry of action by actor
// about user (and target, when set).
func wantAudit(t *testing.T, e *env, action, actor, user, target string) {
	t.Helper()
	for _, a := range auditLog(t, e) {
		if a.Msg == action && a.Actor == actor && a.UserID == user && a.Target == target {
			return
		}
	}
	t.Errorf("no audit entry %s by %s about %q %q in %+v", action, actor, user, target, auditLog(t, e))
}

var sessionHandles = regexp.MustCompile(`name="session" value="([0-9a-f]+)"`)

// Every action of a user's page does what it says, through the operations
// layer, and lands in the audit log under the operator's id; on both stores.
func TestConsole_UserActionsTakeEffectAndAreAudited(t *testing.T) {
	for _, storage := range []string{"badger", "postgres"} {
		t.Run(storage, func(t *testing.T) {
			e, _ := newLinkEnv(t, "", "")
			global := e.corp + "\n\t\tadmins ada@example.com"
			if storage == "postgres" {
				global += fmt.Sprintf("\n\t\tstorage postgres {\n\t\t\tdsn %q\n\t\t\tsecret %s\n\t\t}", testkit.OwnPostgres(t), pgSecret)
			}
			if err := e.Load(options{Global: global}); err != nil {
				t.Fatal(err)
			}
			admin := consoleUser(t, e, "Ada Lovelace", "ada@example.com")
			actor := "console:" + userIDOf(t, e, admin)
			bob, bob2 := consoleUser(t, e, "Bob", "bob@example.com"), consoleUser(t, e, "Bob", "bob@example.com")
			if resp, _ := bob.connectCorp(e); resp.StatusCode != http.StatusOK {
				t.Fatalf("connecting corp: %d", resp.StatusCode)
			}
			me := bob.me(e)
			bobID, corpID, devID := me["id"].(string), accountID(me, "oauth_custom_corp"), accountID(me, "oauth_custom_dev")
			if devID == "" {
				devID = accountsOf(me)[0]["id"].(string)
			}
			page := "/_auth/admin/users/" + bobID
			in := func(b *browser) bool { status, _ := apiGet(t, b.c, e.Base+"/x", nil); return status == http.StatusOK }
			done := func(what string, resp *http.Response, body, notice string) {
				t.Helper()
				if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(location(t, resp), page+"?notice="+notice) {
					t.Fatalf("%s: status %d\n%.400s", what, resp.StatusCode, body)
				}
			}

			_, html := admin.get(e.Base + page)
			for _, want := range []string{"bob@example.com", "verified", "Corp", "token fresh", "Revoke all sessions"} {
				if !strings.Contains(html, want) {
					t.Errorf("the user page lacks %q:\n%s", want, html)
				}
			}

			// Metadata: JSON objects only, within the size bound.
			for _, bad := range []url.Values{{"public_metadata": {"[1]"}}, {"private_metadata": {`{"a":`}},
				{"public_metadata": {`{"big":"` + strings.Repeat("x", 9000) + `"}`}}} {
				resp, body := consolePost(t, e, admin, page, page+"/metadata", bad)
				if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Nothing was saved") {
					t.Errorf("metadata %.40v: status %d", bad, resp.StatusCode)
				}
			}
			resp, body := consolePost(t, e, admin, page, page+"/metadata", url.Values{"public_metadata": {`{"plan":"pro"}`}})
			done("metadata", resp, body, "metadata")
			if _, html := admin.get(e.Base + page); !strings.Contains(html, "&#34;plan&#34;: &#34;pro&#34;") {
				t.Errorf("saved metadata not shown:\n%s", html)
			}
			wantAudit(t, e, "user.update", actor, bobID, "")

			// One session.
			_, html = admin.get(e.Base + page)
			handles := sessionHandles.FindAllStringSubmatch(html, -1)
			if len(handles) < 2 {
				t.Fatalf("bob's sessions: %v", handles)
			}
			resp, body = consolePost(t, e, admin, page, page+"/revoke-session", url.Values{"session": {handles[0][1]}})
			done("revoke a session", resp, body, "session_revoked")
			if in(bob) && in(bob2) {
				t.Error("revoking a session left both of bob's browsers signed in")
			}
			wantAudit(t, e, "session.revoke", actor, bobID, "")
			if resp, _ := consolePost(t, e, admin, page, page+"/revoke-session", url.Values{"session": {"00"}}); resp.StatusCode != http.StatusNotFound {
				t.Errorf("revoking an unknown session: status %d", resp.StatusCode)
			}

			// Disconnect: the corp account goes, the last sign-in identity stays.
			resp, body = consolePost(t, e, admin, page, page+"/disconnect", url.Values{"account_id": {corpID}})
			done("disconnect", resp, body, "disconnected")
			wantAudit(t, e, "external_account.disconnect", actor, bobID, "")
			if resp, _ := consolePost(t, e, admin, page, page+"/disconnect", url.Values{"account_id": {devID}}); resp.StatusCode != http.StatusConflict {
				t.Errorf("disconnecting the last sign-in identity: status %d", resp.StatusCode)
			}
			if n := len(accountsOf(bob2.meOrSignIn(e))); n != 1 {
				t.Errorf("bob has %d accounts after the disconnects, want 1", n)
			}

			// Lock: no new sign-in, sessions go on; unlock.
			bob = consoleUser(t, e, "Bob", "bob@example.com")
			resp, body = consolePost(t, e, admin, page, page+"/lock", nil)
			done("lock", resp, body, "locked")
			if !in(bob) {
				t.Error("locking ended bob's session")
			}
			if resp, _ := newBrowser(t).signInDev(e, "/", person("Bob", "bob@example.com", true)); resp.StatusCode != http.StatusForbidden {
				t.Errorf("a locked user signed in: status %d", resp.StatusCode)
			}
			resp, body = consolePost(t, e, admin, page, page+"/unlock", nil)
			done("unlock", resp, body, "unlocked")
			wantAudit(t, e, "user.lock", actor, bobID, "")
			wantAudit(t, e, "user.unlock", actor, bobID, "")

			// Ban: the sessions end; unban.
			resp, body = consolePost(t, e, admin, page, page+"/ban", nil)
			done("ban", resp, body, "banned")
			if in(bob) {
				t.Error("a banned user is still signed in")
			}
			resp, body = consolePost(t, e, admin, page, page+"/unban", nil)
			done("unban", resp, body, "unbanned")
			wantAudit(t, e, "user.ban", actor, bobID, "")
			wantAudit(t, e, "user.unban", actor, bobID, "")

			// Every session.
			bob, bob2 = consoleUser(t, e, "Bob", "bob@example.com"), consoleUser(t, e, "Bob", "bob@example.com")
			resp, body = consolePost(t, e, admin, page, page+"/revoke-sessions", nil)
			done("revoke all", resp, body, "sessions_revoked")
			if in(bob) || in(bob2) {
				t.Error("revoking every session left one")
			}
			wantAudit(t, e, "session.revoke_all", actor, bobID, "")

			// The user's page shows the audit entries about them, newest
			// first, each action in words.
			_, html = admin.get(e.Base + page)
			audited, at := between(html, `<section aria-labelledby="audit">`, `</section>`), -1
			for _, action := range []string{"All sessions revoked", "Ban lifted", "Banned", "Unlocked", "Locked",
				"Account disconnected", "Session revoked", "User updated"} {
				i := strings.Index(audited, "<bdi>"+action+"</bdi>")
				if i <= at {
					t.Errorf("the user page's audit entries lack %s after the newer ones:\n%s", action, audited)
				}
				at = i
			}
			// In the reader's language: the ban in German, not its code.
			req, _ := http.NewRequest(http.MethodGet, e.Base+page, nil)
			req.Header.Set("Accept-Language", "de-DE, en;q=0.5")
			_, html = admin.do(req)
			if audited := between(html, `<section aria-labelledby="audit">`, `</section>`); !strings.Contains(audited, "<bdi>Gesperrt</bdi>") ||
				!strings.Contains(audited, "<bdi>Sperre aufgehoben</bdi>") || strings.Contains(audited, "user.ban") {
				t.Errorf("the German user page's audit entries lack the ban in German:\n%s", audited)
			}
			if !strings.Contains(audited, actor) || !strings.Contains(audited, "Corp "+corpID) {
				t.Errorf("the audit entries lack the operator %s or the disconnected account:\n%s", actor, audited)
			}

			// Operators cannot lock themselves out.
			adminPage := "/_auth/admin/users/" + strings.TrimPrefix(actor, "console:")
			for _, action := range []string{"ban", "lock", "delete"} {
				if resp, _ := consolePost(t, e, admin, adminPage, adminPage+"/"+action, url.Values{"confirm": {strings.TrimPrefix(actor, "console:")}}); resp.StatusCode != http.StatusConflict {
					t.Errorf("an operator's %s of themselves: status %d", action, resp.StatusCode)
				}
			}

			// Delete, confirmed by the id typed exactly.
			if resp, _ := consolePost(t, e, admin, page, page+"/delete", url.Values{"confirm": {"bob"}}); resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("a delete without the typed id: status %d", resp.StatusCode)
			}
			resp, _ = consolePost(t, e, admin, page, page+"/delete", url.Values{"confirm": {bobID}})
			if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(location(t, resp), "/_auth/admin?notice=deleted") {
				t.Fatalf("delete: status %d", resp.StatusCode)
			}
			if resp, _ := admin.get(e.Base + page); resp.StatusCode != http.StatusNotFound {
				t.Errorf("the deleted user's page: status %d", resp.StatusCode)
			}
			wantAudit(t, e, "user.delete", actor, bobID, "")
		})
	}
}

// meOrSignIn is the browser's /me, signing in as Bob again when its session
// has ended.
func (b *browser) meOrSignIn(e *env) map[string]any {
	if status, me := apiGet(b.t, b.c, e.Base+"/_auth/me", nil); status == http.StatusOK {
		return me
	}
	b.signInDev(e, "/", person("Bob", "bob@example.com", true))
	return b.me(e)
}

// A console form without the session's CSRF token changes nothing.
func TestConsole_ActionsNeedTheCSRFToken(t *testing.T) {
	e := consoleEnv(t, "badger", "")
	admin := consoleUser(t, e, "Ada Lovelace", "ada@example.com")
	bob := consoleUser(t, e, "Bob", "bob@example.com")
	page := "/_auth/admin/users/" + userIDOf(t, e, bob)
	for _, csrf := range []string{"", "forged-token-0123456789"} {
		resp, _ := admin.post(e.Base+page+"/ban", url.Values{"csrf_token": {csrf}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("ban with CSRF token %q: status %d", csrf, resp.StatusCode)
		}
	}
	if status, _ := apiGet(t, bob.c, e.Base+"/x", nil); status != http.StatusOK {
		t.Error("a forged form banned bob")
	}
	for _, a := range auditLog(t, e) {
		if a.Msg == "user.ban" {
			t.Errorf("a refused ban was audited: %+v", a)
		}
	}
}

// An operator whose sign-in is older than reauthenticate_after goes through
// the provider again before any change.
func TestConsole_ActionsNeedARecentSignIn(t *testing.T) {
	e := consoleEnv(t, "badger", "reauthenticate_after 2s")
	admin := consoleUser(t, e, "Ada Lovelace", "ada@example.com")
	bob := consoleUser(t, e, "Bob", "bob@example.com")
	page := "/_auth/admin/users/" + userIDOf(t, e, bob)
	_, body := admin.get(e.Base + page)
	csrf := html.UnescapeString(between(body, `name="csrf_token" value="`, `"`))
	time.Sleep(2500 * time.Millisecond)
	resp, _ := admin.post(e.Base+page+"/ban", url.Values{"csrf_token": {csrf}, "return_to": {page}})
	if loc := location(t, resp); !strings.HasPrefix(loc, e.DevURL+"/authorize?") {
		t.Fatalf("a stale operator's ban went to %s, not to the provider", loc)
	}
	if status, _ := apiGet(t, bob.c, e.Base+"/x", nil); status != http.StatusOK {
		t.Error("a stale operator banned bob without signing in again")
	}
	// Signing in again comes back to the user's page; the ban then goes through.
	resp, _ = devReauthenticate(t, e, admin, location(t, resp), person("Ada Lovelace", "ada@example.com", true))
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != page {
		t.Fatalf("after re-authenticating: status %d at %s", resp.StatusCode, resp.Request.URL)
	}
	resp, _ = consolePost(t, e, admin, page, page+"/ban", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ban after re-authenticating: status %d", resp.StatusCode)
	}
	if status, _ := apiGet(t, bob.c, e.Base+"/x", nil); status == http.StatusOK {
		t.Error("bob is still signed in after the ban")
	}
}
