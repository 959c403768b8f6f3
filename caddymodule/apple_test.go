package caddymodule_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/socialgate/socialgate/internal/testkit"
)

const (
	appleIssuer = "https://appleid.apple.com"
	appleWebID  = "com.example.web"
	appleBundle = "com.example.ios"
)

// fakeApple answers like Sign in with Apple: /auth/authorize posts the
// code back with form_post (an auto-submitting form), /auth/token checks the
// ES256 client secret and redeems codes and refresh tokens, each only for
// the client it was issued to, /auth/keys publishes the ID token key.
type fakeApple struct {
	t      *testing.T
	srv    *httptest.Server
	key    *rsa.PrivateKey
	p8     *ecdsa.PrivateKey
	mu     sync.Mutex
	codes  map[string]map[string]any // code → ID token claims
	sub    string
	email  string
	secret map[string]string // the last client secret per client_id
	// expiresIn is the access tokens' lifetime in seconds; default 3600.
	expiresIn int
}

func newFakeApple(t *testing.T) *fakeApple {
	a := &fakeApple{t: t, codes: map[string]map[string]any{}, sub: "001234.abcdef.1234", email: "jane@example.com",
		secret: map[string]string{}, expiresIn: 3600}
	a.key, _ = rsa.GenerateKey(rand.Reader, 2048)
	a.p8, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth/keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &a.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /auth/authorize", a.authorize)
	mux.HandleFunc("POST /auth/token", a.token)
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	return a
}

// p8File writes the client-secret key as Apple's .p8 file.
func (a *fakeApple) p8File() string {
	der, _ := x509.MarshalPKCS8PrivateKey(a.p8)
	path := filepath.Join(a.t.TempDir(), "AuthKey_KEY1234567.p8")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	return path
}

func (a *fakeApple) idToken(claims map[string]any) string {
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: a.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	now := time.Now()
	c := map[string]any{"iss": appleIssuer, "sub": a.sub, "email": a.email, "email_verified": "true",
		"is_private_email": "false", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	tok, _ := jwt.Signed(signer).Claims(c).Serialize()
	return tok
}

// mintCode records the claims the code's ID token will carry.
func (a *fakeApple) mintCode(claims map[string]any) string {
	code := fmt.Sprintf("c%d", time.Now().UnixNano())
	a.mu.Lock()
	a.codes[code] = claims
	a.mu.Unlock()
	return code
}

func (a *fakeApple) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("response_mode") != "form_post" {
		http.Error(w, "Apple needs response_mode=form_post when asking for name or email", http.StatusBadRequest)
		return
	}
	code := a.mintCode(map[string]any{"aud": q.Get("client_id"), "nonce": q.Get("nonce")})
	fmt.Fprintf(w, `<form method="post" action="%s"><input name="code" value="%s"><input name="state" value="%s"><input name="user" value="%s"></form>`,
		html.EscapeString(q.Get("redirect_uri")), code, html.EscapeString(q.Get("state")),
		html.EscapeString(`{"name":{"firstName":"Jane","lastName":"Appleseed"},"email":"jane@example.com"}`))
}

func (a *fakeApple) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	r.ParseForm()
	client := r.PostForm.Get("client_id")
	secret, err := jwt.ParseSigned(r.PostForm.Get("client_secret"), []jose.SignatureAlgorithm{jose.ES256})
	var c jwt.Claims
	if err != nil || secret.Claims(&a.p8.PublicKey, &c) != nil || c.Subject != client || c.Issuer != "TEAM123456" {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	a.mu.Lock()
	claims, ok := a.codes[r.PostForm.Get("code")]
	delete(a.codes, r.PostForm.Get("code"))
	a.secret[client] = r.PostForm.Get("client_secret")
	expiresIn := a.expiresIn
	a.mu.Unlock()
	if r.PostForm.Get("grant_type") == "refresh_token" && r.PostForm.Get("refresh_token") == "apple-rt-"+client {
		json.NewEncoder(w).Encode(map[string]any{"access_token": "apple-at-refreshed", "token_type": "Bearer", "expires_in": 3600})
		return
	}
	if !ok || claims["aud"] != client {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"access_token": "apple-at", "token_type": "Bearer", "expires_in": expiresIn,
		"refresh_token": "apple-rt-" + client, "id_token": a.idToken(claims)})
}

