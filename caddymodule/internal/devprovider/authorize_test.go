package devprovider

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestCodeFlow_PKCEAndNonceYieldVerifiedIDToken(t *testing.T) {
	op := newTestOP(t)
	cfg := op.config("app", "app-secret", "openid", "profile", "email")
	verifier := oauth2.GenerateVerifier()
	code := op.code(t, cfg, oauth2.S256ChallengeOption(verifier), oidc.Nonce("the-nonce"))

	tok, err := cfg.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.TokenType != "Bearer" || tok.RefreshToken != "" || tok.Extra("scope") != "openid profile email" {
		t.Errorf("token type %q, refresh %q, scope %q; want Bearer, none, granted scopes", tok.TokenType, tok.RefreshToken, tok.Extra("scope"))
	}
	if got := tok.Extra("expires_in"); got != float64(3600) {
		t.Errorf("expires_in = %v, want 3600", got)
	}
	idToken, err := op.verify(t, "app", tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if idToken.Nonce != "the-nonce" {
		t.Errorf("nonce = %q, want the-nonce", idToken.Nonce)
	}
	if err := idToken.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		Name          string `json:"name"`
		AuthTime      int64  `json:"auth_time"`
	}
	if err := idToken.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	want := user{Name: "Ada Lovelace", Email: "ada@example.com", EmailVerified: true}
	if idToken.Subject != op.subject(want) || claims.Email != want.Email || !claims.EmailVerified || claims.Name != want.Name {
		t.Errorf("sub %q, claims %+v; want Ada's", idToken.Subject, claims)
	}
	if claims.AuthTime != op.clock.Now().Unix() || !idToken.Expiry.Equal(op.clock.Now().Add(time.Hour)) {
		t.Errorf("auth_time %d, exp %v; want now and now+1h", claims.AuthTime, idToken.Expiry)
	}

	info, err := op.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
	if err != nil || info.Subject != idToken.Subject || info.Email != "ada@example.com" {
		t.Errorf("UserInfo = %+v, %v; want Ada", info, err)
	}
}

func TestAuthorize_PageOffersPresetUsersAndAForm(t *testing.T) {
	op := newTestOP(t)
	cfg := op.config("app", "app-secret", "openid", "email")
	status, header, page := get(t, cfg.AuthCodeURL(`"><script>`), nil)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	for _, want := range []string{
		"Development provider: not for production",
		`value="ada"`, "Ada Lovelace", "ada@example.com",
		`value="grace"`, "Grace Hopper", "grace@example.com",
		`value="alan"`, "Alan Turing", "alan@example.com",
		`<label for="name">`, `<label for="email">`, `name="email_verified" value="true" checked`,
		`name="viewport"`, `<html lang="en">`,
		`action="/dev/authorize"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, `"><script>`) {
		t.Error("page reflects the state unescaped")
	}
	if csp := header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy = %q, want framing forbidden", csp)
	}
}

func TestAuthorize_BadClientOrRedirectShowsPageWithoutRedirect(t *testing.T) {
	op := newTestOP(t)
	tests := []struct {
		name  string
		query url.Values
	}{
		{"missing client_id", url.Values{"redirect_uri": {op.callback}}},
		{"unknown client_id", url.Values{"client_id": {"nobody"}, "redirect_uri": {op.callback}}},
		{"repeated client_id", url.Values{"client_id": {"app", "app"}, "redirect_uri": {op.callback}}},
		{"missing redirect_uri", url.Values{"client_id": {"app"}}},
		{"unregistered redirect_uri", url.Values{"client_id": {"app"}, "redirect_uri": {"https://evil.example/callback"}}},
		{"redirect_uri differing by a slash", url.Values{"client_id": {"app"}, "redirect_uri": {op.callback + "/"}}},
		{"repeated redirect_uri", url.Values{"client_id": {"app"}, "redirect_uri": {op.callback, op.callback}}},
		{"javascript redirect for an open client", url.Values{"client_id": {"dev"}, "redirect_uri": {"javascript:alert(1)"}}},
		{"relative redirect for an open client", url.Values{"client_id": {"dev"}, "redirect_uri": {"/callback"}}},
		{"redirect with fragment for an open client", url.Values{"client_id": {"dev"}, "redirect_uri": {"https://app.example/cb#x"}}},
		{"oversized parameter", url.Values{"client_id": {"app"}, "redirect_uri": {op.callback}, "state": {strings.Repeat("s", maxParamLen+1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := tt.query
			q.Set("response_type", "code")
			q.Set("scope", "openid")
			for _, send := range []func() (int, http.Header, string){
				func() (int, http.Header, string) { return get(t, op.issuer+"/authorize?"+q.Encode(), nil) },
				func() (int, http.Header, string) {
					return post(t, op.issuer+"/authorize", withUser(q, "ada"), nil)
				},
			} {
				status, header, page := send()
				if status != http.StatusBadRequest || header.Get("Location") != "" {
					t.Errorf("status %d, Location %q; want 400 and no redirect", status, header.Get("Location"))
				}
				if !strings.Contains(page, "cannot continue") {
					t.Errorf("page lacks the explanation:\n%s", page)
				}
			}
		})
	}
}

func withUser(q url.Values, id string) url.Values {
	form := url.Values{"user": {id}}
	for k, v := range q {
		form[k] = v
	}
	return form
}

func TestAuthorize_RedirectsProtocolErrorsWithStateAndIss(t *testing.T) {
	op := newTestOP(t)
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	tests := []struct {
		name  string
		query url.Values
		want  string
	}{
		{"missing response_type", url.Values{"response_type": nil}, "invalid_request"},
		{"implicit response_type", url.Values{"response_type": {"token"}}, "unsupported_response_type"},
		{"hybrid response_type", url.Values{"response_type": {"code id_token"}}, "unsupported_response_type"},
		{"form_post response_mode", url.Values{"response_mode": {"form_post"}}, "invalid_request"},
		{"no openid scope", url.Values{"scope": {"profile email"}}, "invalid_scope"},
		{"plain PKCE", url.Values{"code_challenge": {challenge}, "code_challenge_method": {"plain"}}, "invalid_request"},
		{"PKCE without method", url.Values{"code_challenge": {challenge}}, "invalid_request"},
		{"PKCE method without challenge", url.Values{"code_challenge_method": {"S256"}}, "invalid_request"},
		{"short challenge", url.Values{"code_challenge": {"abc"}, "code_challenge_method": {"S256"}}, "invalid_request"},
		{"repeated scope", url.Values{"scope": {"openid", "openid"}}, "invalid_request"},
		{"prompt none", url.Values{"prompt": {"none"}}, "login_required"},
		{"request object", url.Values{"request": {"eyJ..."}}, "request_not_supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"client_id": {"app"}, "redirect_uri": {op.callback}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s1"}}
			for k, v := range tt.query {
				q[k] = v
				if v == nil {
					delete(q, k)
				}
			}
			status, header, _ := get(t, op.issuer+"/authorize?"+q.Encode(), nil)
			loc, _ := url.Parse(header.Get("Location"))
			got := loc.Query()
			if status != http.StatusFound || !strings.HasPrefix(loc.String(), op.callback+"?") {
				t.Fatalf("status %d, Location %q; want a redirect to the client", status, loc)
			}
			if got.Get("error") != tt.want || got.Get("error_description") == "" || got.Get("state") != "s1" || got.Get("iss") != op.issuer || got.Has("code") {
				t.Errorf("redirect query = %v, want error %s with description, state and iss", got, tt.want)
			}
		})
	}
}

