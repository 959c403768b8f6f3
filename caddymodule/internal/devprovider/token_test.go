package devprovider

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// tokenError returns the OAuth error code of a failed x/oauth2 call.
func tokenError(err error) string {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		return re.ErrorCode
	}
	return ""
}

// postToken sends a raw token (or revocation) request with client_secret_basic.
func (op *testOP) postToken(t *testing.T, path, clientID, secret string, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	header := http.Header{}
	if clientID != "" {
		req, _ := http.NewRequest(http.MethodPost, "/", nil)
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
		header.Set("Authorization", req.Header.Get("Authorization"))
	}
	status, respHeader, body := post(t, op.issuer+path, form, header)
	var doc map[string]any
	json.Unmarshal([]byte(body), &doc)
	return status, respHeader, doc
}

// refresh exchanges a refresh token through x/oauth2.
func refresh(t *testing.T, cfg *oauth2.Config, refreshToken string) (*oauth2.Token, error) {
	t.Helper()
	expired := &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Hour)}
	return cfg.TokenSource(t.Context(), expired).Token()
}

func TestToken_RejectsReplayedCodeAndRevokesItsTokens(t *testing.T) {
	op := newTestOP(t)
	cfg := op.config("app", "app-secret", "openid", "offline_access")
	code := op.code(t, cfg)
	first, err := cfg.Exchange(t.Context(), code)
	if err != nil {
		t.Fatalf("first Exchange: %v", err)
	}
	if _, err := cfg.Exchange(t.Context(), code); tokenError(err) != "invalid_grant" {
		t.Fatalf("replayed Exchange error = %v, want invalid_grant", err)
	}
	if status := userinfoStatus(t, op, first.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo with the first access token: status %d, want 401 after the replay", status)
	}
	if _, err := refresh(t, cfg, first.RefreshToken); tokenError(err) != "invalid_grant" {
		t.Errorf("refresh after the replay: %v, want invalid_grant", err)
	}
}