func newAppleEnv(t *testing.T) (*env, *fakeApple) {
	a := newFakeApple(t)
	e := &env{t: t, Storage: t.TempDir(), Upstream: newUpstream(t), port: testkit.FreePort(t), devPort: testkit.FreePort(t)}
	e.Base = fmt.Sprintf("http://127.0.0.1:%d", e.port)
	e.DevURL = fmt.Sprintf("http://127.0.0.1:%d", e.devPort)
	e.corp = fmt.Sprintf(`provider apple {
			client_id %s
			team_id TEAM123456
			key_id KEY1234567
			private_key {file.%s}
			bundle_ids %s
			authorize_url %s/auth/authorize
			token_url %s/auth/token
			jwks_url %s/auth/keys
			revoke_url %s/auth/revoke
		}`, appleWebID, a.p8File(), appleBundle, a.srv.URL, a.srv.URL, a.srv.URL, a.srv.URL)
	if err := e.Load(options{Global: e.corp}); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	e.stopAtCleanup()
	return e, a
}

var hiddenInput = regexp.MustCompile(`<input name="(\w+)" value="([^"]*)">`)

func TestApple_WebSignInWithFormPost(t *testing.T) {
	e, _ := newAppleEnv(t)
	b := newBrowser(t)
	resp := b.startSignIn(e, "/", "apple")
	for _, c := range resp.Cookies() {
		if c.Name == "socialgate_flow" && c.SameSite != http.SameSiteNoneMode {
			t.Errorf("the binding cookie is SameSite %v: Apple's cross-site POST would arrive without it", c.SameSite)
		}
	}
	resp, page := b.get(location(t, resp))
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	action := html.UnescapeString(between(page, `action="`, `"`))
	resp, body := b.follow(b.post(action, form))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after Apple: status %d: %s", resp.StatusCode, body)
	}
	h := e.Upstream.Last(t)
	if h.Get("X-Auth-User-Name") != "Jane Appleseed" || h.Get("X-Auth-User-Email") != "jane@example.com" {
		t.Errorf("identity: %q %q", h.Get("X-Auth-User-Name"), h.Get("X-Auth-User-Email"))
	}
}