func TestAuthorize_SignsInTypedUser(t *testing.T) {
	op := newTestOP(t)
	cfg := op.config("app", "app-secret", "openid", "profile", "email")
	for _, verified := range []bool{true, false} {
		form := url.Values{"name": {" Edsger Dijkstra "}, "email": {"EWD@Example.org"}}
		if verified {
			form.Set("email_verified", "true")
		}
		q := op.signIn(t, cfg.AuthCodeURL("s"), form)
		tok, err := cfg.Exchange(t.Context(), q.Get("code"))
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		idToken, err := op.verify(t, "app", tok)
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Email         string `json:"email"`
			EmailVerified bool   `json:"email_verified"`
			Name          string `json:"name"`
		}
		idToken.Claims(&claims)
		if claims.Name != "Edsger Dijkstra" || claims.Email != "EWD@Example.org" || claims.EmailVerified != verified {
			t.Errorf("claims = %+v, want the typed user with email_verified %v", claims, verified)
		}
		if want := op.subject(user{Email: "ewd@example.org"}); idToken.Subject != want {
			t.Errorf("sub = %q, want %q (from the lower-cased email)", idToken.Subject, want)
		}
	}
}

func TestAuthorize_RejectsInvalidUserWithoutRedirect(t *testing.T) {
	op := newTestOP(t)
	base := url.Values{"client_id": {"app"}, "redirect_uri": {op.callback}, "response_type": {"code"}, "scope": {"openid"}}
	tests := []struct {
		name string
		form url.Values
	}{
		{"no email", url.Values{"name": {"Ada"}}},
		{"no at sign", url.Values{"name": {"Ada"}, "email": {"ada.example.com"}}},
		{"display name", url.Values{"name": {"Ada"}, "email": {"Ada <ada@example.com>"}}},
		{"two addresses", url.Values{"name": {"Ada"}, "email": {"ada@example.com, eve@example.com"}}},
		{"no name", url.Values{"email": {"ada@example.com"}}},
		{"unknown preset", url.Values{"user": {"eve"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{}
			for _, v := range []url.Values{base, tt.form} {
				for k, vs := range v {
					form[k] = vs
				}
			}
			status, header, page := post(t, op.issuer+"/authorize", form, nil)
			if status != http.StatusBadRequest || header.Get("Location") != "" || !strings.Contains(page, `role="alert"`) {
				t.Errorf("status %d, Location %q; want the form again with an alert", status, header.Get("Location"))
			}
		})
	}
}

func TestAuthorize_RefusesNewCodesWhenFull(t *testing.T) {
	op := newTestOP(t)
	op.state.limit = 1
	cfg := op.config("app", "app-secret", "openid")
	op.code(t, cfg)
	q := op.signIn(t, cfg.AuthCodeURL("s"), url.Values{"user": {"ada"}})
	if q.Get("error") != "temporarily_unavailable" || q.Has("code") {
		t.Errorf("callback = %v, want temporarily_unavailable", q)
	}
	op.clock.Advance(codeLifetime)
	if q := op.signIn(t, cfg.AuthCodeURL("s"), url.Values{"user": {"ada"}}); !q.Has("code") {
		t.Errorf("after the first code expired, callback = %v, want a code", q)
	}
}

func TestSubject_IsStablePerEmailIgnoringCase(t *testing.T) {
	op := newTestOP(t)
	a := op.subject(user{Email: "Ada@Example.com"})
	if b := op.subject(user{Email: "ada@example.com", Name: "Other"}); a != b {
		t.Errorf("subjects differ by case: %q, %q", a, b)
	}
	if c := op.subject(user{Email: "grace@example.com"}); a == c {
		t.Error("two emails share a subject")
	}
	if !strings.HasPrefix(a, "dev-") || len(a) != len("dev-")+24 {
		t.Errorf("subject %q, want dev- and 24 hex characters", a)
	}
}
