package devprovider

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// newTestMux serves two providers on one loopback listener, as the gateway's
// dev_provider does: dev at the root (client dev-app) and corp under /corp
// (client corp-app, subjects corp-…, and the extra scope repo).
func newTestMux(t *testing.T) (dev, corp *testOP) {
	t.Helper()
	rp, callback := startRP(t)
	srv := httptest.NewUnstartedServer(nil)
	root := "http://" + srv.Listener.Addr().String()
	clk := &clock{now: time.Now().Truncate(time.Second)}
	devSrv, err := New(Options{Issuer: root, Clients: []Client{{ID: "dev-app", Secret: "dev-secret"}}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	corpSrv, err := New(Options{Issuer: root + "/corp", Clients: []Client{{ID: "corp-app", Secret: "corp-secret"}},
		Scopes: []string{"repo"}, SubjectPrefix: "corp-", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux, err := NewMux(devSrv, corpSrv)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return discover(t, devSrv, clk, rp, callback), discover(t, corpSrv, clk, rp, callback)
}

func TestMux_ServesTwoProvidersWithTheirOwnSubjects(t *testing.T) {
	dev, corp := newTestMux(t)
	subjects := map[string]string{}
	for _, op := range []struct {
		*testOP
		client, secret, prefix string
	}{{dev, "dev-app", "dev-secret", "dev-"}, {corp, "corp-app", "corp-secret", "corp-"}} {
		cfg := op.config(op.client, op.secret, "openid", "email")
		tok, err := cfg.Exchange(t.Context(), op.code(t, cfg)) // code checks the callback's iss
		if err != nil {
			t.Fatalf("%s: Exchange: %v", op.issuer, err)
		}
		idToken, err := op.verify(t, op.client, tok)
		if err != nil {
			t.Fatalf("%s: the ID token does not verify with its own issuer's keys: %v", op.issuer, err)
		}
		var claims struct{ Email string }
		idToken.Claims(&claims)
		if idToken.Issuer != op.issuer || claims.Email != "ada@example.com" || !strings.HasPrefix(idToken.Subject, op.prefix) {
			t.Errorf("%s: iss %q, email %q, sub %q; want its own issuer, Ada's address and a subject %s…",
				op.issuer, idToken.Issuer, claims.Email, idToken.Subject, op.prefix)
		}
		subjects[op.issuer] = idToken.Subject
	}
	if subjects[dev.issuer] == subjects[corp.issuer] {
		t.Errorf("Ada has the subject %q at both providers, want distinct subjects", subjects[dev.issuer])
	}
}

// A token, code, client or key of one provider is worth nothing at the other.
func TestMux_KeepsTheProvidersApart(t *testing.T) {
	dev, corp := newTestMux(t)
	corpCfg := corp.config("corp-app", "corp-secret", "openid", "offline_access")
	tok, err := corpCfg.Exchange(t.Context(), corp.code(t, corpCfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("the other provider's client is unknown at authorize", func(t *testing.T) {
		u := corp.config("dev-app", "dev-secret", "openid").AuthCodeURL("s")
		status, header, page := get(t, u, nil)
		if status != http.StatusBadRequest || header.Get("Location") != "" || !strings.Contains(page, "unknown client") {
			t.Errorf("status %d, Location %q; want the error page naming the unknown client", status, header.Get("Location"))
		}
	})
	// A corp code redeemed with dev's client, at corp or at dev.
	for _, tt := range []struct {
		name       string
		at         *testOP
		wantStatus int
		wantError  string
	}{
		{"the other provider's client at token", corp, http.StatusUnauthorized, "invalid_client"},
		{"a code redeemed at the other provider", dev, http.StatusBadRequest, "invalid_grant"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"authorization_code"}, "code": {corp.code(t, corpCfg)}, "redirect_uri": {corp.callback}}
			if status, _, doc := tt.at.postToken(t, "/token", "dev-app", "dev-secret", form); status != tt.wantStatus || doc["error"] != tt.wantError {
				t.Errorf("status %d, %v; want %d %s", status, doc, tt.wantStatus, tt.wantError)
			}
		})
	}
	t.Run("an access token at the other provider's userinfo", func(t *testing.T) {
		if status := userinfoStatus(t, dev, tok.AccessToken); status != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", status)
		}
		if status := userinfoStatus(t, corp, tok.AccessToken); status != http.StatusOK {
			t.Errorf("at its own provider: status %d, want 200", status)
		}
	})
	t.Run("an ID token checked with the other provider's keys", func(t *testing.T) {
		raw, _ := tok.Extra("id_token").(string)
		sig, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		_, _, body := get(t, dev.issuer+"/jwks", nil)
		var set jose.JSONWebKeySet
		json.Unmarshal([]byte(body), &set)
		if _, err := sig.Verify(set.Keys[0].Key); err == nil {
			t.Error("corp's ID token verifies with dev's key")
		}
	})
	t.Run("a refresh token revoked at the other provider", func(t *testing.T) {
		status, _, _ := dev.postToken(t, "/revoke", "dev-app", "dev-secret", url.Values{"token": {tok.RefreshToken}})
		if status != http.StatusOK {
			t.Errorf("status %d, want 200 (an unknown token there)", status)
		}
		if _, err := refresh(t, corpCfg, tok.RefreshToken); err != nil {
			t.Errorf("the token no longer refreshes at its own provider: %v", err)
		}
	})
}

func TestMux_RoutesByWholePathSegments(t *testing.T) {
	dev, corp := newTestMux(t)
	kid := func(u string) string {
		status, _, body := get(t, u, nil)
		var set jose.JSONWebKeySet
		if status != http.StatusOK || json.Unmarshal([]byte(body), &set) != nil || len(set.Keys) != 1 {
			t.Fatalf("GET %s: status %d, want a key set", u, status)
		}
		return set.Keys[0].KeyID
	}
	if kid(dev.issuer+"/jwks") == kid(corp.issuer+"/jwks") {
		t.Error("both paths serve the same key: the requests reached one provider")
	}
	for _, path := range []string{"/corp", "/corpx/jwks", "/corp/../jwks", "/corp/corp/jwks", "/CORP/jwks", "/"} {
		if status, _, _ := get(t, dev.issuer+path, nil); status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, status)
		}
	}
}

