package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/internal/testkit"
)

// These tests put the gateway behind a real Traefik (v3.7.13, which
// test/traefik/install.sh builds from its Go module), configured as
// docs/forward-auth.md says: app1 and app2 are Traefik's routers.

// traefikBin is the Traefik that .ci/run installs.
const traefikBin = "/usr/local/bin/traefik"

// traefikEnv is the gateway with Traefik in front of app1 and app2.
type traefikEnv struct {
	*ssoEnv
	App1, App2 string // http://appN.sso.test:traefikPort
	// encodedSlash leaves out the docs' allowEncodedSlash: false (Traefik's
	// default lets %2f in).
	encodedSlash bool
}

func newTraefikEnv(t *testing.T) *traefikEnv { return startTraefikEnv(t, false) }

func startTraefikEnv(t *testing.T, encodedSlash bool) *traefikEnv {
	t.Helper()
	if _, err := os.Stat(traefikBin); err != nil {
		t.Skip("traefik is not installed (.ci/run installs it)")
	}
	s := &traefikEnv{ssoEnv: startSSOGateway(t), encodedSlash: encodedSlash}
	s.App1 = fmt.Sprintf("http://app1.sso.test:%d", s.traefikPort)
	s.App2 = fmt.Sprintf("http://app2.sso.test:%d", s.traefikPort)
	s.startTraefik()
	return s
}

// replaceAll replaces each old with its new in s, and fails when the
// documentation no longer has an old: the test runs what it says.
func replaceAll(t *testing.T, s string, oldNew ...string) string {
	t.Helper()
	for i := 0; i < len(oldNew); i += 2 {
		if !strings.Contains(s, oldNew[i]) {
			t.Fatalf("docs/forward-auth.md's configuration no longer has %q:\n%s", oldNew[i], s)
		}
		s = strings.ReplaceAll(s, oldNew[i], oldNew[i+1])
	}
	return s
}

// traefikConf returns the static and dynamic configuration of
// docs/forward-auth.md, on the test's addresses, without TLS, with a log
// file and no call home.
func (s *traefikEnv) traefikConf(dir string) (static, dynamic string) {
	t := s.t
	static = replaceAll(t, docCode(t, "docs/forward-auth.md", "Static configuration (`traefik.yml`)", "yaml"),
		`address: ":443"`, fmt.Sprintf(`address: "127.0.0.1:%d"`, s.traefikPort),
		"/etc/traefik/dynamic.yml", filepath.Join(dir, "dynamic.yml"))
	if s.encodedSlash {
		static = replaceAll(t, static, "      encodedCharacters:\n        allowEncodedSlash: false\n", "")
	}
	static += fmt.Sprintf("log:\n  level: DEBUG\n  filePath: %s\nglobal:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n",
		filepath.Join(dir, "traefik.log"))
	dynamic = replaceAll(t, docCode(t, "docs/forward-auth.md", "Dynamic configuration", "yaml"),
		"http://socialgate:8080/", fmt.Sprintf("http://127.0.0.1:%d/", s.gwPort),
		`"http://socialgate:8080"`, fmt.Sprintf(`"http://127.0.0.1:%d"`, s.gwPort),
		".example.com", ".sso.test",
		"http://app1:3000", "http://"+s.Upstream.Addr(),
		"http://app2:3000", "http://"+s.Upstream.Addr(),
		"      tls: {}\n", "")
	return static, dynamic
}

func (s *traefikEnv) startTraefik() {
	t := s.t
	dir := filepath.Join(s.Storage, "traefik")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	static, dynamic := s.traefikConf(dir)
	conf := filepath.Join(dir, "traefik.yml")
	if err := os.WriteFile(filepath.Join(dir, "dynamic.yml"), []byte(dynamic), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(static), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(traefikBin, "--configFile="+conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if log, _ := os.ReadFile(filepath.Join(dir, "traefik.log")); t.Failed() {
			t.Logf("traefik.log:\n%s", log)
		}
	})
	// Traefik listens before it has read the dynamic file, and answers 404
	// until its routers are in place; then the gateway answers a request
	// without a session with 401.
	c := ssoBrowser(t).c
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := c.Get(s.App2 + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return
			}
		}
	}
	t.Fatal("traefik did not route app2 to the gateway")
}

