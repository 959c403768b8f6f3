package provider

import (
	"strings"
	"testing"
)

func TestLinksByEmail_DefaultsTrustOnlyReliablePresetsAtTheirOwnEndpoints(t *testing.T) {
	on, off := true, false
	oauth2 := Config{AuthURL: "https://o.example/auth", TokenURL: "https://o.example/token", UserinfoURL: "https://o.example/me"}
	with := func(c Config, edit func(*Config)) Config { edit(&c); return c }
	tests := []struct {
		name string
		cfg  Config
		want bool
	}{
		{"google", Config{Kind: "google"}, true},
		{"github", Config{Kind: "github"}, true},
		{"microsoft, any tenant", Config{Kind: "microsoft", Tenant: "organizations"}, true},
		{"gitlab.com", Config{Kind: "gitlab"}, true},
		{"gitlab.com spelled out", Config{Kind: "gitlab", BaseURL: "https://gitlab.com/"}, true},
		{"self-hosted gitlab", Config{Kind: "gitlab", BaseURL: "https://gitlab.example.com"}, false},
		{"github pointed elsewhere", Config{Kind: "github", UserinfoURL: "https://ghe.example.com/api/v3/user"}, false},
		{"google with another issuer", Config{Kind: "google", Issuer: "https://idp.example.com"}, false},
		{"google with a remapped email_verified", Config{Kind: "google", Mapping: Mapping{EmailVerified: "custom"}}, false},
		{"facebook never verifies", Config{Kind: "facebook"}, false},
		{"generic oidc", Config{Kind: KindOIDC, Issuer: "https://idp.example.com"}, false},
		{"generic oauth2 with email_verified mapped", with(oauth2, func(c *Config) {
			c.Kind, c.Mapping = KindOAuth2, Mapping{Email: "mail", EmailVerified: "mail_ok"}
		}), false},
		{"generic oidc turned on", Config{Kind: KindOIDC, Issuer: "https://idp.example.com", LinkByEmail: &on}, true},
		{"oauth2 turned on with a mapping", with(oauth2, func(c *Config) {
			c.Kind, c.Mapping, c.LinkByEmail = KindOAuth2, Mapping{Email: "mail", EmailVerified: "mail_ok"}, &on
		}), true},
		{"google turned off", Config{Kind: "google", LinkByEmail: &off}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name, tt.cfg.ClientID, tt.cfg.ClientSecret = "p", "c", "s"
			p, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.LinksByEmail(); got != tt.want {
				t.Errorf("LinksByEmail = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLinksByEmail_OnForAProviderThatNeverVerifiesIsAConfigError(t *testing.T) {
	on := true
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"oauth2 without email_verified", Config{Kind: KindOAuth2, AuthURL: "https://o.example/auth", TokenURL: "https://o.example/token",
			UserinfoURL: "https://o.example/me", Mapping: Mapping{Email: "mail"}}, "map one with fields { email_verified <path> }"},
		{"facebook", Config{Kind: "facebook"}, "never reports a verified email address"},
		{"spotify", Config{Kind: "spotify"}, "never reports a verified email address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name, tt.cfg.ClientID, tt.cfg.LinkByEmail = "p", "c", &on
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), "link_by_email is on") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error naming link_by_email and %q", err, tt.want)
			}
		})
	}
}
