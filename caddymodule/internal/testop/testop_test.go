package testop_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// redirectURI is never dialled: authorize stops at the redirect to it.
const (
	redirectURI = "http://127.0.0.1:9/callback"
	state       = "state-1"
	nonce       = "nonce-1"
)

func config(s *testop.Server, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     "test-client",
		ClientSecret: "test-secret",
		Endpoint:     oauth2.Endpoint{AuthURL: s.AuthorizeURL(), TokenURL: s.TokenURL()},
		RedirectURL:  redirectURI,
		Scopes:       scopes,
	}
}

// authorize sends a browser to authURL and returns the query of the
// provider's redirect to redirectURI.
func authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatalf("authorization request: %v", err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("authorization response: status %d, Location %v", resp.StatusCode, err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %q, want %q", got, redirectURI)
	}
	return loc.Query()
}

type signedIn struct {
	redirect url.Values // the authorization response
	token    *oauth2.Token
	idToken  string
}

// signIn runs the code flow with PKCE S256 and a nonce.
func signIn(t *testing.T, cfg *oauth2.Config) signedIn {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	q := authorize(t, cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
	tok, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchanging the code: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	return signedIn{redirect: q, token: tok, idToken: raw}
}

func provider(t *testing.T, s *testop.Server) *oidc.Provider {
	t.Helper()
	p, err := oidc.NewProvider(t.Context(), s.URL())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return p
}

// getUserinfo returns the raw userinfo response to an access token.
func getUserinfo(t *testing.T, s *testop.Server, accessToken string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.UserinfoURL(), nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// wantOAuthError asserts that err is a token endpoint error with that code.
func wantOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != code {
		t.Fatalf("error = %v, want a token endpoint error %q", err, code)
	}
}

func TestOIDC_CleanFlowVerifiesWithGoOIDC(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	p := provider(t, s)
	var meta struct {
		Scopes       []string `json:"scopes_supported"`
		PKCE         []string `json:"code_challenge_methods_supported"`
		Algs         []string `json:"id_token_signing_alg_values_supported"`
		IssParameter bool     `json:"authorization_response_iss_parameter_supported"`
		Revocation   string   `json:"revocation_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(meta.Scopes, "offline_access") || !slices.Equal(meta.PKCE, []string{"S256"}) ||
		!slices.Equal(meta.Algs, []string{"RS256"}) || !meta.IssParameter || meta.Revocation != s.RevokeURL() {
		t.Errorf("discovery metadata = %+v", meta)
	}
	cfg := config(s, oidc.ScopeOpenID, "email", "profile")
	cfg.Endpoint = p.Endpoint()

	got := signIn(t, cfg)

	if got.redirect.Get("state") != state || got.redirect.Get("iss") != s.URL() {
		t.Errorf("authorization response = %v, want state %q and iss %q", got.redirect, state, s.URL())
	}
	sent := s.LastAuthorizeQuery()
	if sent.Get("nonce") != nonce || sent.Get("code_challenge_method") != "S256" ||
		sent.Get("code_challenge") == "" || sent.Get("scope") != "openid email profile" {
		t.Errorf("LastAuthorizeQuery = %v", sent)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: "test-client"}).Verify(t.Context(), got.idToken)
	if err != nil {
		t.Fatalf("go-oidc rejected a clean id_token: %v", err)
	}
	if err := relyingPartyChecks(idt, nonce); err != nil {
		t.Fatalf("clean id_token: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	for k, want := range testop.DefaultClaims() {
		if claims[k] != want {
			t.Errorf("id_token %s = %v, want %v", k, claims[k], want)
		}
	}
	info, err := p.UserInfo(t.Context(), oauth2.StaticTokenSource(got.token))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != idt.Subject || info.Email != "u1@example.com" || !info.EmailVerified {
		t.Errorf("userinfo = %+v, want the id_token's user", info)
	}
}

func TestNativeIDToken_IsForTheAppWithItsNonce(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	raw := s.NativeIDToken("ios.apps.example", "app-nonce")
	p := provider(t, s)
	if _, err := p.Verifier(&oidc.Config{ClientID: "test-client"}).Verify(t.Context(), raw); err == nil {
		t.Error("a native ID token verified for the web client")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: "ios.apps.example"}).Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("go-oidc rejected a native ID token: %v", err)
	}
	if err := relyingPartyChecks(idt, "app-nonce"); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.Secrets(), raw) {
		t.Error("Secrets() does not list the native ID token")
	}
}

func TestAuthorize_RedirectFollowingClientCompletesFlow(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	var cfg *oauth2.Config
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := cfg.Exchange(r.Context(), r.URL.Query().Get("code"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		io.WriteString(w, "signed in: "+fmt.Sprint(tok.Extra("id_token") != nil))
	}))
	defer callback.Close()
	cfg = config(s, oidc.ScopeOpenID)
	cfg.RedirectURL = callback.URL + "/callback"

	resp, err := http.Get(cfg.AuthCodeURL(state))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "signed in: true" {
		t.Fatalf("callback answered %d %q", resp.StatusCode, body)
	}
}

func TestAuthorize_ShowsErrorForUnknownClientOrBadRedirectURI(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	for name, query := range map[string]url.Values{
		"unknown client":          {"client_id": {"evil"}, "redirect_uri": {redirectURI}, "response_type": {"code"}},
		"relative redirect_uri":   {"client_id": {"test-client"}, "redirect_uri": {"/callback"}, "response_type": {"code"}},
		"redirect_uri with #frag": {"client_id": {"test-client"}, "redirect_uri": {redirectURI + "#x"}, "response_type": {"code"}},
	} {
		t.Run(name, func(t *testing.T) {
			browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := browser.Get(s.AuthorizeURL() + "?" + query.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status = %d, want 400 and no redirect", resp.StatusCode)
			}
		})
	}
}

func TestCalls_CountsEveryRequestPerEndpoint(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	endpoints := []string{"discovery", "jwks", "authorize", "token", "userinfo", "revoke"}
	for _, e := range endpoints {
		if n := s.Calls(e); n != 0 {
			t.Fatalf("Calls(%q) = %d before any request", e, n)
		}
	}
	p := provider(t, s)
	got := signIn(t, config(s, oidc.ScopeOpenID))
	if _, err := p.Verifier(&oidc.Config{ClientID: "test-client"}).Verify(t.Context(), got.idToken); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, err := http.Get(s.UserinfoURL()) // no token: refused, still counted
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()

	want := map[string]int{"discovery": 1, "jwks": 1, "authorize": 1, "token": 1, "userinfo": 20, "revoke": 0}
	for _, e := range endpoints {
		if n := s.Calls(e); n != want[e] {
			t.Errorf("Calls(%q) = %d, want %d", e, n, want[e])
		}
	}
}

func TestOAuth2Mode_ServesUserinfoBodyVerbatimAndNoIDToken(t *testing.T) {
	body := map[string]any{"data": map[string]any{
		"uid": 12345, "mail": "x@example.com", "mail_ok": "true", "display": "X", "avatar": "https://img.example/x.png",
	}}
	s := testop.Start(t, testop.Options{Mode: testop.OAuth2, UserinfoBody: body})

	got := signIn(t, config(s, oidc.ScopeOpenID, "email"))

	if got.idToken != "" {
		t.Errorf("OAuth2 mode issued an id_token")
	}
	if got.redirect.Has("iss") {
		t.Errorf("OAuth2 mode sent iss=%q on the authorization response", got.redirect.Get("iss"))
	}
	status, gotBody := getUserinfo(t, s, got.token.AccessToken)
	want, _ := json.Marshal(body)
	if status != http.StatusOK || !bytes.Equal(gotBody, want) {
		t.Errorf("userinfo = %d %s, want 200 %s", status, gotBody, want)
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/jwks"} {
		resp, err := http.Get(s.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
		}
	}
	if s.Calls("discovery") != 1 || s.Calls("jwks") != 1 {
		t.Errorf("404 answers were not counted")
	}
}

func TestToken_RefusesPKCEMismatch(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	cfg := config(s, oidc.ScopeOpenID)
	verifier := oauth2.GenerateVerifier()
	tests := []struct {
		name       string
		authorize  []oauth2.AuthCodeOption
		exchange   []oauth2.AuthCodeOption
		wantCode   bool // false: refused at the authorization endpoint
		wantTokErr string
	}{
		{"wrong verifier", []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)},
			[]oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}, true, "invalid_grant"},
		{"missing verifier", []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)},
			nil, true, "invalid_grant"},
		{"verifier without challenge (downgrade)", nil,
			[]oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}, true, "invalid_grant"},
		{"plain method", []oauth2.AuthCodeOption{
			oauth2.SetAuthURLParam("code_challenge", verifier), oauth2.SetAuthURLParam("code_challenge_method", "plain")},
			nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := authorize(t, cfg.AuthCodeURL(state, tt.authorize...))
			if !tt.wantCode {
				if q.Has("code") || q.Get("error") != "invalid_request" {
					t.Fatalf("authorization response = %v, want error=invalid_request", q)
				}
				return
			}
			_, err := cfg.Exchange(t.Context(), q.Get("code"), tt.exchange...)
			wantOAuthError(t, err, tt.wantTokErr)
		})
	}
}

func TestToken_RefusesCodeReplay(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	cfg := config(s, oidc.ScopeOpenID)
	code := authorize(t, cfg.AuthCodeURL(state)).Get("code")
	if _, err := cfg.Exchange(t.Context(), code); err != nil {
		t.Fatalf("first exchange: %v", err)
	}
	_, err := cfg.Exchange(t.Context(), code)
	wantOAuthError(t, err, "invalid_grant")
}

func TestToken_RefusesOtherRedirectURI(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	cfg := config(s, oidc.ScopeOpenID)
	code := authorize(t, cfg.AuthCodeURL(state)).Get("code")
	cfg.RedirectURL = redirectURI + "/other"
	_, err := cfg.Exchange(t.Context(), code)
	wantOAuthError(t, err, "invalid_grant")
}

func TestToken_AuthenticatesClientByBasicOrPost(t *testing.T) {
	s := testop.Start(t, testop.Options{ClientID: "id with:colon", ClientSecret: "s3cr%t"})
	tests := []struct {
		name    string
		style   oauth2.AuthStyle
		secret  string
		wantErr string
	}{
		{"basic", oauth2.AuthStyleInHeader, "s3cr%t", ""},
		{"post", oauth2.AuthStyleInParams, "s3cr%t", ""},
		{"wrong secret, basic", oauth2.AuthStyleInHeader, "nope", "invalid_client"},
		{"wrong secret, post", oauth2.AuthStyleInParams, "nope", "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(s, oidc.ScopeOpenID)
			cfg.ClientID, cfg.ClientSecret, cfg.Endpoint.AuthStyle = "id with:colon", tt.secret, tt.style
			_, err := cfg.Exchange(t.Context(), authorize(t, cfg.AuthCodeURL(state)).Get("code"))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("exchange: %v", err)
				}
				return
			}
			wantOAuthError(t, err, tt.wantErr)
		})
	}
}

func TestToken_RefreshGrantRotatesRefreshToken(t *testing.T) {
	s := testop.Start(t, testop.Options{IssueRefreshToken: true})
	cfg := config(s, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	first := signIn(t, cfg).token
	if first.RefreshToken == "" {
		t.Fatal("no refresh_token issued")
	}

	second, err := cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: first.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Errorf("refresh did not rotate: %+v", second)
	}
	idt, err := provider(t, s).Verifier(&oidc.Config{ClientID: "test-client"}).Verify(t.Context(), second.Extra("id_token").(string))
	if err != nil {
		t.Fatalf("refreshed id_token: %v", err)
	}
	if idt.Nonce != "" {
		t.Errorf("refreshed id_token has nonce %q, want none (OIDC Core 12.2)", idt.Nonce)
	}
	_, err = cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: first.RefreshToken}).Token()
	wantOAuthError(t, err, "invalid_grant")
}

func TestToken_ExpiresInFollowsAccessTokenLifetime(t *testing.T) {
	for _, tt := range []struct {
		lifetime time.Duration
		want     any
	}{
		{0, float64(3600)},
		{90 * time.Second, float64(90)},
		{-1, nil},
	} {
		t.Run(fmt.Sprint(tt.lifetime), func(t *testing.T) {
			s := testop.Start(t, testop.Options{AccessTokenLifetime: tt.lifetime})
			tok := signIn(t, config(s, oidc.ScopeOpenID)).token
			if got := tok.Extra("expires_in"); got != tt.want {
				t.Errorf("expires_in = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUserinfo_RefusesExpiredRevokedAndUnknownTokens(t *testing.T) {
	s := testop.Start(t, testop.Options{AccessTokenLifetime: time.Second})
	cfg := config(s, oidc.ScopeOpenID)
	revoked := signIn(t, cfg).token.AccessToken
	expired := signIn(t, cfg).token.AccessToken

	resp, err := http.PostForm(s.RevokeURL(), url.Values{
		"token": {revoked}, "client_id": {"test-client"}, "client_secret": {"test-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke = %d, want 200", resp.StatusCode)
	}
	time.Sleep(1100 * time.Millisecond)

	for name, token := range map[string]string{"revoked": revoked, "expired": expired, "unknown": "forged"} {
		if status, _ := getUserinfo(t, s, token); status != http.StatusUnauthorized {
			t.Errorf("%s token: userinfo = %d, want 401", name, status)
		}
	}
}

func TestSetClaims_ChangesIDTokenAndUserinfo(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	s.SetClaims(map[string]any{"sub": "user-2", "email": "u2@example.com", "email_verified": false})
	got := signIn(t, config(s, oidc.ScopeOpenID))

	claims := parseJWT(t, got.idToken).claims
	_, body := getUserinfo(t, s, got.token.AccessToken)
	var info map[string]any
	json.Unmarshal(body, &info)
	for name, c := range map[string]map[string]any{"id_token": claims, "userinfo": info} {
		if c["sub"] != "user-2" || c["email"] != "u2@example.com" || c["email_verified"] != false {
			t.Errorf("%s = %v, want user-2's claims", name, c)
		}
	}
}

// jwtParts is a decoded compact JWS, checked by nobody.
type jwtParts struct {
	header, claims map[string]any
	signingInput   string
	signature      []byte
}

func parseJWT(t *testing.T, raw string) jwtParts {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", raw)
	}
	var p jwtParts
	p.signingInput = parts[0] + "." + parts[1]
	for i, dst := range []*map[string]any{&p.header, &p.claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("JWS part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("JWS part %d: %v", i, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("JWS signature: %v", err)
	}
	p.signature = sig
	return p
}

// authTimeOf runs the code flow with extra authorization parameters and
// returns the id_token's auth_time (0 when absent).
func authTimeOf(t *testing.T, s *testop.Server, params ...oauth2.AuthCodeOption) int64 {
	t.Helper()
	cfg := config(s, oidc.ScopeOpenID)
	verifier := oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}, params...)
	q := authorize(t, cfg.AuthCodeURL(state, opts...))
	tok, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchanging the code: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	at, _ := parseJWT(t, raw).claims["auth_time"].(float64)
	return int64(at)
}

func TestAuthTime_FollowsPromptLoginAndMaxAge(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	login, maxAge0 := oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0")
	if at := authTimeOf(t, s); at != 0 {
		t.Errorf("auth_time %d without a login time or max_age, want none", at)
	}
	earlier := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	s.SetLoginTime(earlier)
	if at := authTimeOf(t, s); at != earlier.Unix() {
		t.Errorf("auth_time %d, want the last login %d", at, earlier.Unix())
	}
	if at := authTimeOf(t, s, oauth2.SetAuthURLParam("max_age", "86400")); at != earlier.Unix() {
		t.Errorf("a max_age the login is within: auth_time %d, want the last login %d", at, earlier.Unix())
	}
	for name, params := range map[string][]oauth2.AuthCodeOption{
		"prompt=login": {login}, "max_age=0": {maxAge0}, "max_age=60": {oauth2.SetAuthURLParam("max_age", "60")},
	} {
		s.SetLoginTime(earlier)
		if at := authTimeOf(t, s, params...); time.Since(time.Unix(at, 0)) > 5*time.Second {
			t.Errorf("%s: auth_time %d, want a fresh sign-in", name, at)
		}
	}
	s.SetLoginTime(earlier)
	s.SetFault(testop.FaultStaleAuthTime)
	if at := authTimeOf(t, s, login, maxAge0); at != earlier.Unix() {
		t.Errorf("FaultStaleAuthTime: auth_time %d, want the stale login %d", at, earlier.Unix())
	}
}
