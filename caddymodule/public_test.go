package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// recipeSite is the body of the "protect by default" site block of
// docs/recipes.md.
func recipeSite(t *testing.T) string {
	t.Helper()
	block := docBlock(t, "docs/recipes.md", "## Protect by default, open by exception")
	_, body, _ := strings.Cut(block, "{\n")
	return body[:strings.LastIndex(body, "}")]
}

// bypasses are paths that Caddy does not match as /admin/* but that some
// servers read as /admin/… (Tomcat: ";" parameters; IIS: "\", trailing
// dots; C: NUL), and public paths that they read as /admin/….
var bypasses = []string{
	"/admin;x/y", "/admin%5cx", "/admin%2e/x", "/admin%00/x", "/admin./x", "/ADMIN/x", "//admin/x", "/admin%2fx",
	"/x/..;/admin", "/blog/..;/admin", "/blog/..%3b/admin", "/blog/..%5cadmin", "/blog/%2e%2e/admin", "/blog/.%2e/admin",
	"/blog/%252e%252e/admin", "/blog/..%00/admin", "/blog/..%20/admin", "/blog/.%20./admin", "/blog/...;/admin",
	"/blog/%ef%bc%8e%ef%bc%8e/admin", "/blog/%c0%ae%c0%ae/admin", "/blog/x/..%2f..%2fadmin", "/blog/%0a/admin",
	"/assets/..\\admin", "/blog;/../admin", "/blog/./../admin",
}

func TestRecipe_ProtectByDefaultOpenByException(t *testing.T) {
	e := newEnv(t, options{Body: recipeSite(t)})
	host := strings.TrimPrefix(e.Base, "http://")
	get := func(path string, header string) (*http.Response, bool) {
		t.Helper()
		before := len(e.Upstream.Requests())
		resp, _ := advRaw(t, e, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\nAccept: application/json\r\n"+header+"Connection: close\r\n\r\n")
		return resp, len(e.Upstream.Requests()) > before
	}
	spoof := "X-Auth-User-Id: user_attacker\r\nx_auth_user_email: ceo@example.com\r\nX-Auth-Jwt: forged\r\n" +
		"Cookie: theme=dark; socialgate_session=junk; socialgate_flow=" + strings.Repeat("f", 43) + "\r\n"

	// Anonymous: the public paths open, the rest needs a session.
	for _, path := range []string{"/", "/blog/post", "/assets/app.js", "/BLOG/Post"} {
		resp, reached := get(path, spoof)
		if resp.StatusCode != http.StatusOK || !reached {
			t.Fatalf("GET %s: status %d", path, resp.StatusCode)
		}
		checkAnonymous(t, "GET "+path, e.Upstream.Last(t))
	}
	for _, path := range append([]string{"/admin/x", "/other", "/blogs"}, bypasses...) {
		resp, reached := get(path, spoof)
		if reached || resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("GET %s without a session: status %d, reached the upstream: %v", path, resp.StatusCode, reached)
		}
	}

	// Signed in: everything passes with the identity, and the public paths
	// carry it too; the gateway's credentials never go upstream.
	b := newBrowser(t)
	b.signInDev(e, "/admin/x", ada)
	user := e.Upstream.Last(t).Get("X-Auth-User-Id")
	cookie := "Cookie: theme=dark; " + sessionCookie(b, e) + "\r\n"
	for _, path := range []string{"/", "/blog/post", "/admin/x", "/admin;x/y"} {
		resp, reached := get(path, cookie+"X-Auth-User-Id: user_attacker\r\n")
		h := e.Upstream.Last(t)
		if resp.StatusCode != http.StatusOK || !reached || h.Get("X-Auth-User-Id") != user || h.Get("X-Auth-Jwt") == "" {
			t.Errorf("GET %s signed in: status %d, upstream user %q", path, resp.StatusCode, h.Get("X-Auth-User-Id"))
		}
		if got := h.Get("Cookie"); got != "theme=dark" {
			t.Errorf("GET %s signed in: upstream Cookie %q", path, got)
		}
	}
	// Ambiguous public paths stay refused with a session: a stricter rule
	// on the path they lead to must not be bypassed through them.
	if resp, reached := get("/blog/..;/admin", cookie); resp.StatusCode != http.StatusBadRequest || reached {
		t.Errorf("GET /blog/..;/admin signed in: status %d, reached the upstream: %v", resp.StatusCode, reached)
	}
	// A dead session on a public path is no session.
	resp, reached := get("/blog/post", "Cookie: socialgate_session="+strings.Repeat("A", 80)+"\r\n")
	if resp.StatusCode != http.StatusOK || !reached {
		t.Fatalf("public path with a junk cookie: status %d", resp.StatusCode)
	}
	checkAnonymous(t, "junk cookie", e.Upstream.Last(t))
}

