package caddymodule_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// nativeApp is a native app's side of the flow: a verifier only it knows.
type nativeApp struct {
	verifier, challenge string
}

func newNativeApp() nativeApp {
	v := strings.Repeat("native-app-verifier-", 3)
	h := sha256.Sum256([]byte(v))
	return nativeApp{verifier: v, challenge: base64.RawURLEncoding.EncodeToString(h[:])}
}

// nativeEnv runs the gateway with corp and an allowlist of native redirect URLs.
func nativeEnv(t *testing.T) (*env, *browser) {
	e, _ := newTokenEnv(t, "")
	e.corp += "\n\t\tredirect_urls myapp://oauth-callback http://127.0.0.1/native-cb"
	if err := e.Load(options{Global: e.corp, NoDev: true}); err != nil {
		t.Fatal(err)
	}
	return e, newBrowser(t)
}

// startNative opens corp's start URL as the app's browser tab would and
// follows the provider round trip; it returns the gateway's last answer.
func startNative(b *browser, e *env, app nativeApp, redirectURL string) (*http.Response, string) {
	return startNativeWith(b, e, "corp", app, redirectURL)
}

// startNativeWith is startNative through the provider named.
func startNativeWith(b *browser, e *env, provider string, app nativeApp, redirectURL string) (*http.Response, string) {
	q := url.Values{"redirect_url": {redirectURL}, "code_challenge": {app.challenge}}
	resp, body := b.get(e.Base + "/_auth/oauth/" + provider + "/start?" + q.Encode())
	for resp.StatusCode == http.StatusSeeOther || resp.StatusCode == http.StatusFound {
		loc := location(b.t, resp)
		if !strings.HasPrefix(loc, "http") || strings.Contains(loc, "rotating_token_nonce") {
			break // the app's own URL: the browser hands it to the app
		}
		resp, body = b.get(loc)
	}
	return resp, body
}

