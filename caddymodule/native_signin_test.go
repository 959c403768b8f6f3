package caddymodule_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/testop"
	"github.com/socialgate/socialgate/internal/testkit"
)

// iosClient is the client id of the native app in these tests.
const iosClient = "ios.apps.example"

// issueNonce asks the gateway for a sign-in nonce bound to app's challenge.
func issueNonce(t *testing.T, e *env, app nativeApp) string {
	t.Helper()
	status, out := postJSON(t, e.Base+"/_auth/native/nonce", map[string]any{"code_challenge": app.challenge})
	nonce, _ := out["nonce"].(string)
	exp, _ := out["expires_at"].(float64)
	if status != http.StatusOK || out["object"] != "native_nonce" || nonce == "" || time.UnixMilli(int64(exp)).Before(time.Now()) {
		t.Fatalf("POST /native/nonce: %d %v", status, out)
	}
	recordSecret(nonce) // the log check looks for it
	return nonce
}

func hexSHA256(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// errorCode is the code of a JSON error answer.
func errorCode(out map[string]any) string {
	errs, _ := out["errors"].([]any)
	if len(errs) != 1 {
		return ""
	}
	code, _ := errs[0].(map[string]any)["code"].(string)
	return code
}

// newNativeIDTokenEnv runs the gateway with corp, whose native SDK issues
// ID tokens for iosClient (native_client_ids lists nativeIDs), with
// refresh tokens when refresh is set; extra goes into the global block.
func newNativeIDTokenEnv(t *testing.T, nativeIDs string, refresh bool, extra string) (*env, *testop.Server) {
	op := startOP(t, testop.Options{IssueRefreshToken: refresh})
	e := &env{t: t, Storage: t.TempDir(), Upstream: newUpstream(t), port: testkit.FreePort(t), devPort: testkit.FreePort(t)}
	e.Base = fmt.Sprintf("http://127.0.0.1:%d", e.port)
	e.DevURL = fmt.Sprintf("http://127.0.0.1:%d", e.devPort)
	e.corp = fmt.Sprintf("provider oidc corp {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret test-secret\n\t\t\tnative_client_ids %s\n\t\t}\n\t\tapi_key %s\n\t\t%s",
		op.URL(), nativeIDs, apiKey, extra)
	if err := e.Load(options{Global: e.corp, NoDev: true}); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	e.stopAtCleanup()
	return e, op
}

func postIDToken(t *testing.T, e *env, idToken, nonce, verifier string) (int, map[string]any) {
	t.Helper()
	return postJSON(t, e.Base+"/_auth/native/id_token", map[string]any{"provider": "corp", "id_token": idToken, "nonce": nonce, "code_verifier": verifier})
}

func TestNativeIDToken_SignsInOnceWithANonceTheGatewayIssued(t *testing.T) {
	e, op := newNativeIDTokenEnv(t, iosClient, false, "")
	app := newNativeApp()
	nonce := issueNonce(t, e, app)
	idToken := op.NativeIDToken(iosClient, nonce)

	status, out := postIDToken(t, e, idToken, nonce, app.verifier)
	if status != http.StatusOK || out["session_token"] == nil {
		t.Fatalf("native sign-in: %d %v", status, out)
	}
	// No grant behind it: the session lasts a day, not the session lifetime.
	expires := time.UnixMilli(int64(out["session"].(map[string]any)["abandon_at"].(float64)))
	if d := time.Until(expires); d > 24*time.Hour || d < 23*time.Hour {
		t.Errorf("the session expires in %v, want 24h (id_token_session_lifetime)", d)
	}
	bearer := http.Header{"Authorization": {"Bearer " + out["session_token"].(string)}}
	if status, _ := apiGet(t, http.DefaultClient, e.Base+"/", bearer); status != http.StatusOK {
		t.Fatalf("session token: %d", status)
	}

	for name, try := range map[string]struct{ idToken, nonce, verifier string }{
		"the same token again":                           {idToken, nonce, app.verifier},
		"a captured token with its nonce claim as nonce": {op.NativeIDToken(iosClient, "x"+nonce[1:]), "x" + nonce[1:], app.verifier},
		"a token with a nonce the client chose":          {op.NativeIDToken(iosClient, "client-chosen"), "client-chosen", app.verifier},
		"no nonce":                                       {op.NativeIDToken(iosClient, ""), "", app.verifier},
	} {
		t.Run(name, func(t *testing.T) {
			if status, out := postIDToken(t, e, try.idToken, try.nonce, try.verifier); status != http.StatusBadRequest || errorCode(out) != "invalid_nonce" {
				t.Errorf("status %d %v, want 400 invalid_nonce", status, out)
			}
		})
	}

	t.Run("a nonce redeemed without the app's verifier is burnt", func(t *testing.T) {
		nonce := issueNonce(t, e, app)
		idToken := op.NativeIDToken(iosClient, nonce)
		for _, verifier := range []string{"", strings.Repeat("attacker-verifier-", 3), app.challenge} {
			if status, out := postIDToken(t, e, idToken, nonce, verifier); status != http.StatusBadRequest || errorCode(out) != "invalid_nonce" {
				t.Errorf("verifier %q: status %d %v", verifier, status, out)
			}
		}
		if status, _ := postIDToken(t, e, idToken, nonce, app.verifier); status != http.StatusBadRequest {
			t.Errorf("the app redeemed a nonce that a wrong verifier had burnt: %d", status)
		}
	})
	t.Run("a bad challenge gets no nonce", func(t *testing.T) {
		if status, out := postJSON(t, e.Base+"/_auth/native/nonce", map[string]any{"code_challenge": "short"}); status != http.StatusBadRequest || errorCode(out) != "invalid_code_challenge" {
			t.Errorf("a bad challenge: %d %v", status, out)
		}
	})
	if n := userCount(t, e); n != 1 {
		t.Errorf("%d users, want 1", n)
	}
}

func TestNativeIDToken_RefusesTheWebFlowsToken(t *testing.T) {
	e, op := newNativeIDTokenEnv(t, iosClient, false, "")
	b := newBrowser(t)
	signInCorp(b, e)
	userID := b.me(e)["id"].(string)
	// The backend API hands out no ID token to replay.
	status, _, body := apiCall(t, e, "GET", "/users/"+userID+"/oauth_access_tokens/corp")
	if status != http.StatusOK || strings.Contains(mustJSON(t, body), "id_token") || strings.Contains(mustJSON(t, body), "eyJ") {
		t.Fatalf("oauth_access_tokens: %d %v", status, body)
	}
	// The web flow's ID token, captured anyway (here from the provider).
	var webToken string
	for _, s := range op.Secrets() {
		if strings.HasPrefix(s, "eyJ") {
			webToken = s
		}
	}
	if webToken == "" {
		t.Fatal("the web flow issued no ID token")
	}
	app := newNativeApp()
	if status, out := postIDToken(t, e, webToken, issueNonce(t, e, app), app.verifier); status != http.StatusUnauthorized || errorCode(out) != "invalid_id_token" {
		t.Errorf("the web client's audience on the native path: %d %v", status, out)
	}

	// Even with the web client listed for native use, its nonce was never
	// issued to an app: the web flow's token buys no native session.
	e.corp = strings.Replace(e.corp, "native_client_ids "+iosClient, "native_client_ids "+iosClient+" test-client", 1)
	if err := e.Load(options{Global: e.corp, NoDev: true}); err != nil {
		t.Fatal(err)
	}
	if status, out := postIDToken(t, e, webToken, issueNonce(t, e, app), app.verifier); status != http.StatusUnauthorized {
		t.Errorf("the web flow's token with an issued nonce: %d %v", status, out)
	}
	if n := userSessions(t, e, userID); n != 1 {
		t.Errorf("%d sessions, want the browser's only", n)
	}
}

func TestNativeIDToken_KeepsTheGrantOfAnIdentityWithTokens(t *testing.T) {
	for _, refresh := range []bool{true, false} {
		t.Run(fmt.Sprintf("refresh token %v", refresh), func(t *testing.T) {
			e, op := newNativeIDTokenEnv(t, iosClient, refresh, "")
			b := newBrowser(t)
			signInCorp(b, e)
			userID := b.me(e)["id"].(string)

			app := newNativeApp()
			nonce := issueNonce(t, e, app)
			status, out := postIDToken(t, e, op.NativeIDToken(iosClient, nonce), nonce, app.verifier)
			if status != http.StatusOK || out["user"].(map[string]any)["id"] != userID {
				t.Fatalf("native sign-in of the same person: %d %v", status, out)
			}
			// Checked before any token read, which could mend a half-written set.
			if problems := storeProblems(t, e); len(problems) > 0 {
				t.Errorf("storage-check after a native sign-in: %q", problems)
			}
			if err := e.Load(options{Global: e.corp, NoDev: true}); err != nil {
				t.Fatal(err)
			}
			status, _, body := apiCall(t, e, "GET", "/users/"+userID+"/oauth_access_tokens/corp")
			list, _ := body.([]any)
			if status != http.StatusOK || len(list) != 1 {
				t.Fatalf("the token read after a native sign-in: %d %v", status, body)
			}
			if token, _ := list[0].(map[string]any)["token"].(string); !userinfoWorks(t, op.UserinfoURL(), token) {
				t.Error("the token after a native sign-in does not work at the provider")
			}
		})
	}
}

func TestNativeIDToken_SessionLifetimeIsConfigurable(t *testing.T) {
	e, op := newNativeIDTokenEnv(t, iosClient, false, "id_token_session_lifetime 90m")
	app := newNativeApp()
	nonce := issueNonce(t, e, app)
	status, out := postIDToken(t, e, op.NativeIDToken(iosClient, nonce), nonce, app.verifier)
	if status != http.StatusOK {
		t.Fatalf("native sign-in: %d %v", status, out)
	}
	expires := time.UnixMilli(int64(out["session"].(map[string]any)["abandon_at"].(float64)))
	if d := time.Until(expires); d > 90*time.Minute || d < 89*time.Minute {
		t.Errorf("the session expires in %v, want 90m", d)
	}
}

// userSessions counts a user's live sessions through the API.
func userSessions(t *testing.T, e *env, userID string) int {
	t.Helper()
	_, _, list := apiCall(t, e, "GET", "/sessions?user_id="+userID)
	l, _ := list.([]any)
	return len(l)
}

// storeProblems stops Caddy and runs the store's invariant check, as
// socialgate storage-check does.
func storeProblems(t *testing.T, e *env) []string {
	t.Helper()
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	st := openStopped(t, e)
	defer st.Close()
	problems, err := st.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return problems
}

// openStopped opens the store of a stopped gateway; it fails the test when
// the store is still held.
func openStopped(t *testing.T, e *env) *badger.Store {
	t.Helper()
	dir := filepath.Join(e.Storage, "socialgate")
	keys, err := keyring.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := badger.Open(badger.Options{Dir: dir, EncryptionKey: keys.StoreKey})
	if err != nil {
		t.Fatalf("the store is still held after stop: %v", err)
	}
	return st
}

// An identity past its bound is a request too large, not a failed
// authentication: 413 with a JSON error that names what is too large, for
// a body past the 64 KB every gateway endpoint takes (JSON or a form), an
// ID token past provider.MaxToken, and a token the provider signed whose
// subject is past its bound. Nobody is signed in.
func TestNative_OversizedIdentitiesAre413(t *testing.T) {
	e, op := newNativeIDTokenEnv(t, iosClient, false, "rate_limit native 0 1m")
	app := newNativeApp()
	postForm := func(path string, form url.Values) (int, map[string]any) {
		resp, err := http.PostForm(e.Base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	huge := strings.Repeat("x", 70<<10)
	junk := "eyJhbGciOiJSUzI1NiJ9." + strings.Repeat("A", 40<<10) + ".sig"
	for _, tc := range []struct {
		name string
		post func() (int, map[string]any)
		code string
		says string
	}{
		{"an ID token past 32 KB", func() (int, map[string]any) {
			nonce := issueNonce(t, e, app)
			return postIDToken(t, e, junk, nonce, app.verifier)
		}, "identity_too_large", fmt.Sprintf("The id_token is %d bytes long; at most 32768 are taken.", len(junk))},
		{"a signed token with a 1,000-byte subject", func() (int, map[string]any) {
			op.SetClaims(map[string]any{"sub": strings.Repeat("s", 1000)})
			nonce := issueNonce(t, e, app)
			return postIDToken(t, e, op.NativeIDToken(iosClient, nonce), nonce, app.verifier)
		}, "identity_too_large", "The subject is 1000 bytes long; at most 255 are taken."},
		{"a JSON body past 64 KB", func() (int, map[string]any) {
			nonce := issueNonce(t, e, app)
			return postIDToken(t, e, huge, nonce, app.verifier)
		}, "request_body_too_large", "The body is larger than 64 KB."},
		{"a form past 64 KB", func() (int, map[string]any) {
			nonce := issueNonce(t, e, app)
			return postForm("/_auth/native/id_token", url.Values{"provider": {"corp"}, "id_token": {huge}, "nonce": {nonce}, "code_verifier": {app.verifier}})
		}, "request_body_too_large", "The body is larger than 64 KB."},
		{"a nonce request past 64 KB", func() (int, map[string]any) {
			return postJSON(t, e.Base+"/_auth/native/nonce", map[string]any{"code_challenge": huge})
		}, "request_body_too_large", "The body is larger than 64 KB."},
		{"a token request past 64 KB", func() (int, map[string]any) {
			return postForm("/_auth/native/token", url.Values{"rotating_token_nonce": {huge}})
		}, "request_body_too_large", "The body is larger than 64 KB."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := tc.post()
			errs, _ := out["errors"].([]any)
			if status != http.StatusRequestEntityTooLarge || errorCode(out) != tc.code || len(errs) != 1 || errs[0].(map[string]any)["message"] != tc.says {
				t.Errorf("%d %v, want 413 %s saying %q", status, out, tc.code, tc.says)
			}
		})
	}
	if n := userCount(t, e); n != 0 {
		t.Errorf("%d users, want none", n)
	}
}