// checkAnonymous fails unless an upstream request carries no identity and
// none of the gateway's cookies.
func checkAnonymous(t *testing.T, what string, h http.Header) {
	t.Helper()
	for k, v := range h {
		if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-auth-") {
			t.Errorf("%s: the upstream received %s: %q", what, k, v)
		}
	}
	if got := h.Get("Cookie"); got != "theme=dark" && got != "" {
		t.Errorf("%s: the upstream received Cookie %q", what, got)
	}
}

// The recipes' advice for a stricter sub-path of a protected site: a broad
// matcher that takes paths with ";" or "\" too.
func TestRecipe_StricterSubPathBindsEverySpelling(t *testing.T) {
	e := newEnv(t, options{Body: `@admin path /admin* *;* *\*
	handle @admin {
		socialgate {
			allow_emails root@example.com
		}
		reverse_proxy localhost:3000
	}
	handle {
		socialgate
		reverse_proxy localhost:3000
	}`})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	host := strings.TrimPrefix(e.Base, "http://")
	for _, path := range []string{"/admin/x", "/admin;x/y", "/admin%5cx", "/admin%2e/x", "/admin%00/x", "/ADMIN/x", "//admin/x",
		"/x/..;/admin", "/x/..%5cadmin", "/x/%2e%2e/admin", "/x/..%3b/admin"} {
		before := len(e.Upstream.Requests())
		resp, _ := advRaw(t, e, fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\nCookie: %s\r\nConnection: close\r\n\r\n",
			path, host, sessionCookie(b, e)))
		if len(e.Upstream.Requests()) > before {
			t.Errorf("GET %s: a user the admin route does not admit reached the upstream (status %d)", path, resp.StatusCode)
		}
	}
	if status, _ := apiGet(t, b.c, e.Base+"/inbox", nil); status != http.StatusOK {
		t.Errorf("the rest of the site: %d", status)
	}
}

func TestPublic_ConfigMistakesFailAtLoad(t *testing.T) {
	e := newEnv(t, options{})
	for body, want := range map[string]string{
		"socialgate public {\n\t\trequire dev\n\t}":               "cannot also require",
		"socialgate {\n\t\tpublic\n\t\tallow_emails *@x.org\n\t}": "cannot also require, forward_token, allow_emails",
		"socialgate private":                                      `unknown argument "private"`,
		"socialgate public extra":                                 "wrong argument count",
	} {
		if err := e.Load(options{Body: body + "\n\treverse_proxy localhost:3000"}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}

// A protected route inside a public handler finds the session that the
// public one read (and took off the request).
func TestPublic_InnerProtectedRouteSeesTheSession(t *testing.T) {
	e := newEnv(t, options{Body: "socialgate public\n\troute /drafts/* {\n\t\tsocialgate\n\t}\n\treverse_proxy localhost:3000"})
	if status, _ := apiGet(t, http.DefaultClient, e.Base+"/drafts/x", nil); status != http.StatusUnauthorized {
		t.Errorf("anonymous on the inner route: %d, want 401", status)
	}
	b := newBrowser(t)
	b.signInDev(e, "/drafts/x", ada)
	user := e.Upstream.Last(t).Get("X-Auth-User-Id")
	for _, path := range []string{"/drafts/x", "/post"} {
		status, _ := apiGet(t, b.c, e.Base+path, nil)
		if h := e.Upstream.Last(t); status != http.StatusOK || user == "" || h.Get("X-Auth-User-Id") != user ||
			strings.Contains(h.Get("Cookie"), "socialgate_session") {
			t.Errorf("%s signed in: %d, upstream user %q (want %q), Cookie %q", path, status, h.Get("X-Auth-User-Id"), user, h.Get("Cookie"))
		}
	}
}