func TestForwardAuth_Traefik_SignInOnceForEveryApp(t *testing.T) {
	s := newTraefikEnv(t)
	b := ssoBrowser(t)

	// Without a session: Traefik passes the gateway's redirect to the
	// browser, which comes back to the page it asked for after sign-in.
	resp, _ := s.signInAt(b, s.App1+"/reports?year=2024&q=a%20b")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != s.App1+"/reports?year=2024&q=a%20b" {
		t.Fatalf("after sign-in the browser is at %s (%d), want the app's page", resp.Request.URL, resp.StatusCode)
	}
	got := s.Upstream.Last(t)
	uid := got.Get("X-Auth-User-Id")
	if uid == "" || got.Get("X-Auth-User-Email") != "ada@example.com" || got.Get("X-Auth-Jwt") == "" || got.Get("X-Auth-Session-Id") == "" {
		t.Fatalf("the app got no identity: %v", got)
	}

	// app2, another host under the cookie domain: signed in already.
	resp, _ = b.get(s.App2 + "/")
	if resp.StatusCode != http.StatusOK || s.Upstream.Last(t).Get("X-Auth-User-Id") != uid {
		t.Fatalf("app2: %d, user %q; want the same user without signing in", resp.StatusCode, s.Upstream.Last(t).Get("X-Auth-User-Id"))
	}
	// Each app's middleware asks its own policy: each identity JWT names
	// its app alone, so app1 cannot replay its copy at app2.
	for app, jwt := range map[string]string{"https://app1.example.com": got.Get("X-Auth-Jwt"), "https://app2.example.com": s.Upstream.Last(t).Get("X-Auth-Jwt")} {
		if aud := fmt.Sprint(identityClaims(t, b, s.env, jwt)["aud"]); aud != app && aud != "["+app+"]" {
			t.Errorf("the identity JWT's aud is %s, want %s", aud, app)
		}
	}

	// Identity headers a client sends never reach the app. Traefik copies
	// them into its question, and the gateway refuses it (400), which
	// Traefik hands to the client: those the gateway answers, and those it
	// does not set for this user (ada has no groups, the policy forwards
	// no token).
	n := len(s.Upstream.Requests())
	for k, v := range map[string]string{
		"X-Auth-User-Id":      "forged-id",
		"X-Auth-User-Email":   "forged@example.com",
		"X-Auth-Jwt":          "forged-jwt",
		"X-Auth-User-Groups":  "forged-admins",
		"X-Auth-Token-Github": "forged-token",
	} {
		req, _ := http.NewRequest(http.MethodGet, s.App1+"/", nil)
		req.Header.Set(k, v)
		if resp, _ = b.do(req); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a signed-in request with the client's %s: %d, want 400", k, resp.StatusCode)
		}
	}
	if len(s.Upstream.Requests()) != n {
		t.Errorf("a request with a client's X-Auth-* header reached the app")
	}
	// Their aliases, which apps read as the same header, Traefik drops at
	// the entry point (aliasHeadersStrategy delete) before anyone reads
	// them: the request goes through without them.
	req, _ := http.NewRequest(http.MethodGet, s.App1+"/", nil)
	for k, v := range map[string]string{
		"X_Auth_User_Id":     "forged-alias-underscore",
		"X_Auth_User_Groups": "forged-alias-groups",
		"X.Auth.User.Id":     "forged-alias-dot",
	} {
		req.Header[k] = []string{v}
	}
	if resp, _ = b.do(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("a signed-in request with aliased headers: %d, want them dropped", resp.StatusCode)
	}
	got = s.Upstream.Last(t)
	for k, vs := range got {
		for _, v := range vs {
			if strings.HasPrefix(v, "forged") {
				t.Errorf("the app got the client's %s: %s", k, v)
			}
		}
	}
	if got.Get("X-Auth-User-Id") != uid || got.Get("X-Auth-User-Email") != "ada@example.com" {
		t.Errorf("the app got another identity: %v", got)
	}

	// Sign-out at the gateway ends the session for every app behind
	// Traefik, and a copy of the cookie kept from before is dead too.
	var kept string
	for _, c := range b.c.Jar.Cookies(mustURL(s.App1)) {
		if strings.HasSuffix(c.Name, "socialgate_session") {
			kept = c.Name + "=" + c.Value
		}
	}
	if kept == "" {
		t.Fatal("no session cookie for app1's host")
	}
	n = len(s.Upstream.Requests())
	if resp = b.signOut(s.env, s.App2+"/bye"); location(t, resp) != s.App2+"/bye" {
		t.Errorf("sign-out sent the browser to %s, want back to app2", location(t, resp))
	}
	for _, app := range []string{s.App1, s.App2} {
		resp, _ = b.get(app + "/")
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(location(t, resp), s.Auth+"/_auth/sign-in?") {
			t.Errorf("%s after sign-out: %d, want a sign-in redirect", app, resp.StatusCode)
		}
	}
	req, _ = http.NewRequest(http.MethodGet, s.App1+"/", nil)
	req.Header.Set("Cookie", kept)
	if resp, _ = ssoBrowser(t).do(req); resp.StatusCode != http.StatusFound {
		t.Errorf("the cookie kept from before sign-out: %d, want a sign-in redirect", resp.StatusCode)
	}
	if len(s.Upstream.Requests()) != n {
		t.Errorf("requests reached the app after sign-out")
	}
}

