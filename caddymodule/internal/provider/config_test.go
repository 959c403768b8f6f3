package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func pemOf(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func TestNew_RejectsWhatAKindCannotUse(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	apple := Config{Name: "apple", Kind: "apple", ClientID: "com.example.web", TeamID: "TEAM123456", KeyID: "KEY1234567", PrivateKey: appleKeyPEM}
	with := func(c Config, edit func(*Config)) Config { edit(&c); return c }
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error
	}{
		{"unknown kind lists the kinds", Config{Name: "p", Kind: "myspace", ClientID: "c"}, []string{"provider p", `"myspace"`, strings.Join(Kinds(), ", ")}},
		{"no client id", Config{Name: "g", Kind: "google"}, []string{"provider g", "client_id is required"}},
		{"apple without team id", with(apple, func(c *Config) { c.TeamID = "" }), []string{"provider apple: team_id is required"}},
		{"apple without key id", with(apple, func(c *Config) { c.KeyID = "" }), []string{"key_id is required"}},
		{"apple without key", with(apple, func(c *Config) { c.PrivateKey = "" }), []string{"private_key is required"}},
		{"apple key not PEM", with(apple, func(c *Config) { c.PrivateKey = "MIGTAgEAMBMGByqGSM49" }), []string{"private_key", "not a PEM block"}},
		{"apple key garbled", with(apple, func(c *Config) {
			c.PrivateKey = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("garbage")}))
		}), []string{"private_key", "unreadable key"}},
		{"apple RSA key", with(apple, func(c *Config) { c.PrivateKey = pemOf(t, rsaKey) }), []string{"private_key", "not an ECDSA P-256 key"}},
		{"apple P-384 key", with(apple, func(c *Config) { c.PrivateKey = pemOf(t, p384) }), []string{"private_key", "not an ECDSA P-256 key"}},
		{"apple key fields on google", Config{Name: "g", Kind: "google", ClientID: "c", TeamID: "T"}, []string{"apply only to apple"}},
		{"tenant on google", Config{Name: "g", Kind: "google", ClientID: "c", Tenant: "common"}, []string{"tenant applies only to microsoft"}},
		{"native client ids on apple", Config{Name: "a", Kind: "apple", ClientID: "c", NativeClientIDs: []string{"com.example.ios"}}, []string{"provider a", "native_client_ids do not apply to apple", "bundle_ids"}},
		{"native client ids on github", Config{Name: "gh", Kind: "github", ClientID: "c", NativeClientIDs: []string{"x"}}, []string{"provider gh", "native_client_ids apply only to OpenID providers"}},
		{"tenant not a path segment", Config{Name: "m", Kind: "microsoft", ClientID: "c", Tenant: "../evil"}, []string{"tenant", "not a tenant id"}},
		{"base url on github", Config{Name: "gh", Kind: "github", ClientID: "c", BaseURL: "https://ghe.example.com"}, []string{"base_url applies only"}},
		{"gitlab base url not a URL", Config{Name: "gl", Kind: "gitlab", ClientID: "c", BaseURL: "gitlab.example.com"}, []string{"base_url", "not an absolute"}},
		{"oauth2 without userinfo", Config{Name: "o", Kind: KindOAuth2, ClientID: "c", AuthURL: "https://a.example/auth", TokenURL: "https://a.example/token"}, []string{"userinfo_url is required"}},
		{"oidc without issuer", Config{Name: "o", Kind: KindOIDC, ClientID: "c"}, []string{"issuer is required"}},
		{"auth params replacing the state", Config{Name: "g", Kind: "google", ClientID: "c", AuthParams: map[string]string{"state": "fixed"}}, []string{"auth_params may not set state"}},
		{"bad override", Config{Name: "g", Kind: "github", ClientID: "c", TokenURL: "ftp://x"}, []string{"token_url", "not an absolute"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil {
				t.Fatal("New accepted the config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNew_FillsEndpointsFromThePreset(t *testing.T) {
	tests := []struct {
		cfg                 Config
		issuer, revoke      string
		display             string
		canRevoke, pkce, fp bool
	}{
		{Config{Kind: "microsoft"}, "https://login.microsoftonline.com/common/v2.0", "", "Microsoft", false, true, false},
		{Config{Kind: "microsoft", Tenant: "contoso.onmicrosoft.com"}, "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0", "", "Microsoft", false, true, false},
		{Config{Kind: "gitlab"}, "https://gitlab.com", "https://gitlab.com/oauth/revoke", "GitLab", true, true, false},
		{Config{Kind: "gitlab", BaseURL: "https://git.example.com/"}, "https://git.example.com", "https://git.example.com/oauth/revoke", "GitLab", true, true, false},
		{Config{Kind: "github"}, "https://github.com", "https://api.github.com/applications/test-client/grant", "GitHub", true, true, false},
		{Config{Kind: "apple", TeamID: "T", KeyID: "K", PrivateKey: appleKeyPEM}, "https://appleid.apple.com", "https://appleid.apple.com/auth/revoke", "Apple", true, true, true},
		{Config{Kind: "google"}, "https://accounts.google.com", "https://oauth2.googleapis.com/revoke", "Google", true, true, false},
		{Config{Kind: "linkedin"}, "https://www.linkedin.com/oauth", "", "LinkedIn", false, false, false},
		{Config{Kind: "notion", DisplayName: "Notes"}, "https://api.notion.com", "https://api.notion.com/v1/oauth/revoke", "Notes", true, false, false},
		{Config{Kind: "spotify", DisablePKCE: true}, "https://accounts.spotify.com", "", "Spotify", false, false, false},
		{Config{Kind: "discord"}, "https://discord.com", "https://discord.com/api/oauth2/token/revoke", "Discord", true, true, false},
		{Config{Kind: "x"}, "https://x.com", "https://api.x.com/2/oauth2/revoke", "X", true, true, false},
		{Config{Kind: "github", AuthURL: "https://ghe.example.com/login/oauth/authorize", TokenURL: "https://ghe.example.com/login/oauth/access_token",
			UserinfoURL: "https://ghe.example.com/api/v3/user", EmailsURL: "https://ghe.example.com/api/v3/user/emails", RevokeURL: "https://ghe.example.com/api/v3/applications/test-client/grant"},
			"https://ghe.example.com", "https://ghe.example.com/api/v3/applications/test-client/grant", "GitHub", true, true, false},
		{Config{Kind: KindOAuth2, AuthURL: "https://sso.example.com/auth", TokenURL: "https://sso.example.com/token", UserinfoURL: "https://sso.example.com/me"},
			"https://sso.example.com", "", "test", false, true, false},
	}
	for _, tt := range tests {
		cfg := tt.cfg
		cfg.Name, cfg.ClientID = "test", testClientID
		if cfg.Kind != "apple" {
			cfg.ClientSecret = testClientSecret
		}
		p, err := New(cfg)
		if err != nil {
			t.Fatalf("%s: %v", cfg.Kind, err)
		}
		if p.Issuer() != tt.issuer || p.cfg.RevokeURL != tt.revoke || p.DisplayName() != tt.display ||
			p.CanRevoke() != tt.canRevoke || p.UsesPKCE() != tt.pkce || p.FormPost() != tt.fp {
			t.Errorf("%s: issuer %q revoke %q display %q canRevoke %v pkce %v formPost %v", cfg.Kind, p.Issuer(), p.cfg.RevokeURL,
				p.DisplayName(), p.CanRevoke(), p.UsesPKCE(), p.FormPost())
		}
	}
}

func TestKinds_SortedAndComplete(t *testing.T) {
	want := []string{"apple", "bitbucket", "discord", "facebook", "github", "gitlab", "google", "linkedin", "microsoft",
		"notion", "oauth2", "oidc", "slack", "spotify", "twitch", "x"}
	if got := Kinds(); !slices.Equal(got, want) {
		t.Errorf("Kinds() = %v", got)
	}
}

func TestAuthCodeURL_PromptAndIncrementalScopes(t *testing.T) {
	f, p := newPreset(t, caseOf(t, "google"))
	_ = f
	raw, err := p.AuthCodeURL(context.Background(), AuthRequest{RedirectURL: testRedirect, State: "s", Nonce: "n",
		Scopes: []string{"https://www.googleapis.com/auth/calendar.readonly", "email"}, Prompt: "consent"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(raw, "prompt=consent") ||
		!strings.Contains(raw, "scope=openid+email+profile+https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcalendar.readonly") {
		t.Errorf("URL %s", raw)
	}
	// Config.AuthParams replace the preset's.
	cfg := p.cfg
	cfg.AuthParams = map[string]string{"access_type": "online"}
	q, _ := New(cfg)
	raw, _ = q.AuthCodeURL(context.Background(), AuthRequest{RedirectURL: testRedirect, State: "s", Nonce: "n"})
	if !strings.Contains(raw, "access_type=online") || strings.Contains(raw, "access_type=offline") {
		t.Errorf("URL %s", raw)
	}
}

func TestClientSecretJWT_CachedAndRenewedBeforeExpiry(t *testing.T) {
	s, err := newClientSecretJWT("TEAM123456", "KEY1234567", testClientID, appleKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a, _ := s.get(now)
	b, _ := s.get(now.Add(clientSecretTTL - clientSecretRenew - time.Second))
	c, _ := s.get(now.Add(clientSecretTTL - clientSecretRenew + time.Second))
	if a != b || b == c {
		t.Errorf("want the same secret until 5 min before expiry, then a new one")
	}
	checkAppleClientSecret(t, c)
}

func TestGenericOAuth2_ProbesClientAuthenticationOnce(t *testing.T) {
	f := newFake(t, "github")
	// A server that accepts client credentials only in the form.
	f.handlers["/token"] = func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); ok {
			f.writeJSON(w, http.StatusUnauthorized, []byte(`{"error":"invalid_client"}`))
			return
		}
		body, _ := io.ReadAll(r.Body)
		f.token(w, r, body)
	}
	p, err := New(Config{Name: "o", Kind: KindOAuth2, ClientID: testClientID, ClientSecret: testClientSecret,
		AuthURL: f.url("/authorize"), TokenURL: f.url("/token"), UserinfoURL: f.url("/userinfo"),
		Mapping: Mapping{Email: "email", Username: "login"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		res, err := signIn(p, Callback{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Profile.Subject != "583231" || res.Profile.Username != "octocat" || res.Issuer != f.url("") {
			t.Errorf("result %+v", res)
		}
	}
	if n := f.count("/token"); n != 3 {
		t.Errorf("%d token requests, want 3: Basic, the form, then the form straight away", n)
	}
	if p.CanRevoke() || p.Revoke(context.Background(), "", "at", "rt") != nil {
		t.Error("a generic OAuth 2.0 provider without revoke_url cannot revoke")
	}
}

func TestGenericOIDC_RevocationFromDiscovery(t *testing.T) {
	f := newFake(t, "gitlab")
	p, err := New(Config{Name: "o", Kind: KindOIDC, ClientID: testClientID, ClientSecret: testClientSecret, Issuer: f.url("")})
	if err != nil {
		t.Fatal(err)
	}
	if p.CanRevoke() {
		t.Error("CanRevoke before discovery")
	}
	if err := p.Revoke(context.Background(), "", "at-live", liveRefresh); err != nil {
		t.Fatal(err)
	}
	if !p.CanRevoke() {
		t.Error("CanRevoke after discovery found revocation_endpoint")
	}
	checkRevoke(t, f, revokeWant{method: "POST", path: "/oauth/revoke", auth: "basic", token: liveRefresh})
}

func TestNew_ClientCredentialsAndURLsANewcomerGetsWrong(t *testing.T) {
	apple := Config{Name: "apple", Kind: "apple", ClientID: "com.example.web", TeamID: "TEAM123456", KeyID: "KEY1234567", PrivateKey: appleKeyPEM}
	tests := []struct {
		name string
		cfg  Config
		want string // the whole error
	}{
		{"preset without a secret", Config{Name: "google", Kind: "google", ClientID: "c"},
			"provider google: client_secret is required: write the secret the provider issued with the client id, like client_secret {env.GOOGLE_CLIENT_SECRET}"},
		{"renamed preset without a secret", Config{Name: "corp-gh", Kind: "github", ClientID: "c"},
			"provider corp-gh (github): client_secret is required: write the secret the provider issued with the client id, like client_secret {env.CORP_GH_CLIENT_SECRET}"},
		{"no client id", Config{Name: "x", Kind: "x", ClientSecret: "s"},
			"provider x: client_id is required: write the client id the provider issued, like client_id {env.X_CLIENT_ID}"},
		{"apple with a client secret", func() Config { c := apple; c.ClientSecret = "s"; return c }(),
			"provider apple: client_secret does not apply to apple: the gateway signs its own from team_id, key_id and private_key"},
		{"public client without PKCE", Config{Name: "corp", Kind: KindOIDC, ClientID: "c", Issuer: "https://idp.example.com", DisablePKCE: true},
			"provider corp (oidc): without a client_secret the client is public and needs PKCE: remove pkce off, or add the client_secret"},
		{"issuer over plain http on the internet", Config{Name: "corp", Kind: KindOIDC, ClientID: "c", Issuer: "http://idp.example.com"},
			`provider corp (oidc): issuer "http://idp.example.com" must use https (plain http is only for localhost, a private address or a single-label host name)`},
		{"token_url over plain http", Config{Name: "github", Kind: "github", ClientID: "c", ClientSecret: "s", TokenURL: "http://github.com/login/oauth/access_token"},
			`provider github: token_url "http://github.com/login/oauth/access_token" must use https (plain http is only for localhost, a private address or a single-label host name)`},
		{"scopes with commas", Config{Name: "github", Kind: "github", ClientID: "c", ClientSecret: "s", Scopes: []string{"repo,read:org"}},
			`provider github: scopes: "repo,read:org" is not one scope: separate scopes with spaces, like scopes repo read:org`},
		{"scopes quoted together", Config{Name: "google", Kind: "google", ClientID: "c", ClientSecret: "s", Scopes: []string{"email profile"}},
			`provider google: scopes: "email profile" is not one scope: separate scopes with spaces, like scopes email profile`},
		{"unknown kind, a typo", Config{Name: "googel", Kind: "googel", ClientID: "c"}, `provider googel: unknown kind "googel" (did you mean google?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("New: %v\nwant: %s", err, tt.want)
			}
			if err := Check(tt.cfg); err == nil || err.Error() != tt.want {
				t.Fatalf("Check: %v\nwant: %s", err, tt.want)
			}
		})
	}
	// Public clients of generic servers, and servers on a private network.
	for _, cfg := range []Config{
		{Name: "corp", Kind: KindOIDC, ClientID: "c", Issuer: "https://idp.example.com"},
		{Name: "kc", Kind: KindOIDC, ClientID: "c", ClientSecret: "s", Issuer: "http://keycloak:8080/realms/corp"},
		{Name: "lan", Kind: KindOAuth2, ClientID: "c", AuthURL: "http://10.1.2.3/auth", TokenURL: "http://10.1.2.3/token", UserinfoURL: "http://10.1.2.3/me"},
	} {
		if _, err := New(cfg); err != nil {
			t.Errorf("New(%s): %v", cfg.Name, err)
		}
	}
}

func TestCheck_LeavesApplesKeyUnreadButChecksTheRest(t *testing.T) {
	cfg := Config{Name: "apple", Kind: "apple", ClientID: "com.example.web", TeamID: "TEAM123456", KeyID: "KEY1234567",
		PrivateKey: "{file./etc/socialgate/AuthKey.p8}"}
	if err := Check(cfg); err != nil {
		t.Fatalf("Check with a key still to be expanded: %v", err)
	}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "private_key") {
		t.Fatalf("New read no key: %v", err)
	}
	cfg.TeamID = ""
	if err := Check(cfg); err == nil || err.Error() != "provider apple: team_id is required: apple signs its client secret with team_id, key_id and private_key" {
		t.Fatalf("Check without team_id: %v", err)
	}
}