func redeem(t *testing.T, e *env, nonce, verifier string) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(e.Base+"/_auth/native/token", url.Values{"rotating_token_nonce": {nonce}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestNative_NonceReachesTheAppAndBuysASessionToken(t *testing.T) {
	e, b := nativeEnv(t)
	app := newNativeApp()
	resp, _ := startNative(b, e, app, "myapp://oauth-callback")
	back := location(t, resp)
	u, _ := url.Parse(back)
	nonce := u.Query().Get("rotating_token_nonce")
	if u.Scheme != "myapp" || u.Host != "oauth-callback" || nonce == "" {
		t.Fatalf("the app was sent to %s", back)
	}
	if b.cookie(e.Base, "socialgate_session") != "" {
		t.Error("a native flow set a browser session cookie")
	}

	if status, _ := redeem(t, e, nonce, "wrong-verifier-wrong-verifier-wrong-verifier-x"); status != http.StatusBadRequest {
		t.Fatalf("redeem with a wrong verifier: %d", status)
	}
	// The wrong verifier burned the nonce: it is bound to the flow, single-use.
	resp, _ = startNative(b, e, app, "myapp://oauth-callback")
	u, _ = url.Parse(location(t, resp))
	nonce = u.Query().Get("rotating_token_nonce")
	status, out := redeem(t, e, nonce, app.verifier)
	if status != http.StatusOK {
		t.Fatalf("redeem: %d %v", status, out)
	}
	token, _ := out["session_token"].(string)
	user, _ := out["user"].(map[string]any)
	if token == "" || user["object"] != "user" {
		t.Fatalf("redeem answered %v", out)
	}
	if status, _ := redeem(t, e, nonce, app.verifier); status != http.StatusBadRequest {
		t.Errorf("a nonce was redeemed twice: %d", status)
	}

	// The session token works as a bearer token; it does not go upstream.
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	if status, _ := apiGet(t, http.DefaultClient, e.Base+"/app/data", bearer); status != http.StatusOK {
		t.Fatalf("bearer session token: %d", status)
	}
	h := e.Upstream.Last(t)
	if h.Get("X-Auth-User-Id") != user["id"] || h.Get("Authorization") != "" {
		t.Errorf("upstream saw user %q and Authorization %q", h.Get("X-Auth-User-Id"), h.Get("Authorization"))
	}

	// It is a real session: listed and revocable.
	_, _, list := apiCall(t, e, "GET", "/sessions?user_id="+user["id"].(string))
	sessions := list.([]any)
	if len(sessions) != 1 {
		t.Fatalf("sessions: %v", list)
	}
	id := sessions[0].(map[string]any)["id"].(string)
	apiCall(t, e, "POST", "/sessions/"+id+"/revoke")
	if status, _ := apiGet(t, http.DefaultClient, e.Base+"/app/data", bearer); status != http.StatusUnauthorized {
		t.Errorf("a revoked session token still works: %d", status)
	}
}

func TestNative_RedirectsOffTheAllowlistGetNoNonce(t *testing.T) {
	e, b := nativeEnv(t)
	app := newNativeApp()
	for _, target := range []string{
		"myapp://evil", "myapp://oauth-callback/more", "myapp://oauth-callbackx", "otherapp://oauth-callback",
		"myapp://user@oauth-callback", "myapp://oauth-callback#frag", "https://evil.example/native-cb",
		"http://127.0.0.1/native-cb/x", "http://localhost.evil.example/native-cb", "javascript:alert(1)",
		"MYAPP://oauth-callback/../evil", "",
	} {
		t.Run(target, func(t *testing.T) {
			resp, body := startNative(b, e, app, target)
			if target == "" {
				// No redirect_url: an ordinary browser sign-in, not a native one.
				if strings.Contains(body+resp.Header.Get("Location"), "rotating_token_nonce") {
					t.Fatal("a nonce without a native redirect URL")
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			if strings.Contains(resp.Header.Get("Location")+body, "rotating_token_nonce") {
				t.Fatal("the answer carries a nonce")
			}
		})
	}
	t.Run("loopback may vary the port", func(t *testing.T) {
		resp, _ := startNative(b, e, app, "http://127.0.0.1:53111/native-cb")
		if loc := location(t, resp); !strings.HasPrefix(loc, "http://127.0.0.1:53111/native-cb?rotating_token_nonce=") {
			t.Fatalf("sent to %s", loc)
		}
	})
	t.Run("a missing or bad challenge is refused", func(t *testing.T) {
		resp, _ := startNative(b, e, nativeApp{challenge: "short"}, "myapp://oauth-callback")
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func TestNative_RedirectURLsAPI(t *testing.T) {
	e, b := nativeEnv(t)
	app := newNativeApp()
	post := func(body string) (int, map[string]any) { return apiPost(t, e, "/redirect_urls", body) }
	for _, bad := range []string{`{"url":"javascript:alert(1)"}`, `{"url":"myapp://cb#x"}`, `{"url":"https://u:p@app.example/cb"}`, `{"url":""}`, `not json`} {
		if status, out := post(bad); status/100 != 4 || !strings.Contains(mustJSON(t, out), "errors") {
			t.Errorf("%s: %d %v", bad, status, out)
		}
	}
	status, created := post(`{"url":"com.example.app:/oauth2redirect"}`)
	if status != http.StatusOK || created["object"] != "redirect_url" || !strings.HasPrefix(created["id"].(string), "ru_") {
		t.Fatalf("create: %d %v", status, created)
	}
	_, _, list := apiCall(t, e, "GET", "/redirect_urls")
	if n := len(list.([]any)); n != 3 {
		t.Errorf("%d redirect URLs, want the 2 configured + 1", n)
	}
	resp, _ := startNative(b, e, app, "com.example.app:/oauth2redirect")
	if loc := location(t, resp); !strings.HasPrefix(loc, "com.example.app:/oauth2redirect?rotating_token_nonce=") {
		t.Fatalf("sent to %s", loc)
	}
	if status, _, _ := apiCall(t, e, "DELETE", "/redirect_urls/"+created["id"].(string)); status != http.StatusOK {
		t.Fatalf("delete: %d", status)
	}
	if resp, _ := startNative(b, e, app, "com.example.app:/oauth2redirect"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a deleted URL still receives nonces: %d", resp.StatusCode)
	}
}
