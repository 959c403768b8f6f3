package devprovider

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// userinfoStatus calls the userinfo endpoint with a Bearer token.
func userinfoStatus(t *testing.T, op *testOP, accessToken string) int {
	t.Helper()
	status, _, _ := get(t, op.issuer+"/userinfo", http.Header{"Authorization": {"Bearer " + accessToken}})
	return status
}

func TestUserinfo_ScopesGateClaims(t *testing.T) {
	op := newTestOP(t)
	tests := []struct {
		scopes []string
		want   []string
	}{
		{[]string{"openid"}, []string{"sub"}},
		{[]string{"openid", "email"}, []string{"email", "email_verified", "sub"}},
		{[]string{"openid", "profile"}, []string{"name", "sub"}},
		{[]string{"openid", "profile", "email", "unknown"}, []string{"email", "email_verified", "name", "sub"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.scopes, " "), func(t *testing.T) {
			cfg := op.config("app", "app-secret", tt.scopes...)
			tok, err := cfg.Exchange(t.Context(), op.code(t, cfg))
			if err != nil {
				t.Fatal(err)
			}
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				req, _ := http.NewRequestWithContext(t.Context(), method, op.issuer+"/userinfo", nil)
				req.Header.Set("Authorization", "bearer "+tok.AccessToken)
				status, header, body := do(t, req)
				var claims map[string]any
				json.Unmarshal([]byte(body), &claims)
				if got := slices.Sorted(maps.Keys(claims)); status != http.StatusOK || !slices.Equal(got, tt.want) {
					t.Errorf("%s: status %d, claims %v; want 200 and %v", method, status, got, tt.want)
				}
				if header.Get("Cache-Control") != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", header.Get("Cache-Control"))
				}
			}
			idToken, err := op.verify(t, "app", tok)
			if err != nil {
				t.Fatal(err)
			}
			var claims map[string]any
			idToken.Claims(&claims)
			for _, name := range []string{"email", "email_verified", "name"} {
				if _, ok := claims[name]; ok != slices.Contains(tt.want, name) {
					t.Errorf("ID token has %s: %v; want the same as userinfo", name, ok)
				}
			}
		})
	}
}

func TestUserinfo_RejectsMissingInvalidOrExpiredToken(t *testing.T) {
	op := newTestOP(t)
	cfg := op.config("app", "app-secret", "openid", "offline_access")
	tok, err := cfg.Exchange(t.Context(), op.code(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	// An access token narrowed by a refresh to a scope without openid.
	_, _, narrowed := op.postToken(t, "/token", "app", "app-secret", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"offline_access"},
	})
	tests := []struct {
		name          string
		authorization string
		advance       time.Duration
		wantStatus    int
		wantChallenge string
	}{
		{"valid token", "Bearer " + tok.AccessToken, 0, http.StatusOK, ""},
		{"missing", "", 0, http.StatusUnauthorized, `Bearer realm="devprovider"`},
		{"basic scheme", "Basic YXBwOmFwcC1zZWNyZXQ=", 0, http.StatusUnauthorized, `Bearer realm="devprovider"`},
		{"unknown token", "Bearer not-a-token", 0, http.StatusUnauthorized, `error="invalid_token"`},
		{"token without openid", "Bearer " + narrowed["access_token"].(string), 0, http.StatusForbidden, `error="insufficient_scope"`},
		{"token about to expire", "Bearer " + tok.AccessToken, time.Hour - time.Second, http.StatusOK, ""},
		{"expired token", "Bearer " + tok.AccessToken, time.Second, http.StatusUnauthorized, `error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op.clock.Advance(tt.advance)
			header := http.Header{}
			if tt.authorization != "" {
				header.Set("Authorization", tt.authorization)
			}
			status, respHeader, _ := get(t, op.issuer+"/userinfo", header)
			if status != tt.wantStatus || !strings.Contains(respHeader.Get("WWW-Authenticate"), tt.wantChallenge) {
				t.Errorf("status %d, WWW-Authenticate %q; want %d and %s", status, respHeader.Get("WWW-Authenticate"), tt.wantStatus, tt.wantChallenge)
			}
			if tt.wantStatus == http.StatusUnauthorized && tt.authorization == "" && strings.Contains(respHeader.Get("WWW-Authenticate"), "error=") {
				t.Error("a request without credentials got an error code (RFC 6750 section 3.1)")
			}
		})
	}
}