func TestToken_ConcurrentRedemptionsYieldOneSuccess(t *testing.T) {
	op := newTestOP(t)
	cfg := op.config("app", "app-secret", "openid")
	code := op.code(t, cfg)
	var wg sync.WaitGroup
	var mu sync.Mutex
	successes := 0
	for range 20 {
		wg.Go(func() {
			if _, err := cfg.Exchange(t.Context(), code); err == nil {
				mu.Lock()
				successes++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if successes != 1 {
		t.Errorf("%d redemptions succeeded, want exactly 1", successes)
	}
}

func TestToken_EnforcesPKCE(t *testing.T) {
	op := newTestOP(t)
	verifier := oauth2.GenerateVerifier()
	tests := []struct {
		name      string
		challenge bool
		verifier  string
		want      string
	}{
		{"matching verifier", true, verifier, ""},
		{"wrong verifier", true, oauth2.GenerateVerifier(), "invalid_grant"},
		{"missing verifier", true, "", "invalid_grant"},
		{"challenge as verifier", true, oauth2.S256ChallengeFromVerifier(verifier), "invalid_grant"},
		{"verifier without challenge", false, verifier, "invalid_grant"},
		{"no PKCE at all", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := op.config("app", "app-secret", "openid")
			var opts []oauth2.AuthCodeOption
			if tt.challenge {
				opts = append(opts, oauth2.S256ChallengeOption(verifier))
			}
			code := op.code(t, cfg, opts...)
			var exchangeOpts []oauth2.AuthCodeOption
			if tt.verifier != "" {
				exchangeOpts = append(exchangeOpts, oauth2.VerifierOption(tt.verifier))
			}
			_, err := cfg.Exchange(t.Context(), code, exchangeOpts...)
			if tokenError(err) != tt.want || (tt.want == "" && err != nil) {
				t.Errorf("Exchange error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestToken_RequiresTheSameRedirectURI(t *testing.T) {
	op := newTestOP(t)
	tests := []struct {
		name, client, secret, authorizeURI, tokenURI, want string
	}{
		{"registered, repeated", "app", "app-secret", "", "", ""},
		{"registered, differs", "app", "app-secret", "", "https://evil.example/callback", "invalid_grant"},
		{"registered, missing", "app", "app-secret", "", "-", "invalid_grant"},
		{"open client, repeated", "dev", "dev secret+/%", "http://localhost:1/anything", "http://localhost:1/anything", ""},
		{"open client, differs", "dev", "dev secret+/%", "http://localhost:1/anything", "http://localhost:1/other", "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := op.config(tt.client, tt.secret, "openid")
			authorizeURI := op.callback
			if tt.authorizeURI != "" {
				authorizeURI = tt.authorizeURI
			}
			// Sign in by hand: an open client's redirect_uri may lead nowhere.
			form := url.Values{"user": {"ada"}, "client_id": {tt.client}, "redirect_uri": {authorizeURI}, "response_type": {"code"}, "scope": {"openid"}}
			status, header, _ := post(t, op.issuer+"/authorize", form, nil)
			loc, _ := url.Parse(header.Get("Location"))
			if status != http.StatusFound || !strings.HasPrefix(loc.String(), authorizeURI+"?") {
				t.Fatalf("authorize: status %d, Location %q", status, loc)
			}
			cfg.RedirectURL = authorizeURI
			switch tt.tokenURI {
			case "":
			case "-":
				cfg.RedirectURL = ""
			default:
				cfg.RedirectURL = tt.tokenURI
			}
			_, err := cfg.Exchange(t.Context(), loc.Query().Get("code"))
			if tokenError(err) != tt.want || (tt.want == "" && err != nil) {
				t.Errorf("Exchange error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestToken_RejectsExpiredCodeAndCodeOfAnotherClient(t *testing.T) {
	op := newTestOP(t)
	app := op.config("app", "app-secret", "openid")
	code := op.code(t, app)
	if _, err := op.config("other", "other-secret").Exchange(t.Context(), code); tokenError(err) != "invalid_grant" {
		t.Errorf("another client's Exchange error = %v, want invalid_grant", err)
	}
	op.clock.Advance(codeLifetime)
	if _, err := app.Exchange(t.Context(), code); tokenError(err) != "invalid_grant" {
		t.Errorf("Exchange after %v: error = %v, want invalid_grant", codeLifetime, err)
	}
}

func TestToken_AuthenticatesClients(t *testing.T) {
	op := newTestOP(t)
	tests := []struct {
		name       string
		basic      [2]string
		form       url.Values
		wantStatus int
		wantError  string
	}{
		{"basic", [2]string{"app", "app-secret"}, nil, http.StatusOK, ""},
		{"post", [2]string{}, url.Values{"client_id": {"app"}, "client_secret": {"app-secret"}}, http.StatusOK, ""},
		{"basic with matching client_id", [2]string{"app", "app-secret"}, url.Values{"client_id": {"app"}}, http.StatusOK, ""},
		{"wrong secret", [2]string{"app", "wrong"}, nil, http.StatusUnauthorized, "invalid_client"},
		{"wrong secret in form", [2]string{}, url.Values{"client_id": {"app"}, "client_secret": {"app-secre"}}, http.StatusUnauthorized, "invalid_client"},
		{"another client's secret", [2]string{"app", "other-secret"}, nil, http.StatusUnauthorized, "invalid_client"},
		{"unknown client", [2]string{"nobody", "app-secret"}, nil, http.StatusUnauthorized, "invalid_client"},
		{"no secret", [2]string{}, url.Values{"client_id": {"app"}}, http.StatusUnauthorized, "invalid_client"},
		{"no authentication", [2]string{}, nil, http.StatusUnauthorized, "invalid_client"},
		{"basic with another client_id", [2]string{"app", "app-secret"}, url.Values{"client_id": {"other"}}, http.StatusUnauthorized, "invalid_client"},
		{"two methods", [2]string{"app", "app-secret"}, url.Values{"client_secret": {"app-secret"}}, http.StatusBadRequest, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"authorization_code"}, "code": {op.code(t, op.config("app", "app-secret", "openid"))}, "redirect_uri": {op.callback}}
			for k, v := range tt.form {
				form[k] = v
			}
			status, header, doc := op.postToken(t, "/token", tt.basic[0], tt.basic[1], form)
			if status != tt.wantStatus || (tt.wantError != "" && doc["error"] != tt.wantError) {
				t.Errorf("status %d, body %v; want %d %s", status, doc, tt.wantStatus, tt.wantError)
			}
			if status == http.StatusUnauthorized && !strings.HasPrefix(header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("WWW-Authenticate = %q, want a Basic challenge", header.Get("WWW-Authenticate"))
			}
			if status == http.StatusOK && header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", header.Get("Cache-Control"))
			}
		})
	}
}

func TestToken_RejectsMalformedRequests(t *testing.T) {
	op := newTestOP(t)
	tests := []struct {
		name string
		form url.Values
		want string
	}{
		{"missing grant_type", url.Values{}, "invalid_request"},
		{"password grant", url.Values{"grant_type": {"password"}}, "unsupported_grant_type"},
		{"client_credentials grant", url.Values{"grant_type": {"client_credentials"}}, "unsupported_grant_type"},
		{"missing code", url.Values{"grant_type": {"authorization_code"}}, "invalid_request"},
		{"unknown code", url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}}, "invalid_grant"},
		{"missing refresh_token", url.Values{"grant_type": {"refresh_token"}}, "invalid_request"},
		{"unknown refresh_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}, "invalid_grant"},
		{"repeated parameter", url.Values{"grant_type": {"authorization_code", "refresh_token"}}, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, doc := op.postToken(t, "/token", "app", "app-secret", tt.form)
			if status != http.StatusBadRequest || doc["error"] != tt.want || doc["error_description"] == "" {
				t.Errorf("status %d, body %v; want 400 %s with a description", status, doc, tt.want)
			}
		})
	}
}

func TestToken_RefreshTokenNeedsOfflineAccess(t *testing.T) {
	op := newTestOP(t)
	for _, scopes := range [][]string{{"openid"}, {"openid", "offline_access"}} {
		cfg := op.config("app", "app-secret", scopes...)
		tok, err := cfg.Exchange(t.Context(), op.code(t, cfg))
		if err != nil {
			t.Fatal(err)
		}
		if want := len(scopes) == 2; (tok.RefreshToken != "") != want {
			t.Errorf("scopes %v: refresh token %v, want %v", scopes, tok.RefreshToken != "", want)
		}
	}
}

func TestToken_RefreshRotatesAndReuseRevokesTheFamily(t *testing.T) {
	op := newTestOP(t)
	cfg := op.config("app", "app-secret", "openid", "email", "offline_access")
	first, err := cfg.Exchange(t.Context(), op.code(t, cfg, oauth2.SetAuthURLParam("nonce", "n")))
	if err != nil {
		t.Fatal(err)
	}
	second, err := refresh(t, cfg, first.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("refresh did not rotate the tokens")
	}
	if second.Extra("scope") != "openid email offline_access" {
		t.Errorf("scope = %v, want the granted scope", second.Extra("scope"))
	}
	if idToken, err := op.verify(t, "app", second); err != nil || idToken.Nonce != "" {
		t.Errorf("refreshed ID token: %v; want valid and without nonce", err)
	}
	if status := userinfoStatus(t, op, second.AccessToken); status != http.StatusOK {
		t.Errorf("userinfo with the new access token: status %d", status)
	}

	// The old refresh token is refused, and its reuse revokes the family.
	if _, err := refresh(t, cfg, first.RefreshToken); tokenError(err) != "invalid_grant" {
		t.Fatalf("reusing the old refresh token: %v, want invalid_grant", err)
	}
	if _, err := refresh(t, cfg, second.RefreshToken); tokenError(err) != "invalid_grant" {
		t.Errorf("the new refresh token after reuse: %v, want invalid_grant", err)
	}
	for _, at := range []string{first.AccessToken, second.AccessToken} {
		if status := userinfoStatus(t, op, at); status != http.StatusUnauthorized {
			t.Errorf("userinfo after reuse: status %d, want 401", status)
		}
	}
}

func TestToken_RefreshScopeMayOnlyNarrow(t *testing.T) {
	op := newTestOP(t)
	tests := []struct {
		scope, wantScope, wantError string
	}{
		{"", "openid profile offline_access", ""},
		{"profile openid", "openid profile", ""},
		{"profile", "profile", ""},
		{"openid email", "", "invalid_scope"},
		{"openid admin", "", "invalid_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			cfg := op.config("app", "app-secret", "openid", "profile", "offline_access")
			tok, err := cfg.Exchange(t.Context(), op.code(t, cfg))
			if err != nil {
				t.Fatal(err)
			}
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
			if tt.scope != "" {
				form.Set("scope", tt.scope)
			}
			_, _, doc := op.postToken(t, "/token", "app", "app-secret", form)
			if gotError, _ := doc["error"].(string); gotError != tt.wantError || tt.wantError == "" && doc["scope"] != tt.wantScope {
				t.Errorf("response %v, want scope %q / error %q", doc, tt.wantScope, tt.wantError)
			}
			_, hasID := doc["id_token"]
			if tt.wantError == "" && hasID != strings.Contains(tt.wantScope, "openid") {
				t.Errorf("id_token present %v with scope %q", hasID, tt.wantScope)
			}
			if tt.wantError != "" {
				if _, err := refresh(t, cfg, tok.RefreshToken); err != nil {
					t.Errorf("refresh token unusable after a refused narrowing: %v", err)
				}
			}
		})
	}
}

func TestToken_RefreshIsBoundToItsClient(t *testing.T) {
	op := newTestOP(t)
	cfg := op.config("app", "app-secret", "openid", "offline_access")
	tok, err := cfg.Exchange(t.Context(), op.code(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := refresh(t, op.config("other", "other-secret"), tok.RefreshToken); tokenError(err) != "invalid_grant" {
		t.Errorf("another client's refresh: %v, want invalid_grant", err)
	}
	if _, err := refresh(t, cfg, tok.RefreshToken); err != nil {
		t.Errorf("own refresh after another client's attempt: %v", err)
	}
}
