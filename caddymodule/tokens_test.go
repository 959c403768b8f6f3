package caddymodule_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
	"github.com/socialgate/socialgate/internal/testkit"
)

const apiKey = "sk_test_0123456789abcdef0123456789abcdef"

// apiCall calls the backend API with the test key.
func apiCall(t *testing.T, e *env, method, path string) (int, http.Header, any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.Base+"/_auth/api/v1"+path, nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, resp.Header, out
}

// apiPost posts a JSON body to the backend API with the test key.
func apiPost(t *testing.T, e *env, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.Base+"/_auth/api/v1"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST %s: status %d, the body is not a JSON object: %v", path, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// userinfoWorks reports whether an access token is accepted by a provider's
// userinfo endpoint: the real test of a token.
func userinfoWorks(t *testing.T, userinfoURL, token string) bool {
	req, _ := http.NewRequest(http.MethodGet, userinfoURL, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// newTokenEnv runs the gateway with corp issuing short-lived tokens with
// rotating refresh tokens.
func newTokenEnv(t *testing.T, handler string) (*env, *testop.Server) {
	op := startOP(t, testop.Options{AccessTokenLifetime: 3 * time.Second, IssueRefreshToken: true})
	e := &env{t: t, Storage: t.TempDir(), Upstream: newUpstream(t), port: testkit.FreePort(t), devPort: testkit.FreePort(t)}
	e.Base = fmt.Sprintf("http://127.0.0.1:%d", e.port)
	e.DevURL = fmt.Sprintf("http://127.0.0.1:%d", e.devPort)
	e.handler = handler
	e.corp = fmt.Sprintf("provider oidc corp {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret test-secret\n\t\t}\n\t\tapi_key %s sk_old_key_still_accepted_during_rotation\n\t\ttoken_refresh_skew 1s", op.URL(), apiKey)
	if err := e.Load(options{Global: e.corp, NoDev: true}); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	e.stopAtCleanup()
	return e, op
}

func TestAPI_RefusesWithoutAValidKey(t *testing.T) {
	e, _ := newTokenEnv(t, "")
	b := newBrowser(t)
	signInCorp(b, e)
	for name, auth := range map[string]string{
		"no key":        "",
		"wrong key":     "Bearer sk_wrong",
		"prefix of key": "Bearer " + apiKey[:len(apiKey)-1],
		"basic":         "Basic " + apiKey,
		"lower bearer":  "bearer " + apiKey,
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.Base+"/_auth/api/v1/users", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := b.c.Do(req) // the browser's session cookie goes along
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", resp.StatusCode)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, e.Base+"/_auth/api/v1/users", nil)
	req.Header.Set("Authorization", "Bearer sk_old_key_still_accepted_during_rotation")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the second key is refused: %v %v", resp.StatusCode, err)
	}
}

func TestAPI_OAuthAccessTokensAreAlwaysFresh(t *testing.T) {
	e, op := newTokenEnv(t, "")
	b := newBrowser(t)
	signInCorp(b, e)
	userID := b.me(e)["id"].(string)

	tokenOf := func(provider string) map[string]any {
		t.Helper()
		status, _, body := apiCall(t, e, "GET", "/users/"+userID+"/oauth_access_tokens/"+provider)
		if status != http.StatusOK {
			t.Fatalf("status %d: %v", status, body)
		}
		list := body.([]any)
		if len(list) != 1 {
			t.Fatalf("%d items", len(list))
		}
		return list[0].(map[string]any)
	}
	first := tokenOf("oauth_custom_corp")
	if first["object"] != "oauth_access_token" || first["provider"] != "oauth_custom_corp" || first["token"] == "" {
		t.Fatalf("item = %v", first)
	}
	if _, ok := first["refresh_token"]; ok || strings.Contains(mustJSON(t, first), "refresh") {
		t.Fatal("the API returned a refresh token")
	}
	if !userinfoWorks(t, op.UserinfoURL(), first["token"].(string)) {
		t.Fatal("the returned token does not work at the provider")
	}

	time.Sleep(3 * time.Second) // the access token expires
	calls := op.Calls("token")
	second := tokenOf("corp")
	if second["token"] == first["token"] {
		t.Fatal("an expired token was returned")
	}
	if op.Calls("token") != calls+1 {
		t.Errorf("token endpoint calls: %d, want one refresh", op.Calls("token")-calls)
	}
	if !userinfoWorks(t, op.UserinfoURL(), second["token"].(string)) {
		t.Fatal("the refreshed token does not work at the provider")
	}
	if exp, _ := second["expires_at"].(float64); time.Unix(int64(exp), 0).Before(time.Now()) {
		t.Errorf("expires_at %v is in the past", second["expires_at"])
	}

	status, _, body := apiCall(t, e, "GET", "/users/"+userID+"/oauth_access_tokens/corp?paginated=true&limit=1")
	page, _ := body.(map[string]any)
	if status != http.StatusOK || page["total_count"] != float64(1) || len(page["data"].([]any)) != 1 {
		t.Errorf("paginated: %d %v", status, body)
	}
}

func TestTokens_RefreshStormCausesOneRefresh(t *testing.T) {
	e, op := newTokenEnv(t, "forward_token corp")
	b := newBrowser(t)
	signInCorp(b, e)
	time.Sleep(3 * time.Second)
	calls := op.Calls("token")
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, _ := apiGet(t, b.c, e.Base+"/storm", nil); status != http.StatusOK {
				t.Errorf("status %d", status)
			}
		}()
	}
	wg.Wait()
	if n := op.Calls("token") - calls; n != 1 {
		t.Fatalf("%d refreshes for 100 concurrent requests, want 1", n)
	}
	tokens := map[string]bool{}
	for _, h := range e.Upstream.Requests()[1:] {
		tokens[h.Get("X-Auth-Token-Corp")] = true
	}
	if len(tokens) != 1 {
		t.Errorf("the storm saw %d different tokens", len(tokens))
	}
	for tok := range tokens {
		if !userinfoWorks(t, op.UserinfoURL(), tok) {
			t.Error("the forwarded token does not work at the provider")
		}
	}
}

func TestTokens_RevokedGrantNeedsReauthorization(t *testing.T) {
	e, op := newTokenEnv(t, "forward_token corp")
	b := newBrowser(t)
	signInCorp(b, e)
	userID := b.me(e)["id"].(string)
	op.SetFault(testop.FaultTokenError) // the provider now answers invalid_grant
	time.Sleep(3 * time.Second)

	status, _, body := apiCall(t, e, "GET", "/users/"+userID+"/oauth_access_tokens/corp")
	if status != http.StatusUnprocessableEntity || !strings.Contains(mustJSON(t, body), "oauth_token_needs_reauthorization") {
		t.Fatalf("API: %d %v", status, body)
	}
	calls := op.Calls("token")
	if status, body := apiGet(t, b.c, e.Base+"/needs-token", nil); status != http.StatusForbidden || body["reauthorize_url"] == nil {
		t.Errorf("API client on a forward_token route: %d %v", status, body)
	}
	resp, _ := b.get(e.Base + "/needs-token")
	if loc := location(t, resp); !strings.Contains(loc, "/_auth/reauthorize?provider=corp") {
		t.Errorf("browser sent to %s", loc)
	}
	if op.Calls("token") != calls {
		t.Error("a dead grant was retried at the provider")
	}
	if status, _ := apiGet(t, b.c, e.Base+"/_auth/me", nil); status != http.StatusOK {
		t.Error("the session ended with the grant")
	}
	page, _ := b.accountPage(e)
	if !strings.Contains(page, "Reconnect") {
		t.Error("the account page does not offer to reconnect")
	}
}

func TestTokens_ProviderDownGives503OnlyWhereATokenIsNeeded(t *testing.T) {
	e, op := newTokenEnv(t, "forward_token corp")
	b := newBrowser(t)
	signInCorp(b, e)
	op.SetFault(testop.FaultTokenHTML)
	time.Sleep(3 * time.Second)
	req, _ := http.NewRequest(http.MethodGet, e.Base+"/needs-token", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if status, _ := apiGet(t, b.c, e.Base+"/_auth/me", nil); status != http.StatusOK {
		t.Error("the session is affected by a provider outage")
	}
}

// A refresh the provider refuses (401 invalid_client: a client secret it no
// longer takes) is answered as a refusal, naming the OAuth error code, on
// a route and in the API, and logged as one; not as an outage. What the
// answer echoes (the refresh token) appears nowhere.
func TestTokens_ARefusedRefreshSaysTheProviderRefused(t *testing.T) {
	e, op := newTokenEnv(t, "forward_token corp")
	route, api := newBrowser(t), newBrowser(t)
	signInCorp(route, e)
	op.SetClaims(map[string]any{"sub": "second-user", "email": "second@example.com", "email_verified": true})
	signInCorp(api, e)
	apiUser := api.me(e)["id"].(string)
	op.SetFault(testop.FaultTokenInvalidClient)
	time.Sleep(3 * time.Second) // both access tokens expire

	status, out := apiGet(t, route.c, e.Base+"/needs-token", nil)
	if status != http.StatusBadGateway || errorCode(out) != "oauth_provider_refused" {
		t.Errorf("a route that needs the token: %d %v, want 502 oauth_provider_refused", status, out)
	}
	status, _, body := apiCall(t, e, "GET", "/users/"+apiUser+"/oauth_access_tokens/corp")
	msg, _ := body.(map[string]any)["errors"].([]any)[0].(map[string]any)["message"].(string)
	if status != http.StatusBadGateway || !strings.Contains(msg, "corp refused to refresh it (invalid_client)") {
		t.Errorf("the API: %d %v, want 502 saying corp refused (invalid_client)", status, body)
	}
	log, _ := os.ReadFile(filepath.Join(e.Storage, "debug.log"))
	if n := strings.Count(string(log), "the provider refused the token refresh"); n != 2 || strings.Contains(string(log), "token refresh failed") ||
		!strings.Contains(string(log), "invalid_client") || strings.Contains(string(log), "no client may redeem") {
		t.Errorf("the log has %d refused refreshes, want 2 naming invalid_client, none as a failure, no echo", n)
	}
	if status, _ := apiGet(t, route.c, e.Base+"/_auth/me", nil); status != http.StatusOK {
		t.Error("the session is affected by the refusal")
	}
}

func TestIdentityToken_VerifiesWithTheGatewaysJWKS(t *testing.T) {
	e, _ := newTokenEnv(t, "")
	b := newBrowser(t)
	signInCorp(b, e)
	h := e.Upstream.Last(t)
	raw := h.Get("X-Auth-Jwt")
	resp, body := b.get(e.Base + "/_auth/.well-known/jwks.json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks: %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("X-Auth-Jwt %q: %v", raw, err)
	}
	var claims struct {
		jwt.Claims
		SessionID string `json:"sid"`
		Email     string `json:"email"`
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatal("the token's kid is not in the JWKS")
	}
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		t.Fatal(err)
	}
	if err := claims.Validate(jwt.Expected{Issuer: "socialgate", Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if claims.Subject != h.Get("X-Auth-User-Id") || claims.SessionID != h.Get("X-Auth-Session-Id") || claims.Email != "u1@example.com" {
		t.Errorf("claims %+v do not match the identity headers", claims)
	}
	// A tampered token fails verification.
	parts := strings.Split(raw, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(payload), claims.Subject, "user_attacker", 1)
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(forged))
	tampered, err := jwt.ParseSigned(strings.Join(parts, "."), []jose.SignatureAlgorithm{jose.ES256})
	if err == nil {
		var c jwt.Claims
		err = tampered.Claims(keys[0].Key, &c)
	}
	if err == nil {
		t.Fatal("a tampered identity token verified")
	}
}

func TestTokens_ForwardTokenHeaderAndPlaceholder(t *testing.T) {
	e, op := newTokenEnv(t, "forward_token corp header Authorization")
	if err := e.Load(options{Global: e.corp, NoDev: true, Proxy: "header_up X-Auth-Token-Corp {http.auth.token.corp}"}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	signInCorp(b, e)
	h := e.Upstream.Last(t)
	token, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok || token == "" || !userinfoWorks(t, op.UserinfoURL(), token) || h.Get("X-Auth-Token-Corp") != token {
		t.Errorf("Authorization is Bearer %v, placeholder set %v: want Authorization: Bearer <corp token>, and the bare token in the placeholder",
			ok, h.Get("X-Auth-Token-Corp") != "")
	}
}

func TestTokens_RotatedRefreshTokenSurvivesARestart(t *testing.T) {
	e, op := newTokenEnv(t, "forward_token corp")
	b := newBrowser(t)
	signInCorp(b, e)
	for round := 1; round <= 2; round++ {
		time.Sleep(3 * time.Second) // expire the access token
		calls := op.Calls("token")
		if status, _ := apiGet(t, b.c, e.Base+"/needs-token", nil); status != http.StatusOK {
			t.Fatalf("round %d: %d", round, status)
		}
		if op.Calls("token") != calls+1 {
			t.Fatalf("round %d: no refresh", round)
		}
		// Restart on the same storage: the rotated refresh token (the old one
		// is now refused by the provider) must have been stored.
		if err := caddy.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := e.Load(options{Global: e.corp, NoDev: true}); err != nil {
			t.Fatal(err)
		}
	}
	if !userinfoWorks(t, op.UserinfoURL(), e.Upstream.Last(t).Get("X-Auth-Token-Corp")) {
		t.Error("the token after two rotations and restarts does not work")
	}
}

// verifiesWith reports whether a JWT verifies with a JWKS document.
func verifiesWith(t *testing.T, jwks, token string) bool {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(jwks), &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return false
	}
	keys := set.Key(tok.Headers[0].KeyID)
	var c jwt.Claims
	return len(keys) == 1 && tok.Claims(keys[0].Key, &c) == nil
}

func kidOf(t *testing.T, token string) string {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Headers[0].KeyID
}
