package caddymodule_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
	"github.com/socialgate/socialgate/internal/testkit"
)

// Caddy's access log (sent to the default log by the site's bare log
// directive) and its DEBUG entries, through the docs' filter: web and
// native sign-ins, forwarded tokens, a token read through the API and a
// sign-out at the provider leave no secret behind (the leak check at cleanup knows every cookie, code,
// state, nonce, challenge, rotating token nonce, session token, identity
// token and provider token of the test), yet the entries are there.
func TestLogs_CaddysLogsKeepNoSecret(t *testing.T) {
	op := startOP(t, testop.Options{})
	e := &env{t: t, Storage: t.TempDir(), Upstream: newUpstream(t), port: testkit.FreePort(t), devPort: testkit.FreePort(t)}
	e.Base = fmt.Sprintf("http://127.0.0.1:%d", e.port)
	e.DevURL = fmt.Sprintf("http://127.0.0.1:%d", e.devPort)
	up := e.Upstream.Addr()
	err := e.Load(options{
		Global: fmt.Sprintf("provider oidc corp {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret test-secret\n\t\t\tsign_out_at_provider on\n\t\t}\n\t\t"+
			"api_key %s\n\t\tredirect_urls myapp://cb", op.URL(), apiKey),
		Site: "log\n\troute /dev/* {\n\t\tsocialgate {\n\t\t\tforward_token dev\n\t\t}\n\t\treverse_proxy " + up + "\n\t}\n\t" +
			"route /corp/* {\n\t\tsocialgate {\n\t\t\tforward_token corp header Authorization\n\t\t}\n\t\treverse_proxy " + up + "\n\t}",
	})
	if err != nil {
		t.Fatal(err)
	}
	e.stopAtCleanup()

	// Web sign-ins, then the forwarded tokens.
	web := newBrowser(t)
	web.signInDev(e, "/dev/x", ada)
	corp := newBrowser(t)
	signInCorp(corp, e)
	if status, _ := apiGet(t, corp.c, e.Base+"/corp/x", nil); status != http.StatusOK {
		t.Fatalf("forward_token corp: %d", status)
	}

	// A native sign-in; its session token on a protected route.
	token, _ := signInNative(t, e)
	if status, _ := apiGet(t, http.DefaultClient, e.Base+"/corp/y", http.Header{"Authorization": {"Bearer " + token}}); status != http.StatusOK {
		t.Fatalf("the session token on a protected route: %d", status)
	}

	// A provider token read through the backend API.
	userID := e.Upstream.Last(t).Get("X-Auth-User-Id")
	if status, _, _ := apiCall(t, e, http.MethodGet, "/users/"+userID+"/oauth_access_tokens/corp"); status != http.StatusOK {
		t.Fatalf("reading the token through the API: %d", status)
	}

	// A sign-out at the provider, there and back.
	resp, _ := corp.get(location(t, corp.signOut(e, "/bye")))
	corp.get(location(t, resp))

	// The leak check runs at cleanup; the entries must be there to check.
	caddy.Stop()
	var seen struct{ callback, start, native, upstream, audit, signOut, signedOut bool }
	f, err := os.Open(filepath.Join(e.Storage, "debug.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var entry struct {
			Logger, Msg, Actor, Provider string
			Request                      struct {
				URI     string
				Headers map[string][]string
			}
			RespHeaders map[string][]string `json:"resp_headers"`
		}
		json.Unmarshal(sc.Bytes(), &entry)
		loc := strings.Join(entry.RespHeaders["Location"], " ")
		seen.callback = seen.callback || strings.Contains(entry.Request.URI, "/callback?") && strings.Contains(entry.Request.URI, "code=REDACTED") &&
			strings.Contains(entry.Request.URI, "state=REDACTED")
		seen.start = seen.start || strings.Contains(loc, "state=REDACTED") && strings.Contains(loc, "nonce=REDACTED") &&
			strings.Contains(loc, "code_challenge=REDACTED")
		seen.native = seen.native || strings.Contains(loc, "myapp://cb?rotating_token_nonce=REDACTED")
		seen.signOut = seen.signOut || strings.Contains(loc, "id_token_hint=REDACTED") && strings.Contains(loc, "state=REDACTED")
		seen.signedOut = seen.signedOut || strings.Contains(entry.Request.URI, "/_auth/signed-out?state=REDACTED")
		seen.upstream = seen.upstream || entry.Msg == "upstream roundtrip" && entry.Request.Headers["X-Auth-User-Id"] != nil
		seen.audit = seen.audit || entry.Logger == "socialgate.audit" && entry.Msg == "oauth_token.read" &&
			strings.HasPrefix(entry.Actor, "api_key:") && entry.Provider == "corp"
	}
	if !seen.callback || !seen.start || !seen.native || !seen.upstream || !seen.audit || !seen.signOut || !seen.signedOut {
		t.Errorf("the log lacks entries it should hold, filtered: %+v", seen)
	}
}
