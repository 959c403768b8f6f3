package devprovider

import (
	"net/http"
	"net/url"
	"testing"
)

func TestRevoke_RevokesTokens(t *testing.T) {
	op := newTestOP(t)
	tests := []struct {
		name         string
		revoke       func(tok *tokens) string
		clientID     string
		secret       string
		wantStatus   int
		accessAlive  bool
		refreshAlive bool
	}{
		{"access token", func(tok *tokens) string { return tok.access }, "app", "app-secret", http.StatusOK, false, true},
		{"refresh token kills its access tokens", func(tok *tokens) string { return tok.refresh }, "app", "app-secret", http.StatusOK, false, false},
		{"unknown token", func(*tokens) string { return "unknown" }, "app", "app-secret", http.StatusOK, true, true},
		{"another client's token", func(tok *tokens) string { return tok.refresh }, "other", "other-secret", http.StatusBadRequest, true, true},
		{"wrong client secret", func(tok *tokens) string { return tok.refresh }, "app", "wrong", http.StatusUnauthorized, true, true},
		{"no client authentication", func(tok *tokens) string { return tok.refresh }, "", "", http.StatusUnauthorized, true, true},
		{"missing token", func(*tokens) string { return "" }, "app", "app-secret", http.StatusBadRequest, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := op.config("app", "app-secret", "openid", "offline_access")
			tok, err := cfg.Exchange(t.Context(), op.code(t, cfg))
			if err != nil {
				t.Fatal(err)
			}
			issued := &tokens{access: tok.AccessToken, refresh: tok.RefreshToken}
			form := url.Values{}
			if token := tt.revoke(issued); token != "" {
				form.Set("token", token)
				form.Set("token_type_hint", "access_token") // a hint is only a hint
			}
			status, _, doc := op.postToken(t, "/revoke", tt.clientID, tt.secret, form)
			if status != tt.wantStatus {
				t.Errorf("status %d, body %v; want %d", status, doc, tt.wantStatus)
			}
			if alive := userinfoStatus(t, op, issued.access) == http.StatusOK; alive != tt.accessAlive {
				t.Errorf("access token alive: %v, want %v", alive, tt.accessAlive)
			}
			if _, err := refresh(t, cfg, issued.refresh); (err == nil) != tt.refreshAlive {
				t.Errorf("refresh token usable: %v, want %v", err == nil, tt.refreshAlive)
			}
		})
	}
}

type tokens struct{ access, refresh string }