func TestApple_NativeSignIn(t *testing.T) {
	e, a := newAppleEnv(t)
	e.corp += "\n\t\trate_limit native 0 1m" // two requests a sign-in, many sign-ins
	if err := e.Load(options{Global: e.corp}); err != nil {
		t.Fatal(err)
	}
	app := newNativeApp()
	post := func(body map[string]any) (int, map[string]any) {
		return postJSON(t, e.Base+"/_auth/native/apple", body)
	}
	// signIn is the app's side: a nonce from the gateway, whose SHA-256 the
	// identity token carries, and the verifier of its challenge.
	signIn := func(extra map[string]any) (int, map[string]any) {
		nonce := issueNonce(t, e, app)
		claims := map[string]any{"aud": appleBundle, "nonce": hexSHA256(nonce)}
		body := map[string]any{"id_token": a.idToken(claims), "code": a.mintCode(claims), "nonce": nonce, "code_verifier": app.verifier}
		for k, v := range extra {
			body[k] = v
		}
		return post(body)
	}
	status, out := signIn(map[string]any{"given_name": "Jane", "family_name": "Appleseed"})
	if status != http.StatusOK {
		t.Fatalf("native sign-in: %d %v", status, out)
	}
	user := out["user"].(map[string]any)
	if user["name"] != "Jane Appleseed" || out["session_token"] == "" {
		t.Fatalf("answer %v", out)
	}
	if a.secret[appleBundle] == "" {
		t.Error("the code was not redeemed with the bundle's client secret")
	}
	// The code left the gateway Apple's grant: a full-length session.
	expires := time.UnixMilli(int64(out["session"].(map[string]any)["abandon_at"].(float64)))
	if d := time.Until(expires); d < 6*24*time.Hour {
		t.Errorf("the session expires in %v, want the session lifetime", d)
	}
	bearer := http.Header{"Authorization": {"Bearer " + out["session_token"].(string)}}
	if status, _ := apiGet(t, http.DefaultClient, e.Base+"/", bearer); status != http.StatusOK {
		t.Fatalf("session token: %d", status)
	}
	if got := e.Upstream.Last(t).Get("Authorization"); got != "" {
		t.Errorf("the session token reached the upstream: Authorization %q", got)
	}
	// The same header carrying the provider's token instead: the app's
	// session token goes, Apple's access token comes in its place.
	e.handler = "forward_token apple header Authorization"
	if err := e.Load(options{Global: e.corp}); err != nil {
		t.Fatal(err)
	}
	if status, _ := apiGet(t, http.DefaultClient, e.Base+"/", bearer); status != http.StatusOK {
		t.Fatalf("session token on a forward_token route: %d", status)
	}
	if got := e.Upstream.Last(t).Get("Authorization"); got != "Bearer apple-at" {
		t.Errorf("upstream Authorization %q, want Apple's access token as a Bearer token", got)
	}
	e.handler = ""
	if err := e.Load(options{Global: e.corp}); err != nil {
		t.Fatal(err)
	}

	// A later sign-in (no name from Apple) finds the same user and keeps the name.
	status, again := signIn(nil)
	if status != http.StatusOK || again["user"].(map[string]any)["id"] != user["id"] || again["user"].(map[string]any)["name"] != "Jane Appleseed" {
		t.Fatalf("second native sign-in: %d %v", status, again)
	}

	// Each case has a nonce of its own, issued to the app.
	fresh := func() (nonce string, claims map[string]any) {
		nonce = issueNonce(t, e, app)
		return nonce, map[string]any{"aud": appleBundle, "nonce": hexSHA256(nonce)}
	}
	for name, tc := range map[string]struct {
		body func() map[string]any
		want int
		code string
	}{
		"another issued nonce": {func() map[string]any {
			_, claims := fresh()
			other, _ := fresh()
			return map[string]any{"id_token": a.idToken(claims), "code": a.mintCode(claims), "nonce": other, "code_verifier": app.verifier}
		}, http.StatusUnauthorized, "invalid_apple_credential"},
		"the hashed nonce sent back": {func() map[string]any {
			_, claims := fresh()
			return map[string]any{"id_token": a.idToken(claims), "code": a.mintCode(claims), "nonce": claims["nonce"], "code_verifier": app.verifier}
		}, http.StatusBadRequest, "invalid_nonce"},
		"a nonce the app chose (the old protocol)": {func() map[string]any {
			claims := map[string]any{"aud": appleBundle, "nonce": hexSHA256("nonce-the-app-generated")}
			return map[string]any{"id_token": a.idToken(claims), "code": a.mintCode(claims), "nonce": "nonce-the-app-generated", "code_verifier": app.verifier}
		}, http.StatusBadRequest, "invalid_nonce"},
		"the issued nonce unhashed in the token": {func() map[string]any {
			nonce, claims := fresh()
			claims["nonce"] = nonce
			return map[string]any{"id_token": a.idToken(claims), "code": a.mintCode(claims), "nonce": nonce, "code_verifier": app.verifier}
		}, http.StatusUnauthorized, "invalid_apple_credential"},
		"without the app's verifier": {func() map[string]any {
			nonce, claims := fresh()
			return map[string]any{"id_token": a.idToken(claims), "code": a.mintCode(claims), "nonce": nonce}
		}, http.StatusBadRequest, "invalid_nonce"},
		"another app": {func() map[string]any {
			nonce, claims := fresh()
			return map[string]any{"id_token": a.idToken(map[string]any{"aud": "com.other.app", "nonce": claims["nonce"]}), "code": a.mintCode(claims), "nonce": nonce, "code_verifier": app.verifier}
		}, http.StatusUnauthorized, "invalid_apple_credential"},
		"the web client": {func() map[string]any {
			nonce, claims := fresh()
			return map[string]any{"id_token": a.idToken(map[string]any{"aud": appleWebID, "nonce": claims["nonce"]}), "code": a.mintCode(claims), "nonce": nonce, "code_verifier": app.verifier}
		}, http.StatusUnauthorized, "invalid_apple_credential"},
		"an identity token past 32 KB": {func() map[string]any {
			nonce, claims := fresh()
			claims["padding"] = strings.Repeat("p", 40<<10)
			return map[string]any{"id_token": a.idToken(claims), "code": a.mintCode(claims), "nonce": nonce, "code_verifier": app.verifier}
		}, http.StatusRequestEntityTooLarge, "identity_too_large"},
		"an identity token past the 64 KB body": {func() map[string]any {
			nonce, claims := fresh()
			claims["padding"] = strings.Repeat("p", 70<<10)
			return map[string]any{"id_token": a.idToken(claims), "code": a.mintCode(claims), "nonce": nonce, "code_verifier": app.verifier}
		}, http.StatusRequestEntityTooLarge, "request_body_too_large"},
		"a used code": {func() map[string]any {
			nonce, claims := fresh()
			return map[string]any{"id_token": a.idToken(claims), "code": "c-used", "nonce": nonce, "code_verifier": app.verifier}
		}, http.StatusUnauthorized, "invalid_apple_credential"},
		"expired token": {func() map[string]any {
			nonce, claims := fresh()
			expired := map[string]any{"aud": appleBundle, "nonce": claims["nonce"], "exp": time.Now().Add(-time.Minute).Unix()}
			return map[string]any{"id_token": a.idToken(expired), "code": a.mintCode(claims), "nonce": nonce, "code_verifier": app.verifier}
		}, http.StatusUnauthorized, "invalid_apple_credential"},
		"nothing": {func() map[string]any { return map[string]any{} }, http.StatusBadRequest, "invalid_nonce"},
	} {
		t.Run(name, func(t *testing.T) {
			if status, out := post(tc.body()); status != tc.want || errorCode(out) != tc.code {
				t.Errorf("status %d %v, want %d %s", status, out, tc.want, tc.code)
			}
		})
	}

	t.Run("the same token and code twice", func(t *testing.T) {
		nonce, claims := fresh()
		body := map[string]any{"id_token": a.idToken(claims), "code": a.mintCode(claims), "nonce": nonce, "code_verifier": app.verifier}
		if status, out := post(body); status != http.StatusOK {
			t.Fatalf("first: %d %v", status, out)
		}
		if status, out := post(body); status != http.StatusBadRequest || errorCode(out) != "invalid_nonce" {
			t.Errorf("second: %d %v", status, out)
		}
	})
}