func TestForwardAuth_Traefik_RefusesWithoutASessionAndSpoofing(t *testing.T) {
	s := newTraefikEnv(t)
	b := ssoBrowser(t)

	// Identity headers alone buy nothing: refused. Without them, a
	// navigation is sent to sign in and a fetch gets the 401 JSON.
	req, _ := http.NewRequest(http.MethodGet, s.App1+"/admin", nil)
	req.Header.Set("X-Auth-User-Id", "user_evil")
	resp, _ := b.do(req)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("a client's X-Auth-User-Id without a session: %d to %q, want 400", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = b.get(s.App1 + "/admin")
	if loc := location(t, resp); resp.StatusCode != http.StatusFound || loc != s.Auth+"/_auth/sign-in?return_to="+url.QueryEscape(s.App1+"/admin") {
		t.Errorf("a navigation without a session: %d to %s, want a sign-in redirect", resp.StatusCode, loc)
	}
	code, body := apiGet(t, b.c, s.App1+"/api", nil)
	if code != http.StatusUnauthorized || body["sign_in_url"] == nil {
		t.Errorf("a fetch without a session: %d %v, want 401 with sign_in_url", code, body)
	}

	// Forwarded headers from the client do not steer where the browser
	// comes back to: Traefik names the original request itself.
	req, _ = http.NewRequest(http.MethodGet, s.App1+"/x", nil)
	req.Header.Set("X-Forwarded-Host", "evil.test")
	req.Header.Set("X-Forwarded-Uri", "//evil.test/")
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-Method", http.MethodPost)
	resp, _ = b.do(req)
	if loc := location(t, resp); loc != s.Auth+"/_auth/sign-in?return_to="+url.QueryEscape(s.App1+"/x") {
		t.Errorf("forwarded headers from the client steered the sign-in to %s", loc)
	}
	// Traefik passes the client's X-Original-URL on: the gateway refuses
	// the question as ambiguous rather than redirecting anywhere.
	req, _ = http.NewRequest(http.MethodGet, s.App1+"/", nil)
	req.Header.Set("X-Original-URL", "http://evil.test/")
	if resp, _ = b.do(req); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("a planted X-Original-URL: %d to %q, want 400", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(s.Upstream.Requests()) != 0 {
		t.Errorf("%d requests without a session reached the app", len(s.Upstream.Requests()))
	}
}

// The Docker labels of docs/forward-auth.md say what its file provider
// configuration, which the tests above run, says.
func TestForwardAuth_TraefikDockerLabelsMatchTheFileProvider(t *testing.T) {
	labels := docCode(t, "docs/forward-auth.md", "Docker labels", "yaml")
	for _, want := range []string{
		`"--entryPoints.websecure.http.aliasHeadersStrategy=delete"`,
		`"--entryPoints.websecure.http.encodedCharacters.allowEncodedSlash=false"`,
		`"traefik.http.routers.app1.middlewares=socialgate-app1@docker"`,
		`"traefik.http.middlewares.socialgate-app1.forwardauth.address=http://socialgate:8080/_auth/verify/app1"`,
		`"traefik.http.middlewares.socialgate-app1.forwardauth.trustForwardHeader=false"`,
		`"traefik.http.middlewares.socialgate-app1.forwardauth.authResponseHeadersRegex=^X-Auth-"`,
		`"traefik.http.middlewares.socialgate-app1.forwardauth.authResponseHeaders=Cookie,Authorization"`,
		"\"traefik.http.routers.auth.rule=Host(`auth.example.com`) && !PathPrefix(`/_auth/verify`)\"",
	} {
		if !strings.Contains(labels, want) {
			t.Errorf("the Docker labels lack %s", want)
		}
	}
	// The list form names Cookie and Authorization alone: for the X-Auth-* headers it would
	// let a client send those not listed.
	if strings.Count(labels, "authResponseHeaders=") != 1 {
		t.Error("the Docker labels list authResponseHeaders beyond Cookie and Authorization, which lets a client send the X-Auth-* headers not listed")
	}
}

// A client reaching the gateway's pages through Traefik, a trusted peer,
// cannot ask the verify endpoint: the public router leaves it out, so
// every policy name, existing or not, in any spelling of the path, gets
// the same answer, while the sign-in page passes. Traefik's router
// compares the path as sent, the gateway the decoded one: an encoded
// slash or underscore gets the gateway's 404 (it answers verify only in
// its clean spelling) with Traefik's default, which lets %2f in; with the
// docs' allowEncodedSlash: false, Traefik refuses %2f itself (400).
func TestForwardAuth_Traefik_PublicRouterHidesTheVerifyEndpoint(t *testing.T) {
	for _, encodedSlash := range []bool{false, true} {
		t.Run(fmt.Sprintf("encoded slash allowed %v", encodedSlash), func(t *testing.T) {
			s := startTraefikEnv(t, encodedSlash)
			b := ssoBrowser(t)
			auth := fmt.Sprintf("http://auth.sso.test:%d", s.traefikPort)
			resp, page := b.get(auth + "/_auth/sign-in")
			if _, _, err := testkit.SignInButton(page, "dev"); resp.StatusCode != http.StatusOK || err != nil {
				t.Fatalf("the sign-in page through Traefik: %d, %v", resp.StatusCode, err)
			}
			for _, path := range []string{"/_auth/verify", "/_auth/verify/nobody", "/_auth/verify/default", "/_auth/verify/nope",
				"/_auth/verify/nope/x", "/_auth//verify/nobody", "/_auth/./verify/nobody", "/_auth/%76erify/nobody", "/_auth/verify/%6eobody",
				"/_auth%2fverify", "/_auth%2Fverify/nobody", "/_auth%2Fverify/nope", "/%5fauth/verify", "/_auth/verify%2fnobody"} {
				req, _ := http.NewRequest(http.MethodGet, auth+path, nil)
				req.Header.Set("X-Original-URL", s.App1+"/")
				req.Header.Set("Accept", "application/json")
				resp, body := b.do(req)
				want := http.StatusNotFound
				if !encodedSlash && strings.Contains(strings.ToLower(path), "%2f") && !strings.HasPrefix(path, "/_auth/verify") {
					want = http.StatusBadRequest // Traefik's refusal, once a router took it
				}
				if resp.StatusCode != want || strings.Contains(body, "policy") || strings.Contains(body, "sign_in_url") {
					t.Errorf("%s through Traefik's public router: %d %q, want %d and no answer of verify's", path, resp.StatusCode, body, want)
				}
			}
		})
	}
}

// Behind Traefik too, the app gets its own cookies and none of the
// gateway's: authResponseHeaders lists Cookie, so Traefik replaces the
// request's with verify's answer, and removes it when the answer has none.
func TestForwardAuth_Traefik_GatewayCookiesNeverReachTheApp(t *testing.T) {
	s := newTraefikEnv(t)
	b := ssoBrowser(t)
	s.signInAt(b, s.App1+"/")
	appGetsItsOwnCookies(t, s.ssoEnv, appSessionCookie(t, b, s.App1), s.App1, s.App2)
}