func TestNewMux_RejectsTwoIssuersWithOnePath(t *testing.T) {
	a, err := New(Options{Issuer: "http://127.0.0.1:1/corp", Clients: []Client{{ID: "a", Secret: "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Issuer: "http://localhost:1/corp", Clients: []Client{{ID: "b", Secret: "s"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMux(a, b); err == nil || !strings.Contains(err.Error(), `share the path "/corp"`) {
		t.Errorf("NewMux error = %v, want one naming the shared path", err)
	}
}

// An extra scope is granted only when asked for, so a client can ask for it
// later (incremental authorization); a refresh cannot add it.
func TestScopes_ExtraScopeIsGrantedOnlyWhenAskedFor(t *testing.T) {
	dev, corp := newTestMux(t)
	_, _, body := get(t, corp.issuer+"/.well-known/openid-configuration", nil)
	var doc struct {
		Scopes []string `json:"scopes_supported"`
	}
	json.Unmarshal([]byte(body), &doc)
	if want := []string{"openid", "profile", "email", "offline_access", "repo"}; !slices.Equal(doc.Scopes, want) {
		t.Errorf("scopes_supported = %q, want %q", doc.Scopes, want)
	}
	tests := []struct {
		op        *testOP
		client    string
		scopes    []string
		wantScope string
	}{
		{corp, "corp-app", []string{"openid", "offline_access"}, "openid offline_access"},
		{corp, "corp-app", []string{"openid", "offline_access", "repo", "admin"}, "openid offline_access repo"},
		{dev, "dev-app", []string{"openid", "offline_access", "repo"}, "openid offline_access"},
	}
	for _, tt := range tests {
		cfg := tt.op.config(tt.client, strings.TrimSuffix(tt.client, "-app")+"-secret", tt.scopes...)
		authURL := cfg.AuthCodeURL("s")
		if _, _, page := get(t, authURL, nil); strings.Contains(page, "<code>repo</code>") != strings.Contains(tt.wantScope, "repo") {
			t.Errorf("%s asked for %q: the page's scope list is wrong about repo", tt.op.issuer, tt.scopes)
		}
		tok, err := cfg.Exchange(t.Context(), tt.op.code(t, cfg))
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Extra("scope"); got != tt.wantScope {
			t.Errorf("%s asked for %q: granted %q, want %q", tt.op.issuer, tt.scopes, got, tt.wantScope)
		}
		if !strings.Contains(tt.wantScope, "repo") {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"openid repo"}}
			if _, _, doc := tt.op.postToken(t, "/token", tt.client, cfg.ClientSecret, form); doc["error"] != "invalid_scope" {
				t.Errorf("%s: a refresh asking for repo answered %v, want invalid_scope", tt.op.issuer, doc)
			}
		}
	}
}