// A native app's code leaves the gateway a grant of the app's bundle id,
// which Apple refreshes only for that client.
func TestApple_NativeGrantRefreshesAsTheApp(t *testing.T) {
	e, a := newAppleEnv(t)
	e.handler = "forward_token apple"
	if err := e.Load(options{Global: e.corp}); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.expiresIn = 1 // expired a second after the sign-in: the route must refresh it
	a.mu.Unlock()
	app := newNativeApp()
	nonce := issueNonce(t, e, app)
	claims := map[string]any{"aud": appleBundle, "nonce": hexSHA256(nonce)}
	status, out := postJSON(t, e.Base+"/_auth/native/apple", map[string]any{"id_token": a.idToken(claims), "code": a.mintCode(claims),
		"nonce": nonce, "code_verifier": app.verifier})
	if status != http.StatusOK {
		t.Fatalf("native sign-in: %d %v", status, out)
	}
	bearer := http.Header{"Authorization": {"Bearer " + out["session_token"].(string)}}
	time.Sleep(1200 * time.Millisecond)
	if status, _ := apiGet(t, http.DefaultClient, e.Base+"/", bearer); status != http.StatusOK {
		t.Fatalf("a route that needs Apple's token: %d", status)
	}
	if got := e.Upstream.Last(t).Get("X-Auth-Token-Apple"); got != "apple-at-refreshed" {
		t.Errorf("X-Auth-Token-Apple = %q, want the token refreshed for the app's bundle id", got)
	}
}

func TestNativeIDToken_RefusesAppleTokens(t *testing.T) {
	e, a := newAppleEnv(t)
	if err := e.Load(options{Global: e.corp + "\n\t\tapi_key " + apiKey}); err != nil {
		t.Fatal(err)
	}
	app := newNativeApp()
	post := func(body map[string]any) (int, map[string]any) {
		return postJSON(t, e.Base+"/_auth/native/id_token", body)
	}
	nonce := issueNonce(t, e, app)
	hashed := hexSHA256(nonce)
	// Tokens /native/apple refuses (no code, the web client, a nonce the
	// app chose, unhashed), and one it would accept: none signs in here.
	for name, claims := range map[string]map[string]any{
		"a good identity token":     {"aud": appleBundle, "nonce": hashed},
		"the web client's token":    {"aud": appleWebID, "nonce": hashed},
		"a nonce the app chose":     {"aud": appleBundle, "nonce": hexSHA256("raw-nonce-of-the-sdk")},
		"the issued nonce unhashed": {"aud": appleBundle, "nonce": nonce},
	} {
		status, out := post(map[string]any{"provider": "apple", "nonce": nonce, "code_verifier": app.verifier, "id_token": a.idToken(claims)})
		if status != http.StatusBadRequest || errorCode(out) != "use_native_apple" || !strings.Contains(mustJSON(t, out), "/_auth/native/apple") {
			t.Errorf("%s: %d %v, want 400 use_native_apple pointing to /native/apple", name, status, out)
		}
	}
	if status, out := post(map[string]any{"provider": "nope", "nonce": nonce, "code_verifier": app.verifier, "id_token": a.idToken(nil)}); status != http.StatusNotFound {
		t.Errorf("unknown provider: %d %v", status, out)
	}
	if n := userCount(t, e); n != 0 {
		t.Errorf("%d users, want none", n)
	}
	// Refused before the nonce was looked at: the app still signs in with
	// it where Apple's rules apply.
	claims := map[string]any{"aud": appleBundle, "nonce": hashed}
	status, out := postJSON(t, e.Base+"/_auth/native/apple", map[string]any{"id_token": a.idToken(claims), "code": a.mintCode(claims),
		"nonce": nonce, "code_verifier": app.verifier})
	if status != http.StatusOK {
		t.Errorf("/native/apple after the refusal: %d %v", status, out)
	}
}
