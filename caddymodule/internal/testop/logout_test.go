package testop_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

func TestEndSession_SendsTheBrowserBackWithStateForItsOwnIDTokens(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
		BackChan   bool   `json:"backchannel_logout_supported"`
		BackSID    bool   `json:"backchannel_logout_session_supported"`
	}
	if err := provider(t, s).Claims(&meta); err != nil || meta.EndSession != s.EndSessionURL() || !meta.BackChan || !meta.BackSID {
		t.Fatalf("discovery = %+v, %v", meta, err)
	}
	got := signIn(t, config(s, oidc.ScopeOpenID))
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name   string
		params url.Values
		want   int
		to     string
	}{
		{"its own id_token", url.Values{"id_token_hint": {got.idToken}, "client_id": {"test-client"},
			"post_logout_redirect_uri": {"http://127.0.0.1:9/signed-out"}, "state": {"s1"}}, http.StatusFound, "http://127.0.0.1:9/signed-out?state=s1"},
		{"no redirect", url.Values{"id_token_hint": {got.idToken}}, http.StatusOK, ""},
		{"a forged id_token", url.Values{"id_token_hint": {got.idToken + "x"}, "post_logout_redirect_uri": {"http://127.0.0.1:9/x"}}, http.StatusBadRequest, ""},
		{"another client", url.Values{"client_id": {"other"}, "post_logout_redirect_uri": {"http://127.0.0.1:9/x"}}, http.StatusBadRequest, ""},
	} {
		resp, err := browser.Get(s.EndSessionURL() + "?" + tc.params.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want || resp.Header.Get("Location") != tc.to {
			t.Errorf("%s: %d to %q, want %d to %q", tc.name, resp.StatusCode, resp.Header.Get("Location"), tc.want, tc.to)
		}
		if q := s.LastEndSessionQuery(); q.Encode() != tc.params.Encode() {
			t.Errorf("%s: LastEndSessionQuery = %v", tc.name, q)
		}
	}
	if s.Calls("end_session") != 4 {
		t.Errorf("end_session calls = %d, want 4", s.Calls("end_session"))
	}
}

func TestLogoutToken_VerifiesWithTheProvidersKeysUnlessForged(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	got := signIn(t, config(s, oidc.ScopeOpenID))
	verifier := provider(t, s).Verifier(&oidc.Config{ClientID: "test-client"})
	idt, err := verifier.Verify(t.Context(), got.idToken)
	if err != nil {
		t.Fatal(err)
	}
	var idClaims struct {
		SID string `json:"sid"`
	}
	if idt.Claims(&idClaims); idClaims.SID == "" || idClaims.SID != s.LastSID() {
		t.Fatalf("id_token sid = %q, LastSID = %q", idClaims.SID, s.LastSID())
	}
	tok, err := verifier.Verify(t.Context(), s.LogoutToken("user-1", s.LastSID(), nil))
	if err != nil {
		t.Fatalf("a clean logout token does not verify: %v", err)
	}
	var claims map[string]any
	tok.Claims(&claims)
	events, _ := claims["events"].(map[string]any)
	if claims["sub"] != "user-1" || claims["sid"] != s.LastSID() || claims["jti"] == "" || events[testop.BackChannelLogoutEvent] == nil || claims["nonce"] != nil {
		t.Errorf("logout token claims = %v", claims)
	}
	if other := s.LogoutToken("user-1", "", nil); strings.Contains(other, claims["jti"].(string)) {
		t.Error("two logout tokens share a jti")
	}
	for name, edit := range map[string]func(map[string]string, map[string]any){
		"unknown key": func(h map[string]string, _ map[string]any) { h["kid"] = "forged" },
		"unsigned":    func(h map[string]string, _ map[string]any) { h["alg"] = "none" },
	} {
		if _, err := verifier.Verify(t.Context(), s.LogoutToken("user-1", "", edit)); err == nil {
			t.Errorf("%s: the logout token verifies", name)
		}
	}
}
