package ui

import (
	"net/http/httptest"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
)

func benchPages() map[string]Page {
	return map[string]Page{
		"sign-in": {Title: i18n.M("sign_in.title"), ReturnTo: "/reports", Providers: []ProviderButton{
			{Name: "google", Kind: "google", DisplayName: "Google", StartURL: "/_auth/oauth/google/start"},
			{Name: "github", Kind: "github", DisplayName: "GitHub", StartURL: "/_auth/oauth/github/start"},
			{Name: "corp", Kind: "oidc", DisplayName: "Corp", StartURL: "/_auth/oauth/corp/start"},
		}},
		"account": {Title: i18n.M("account.title"), CSRFToken: "token", SignOutURL: "/_auth/sign-out", Account: &AccountView{
			Name:   "Ada Lovelace",
			AppURL: "/",
			Emails: []EmailView{{Email: "ada@example.com", Verified: true}},
			Accounts: []AccountRow{
				{ID: "eac_1", Provider: "google", Kind: "google", ProviderName: "Google", Email: "ada@example.com", Scopes: []string{"openid", "email"}},
				{ID: "eac_2", Provider: "github", Kind: "github", ProviderName: "GitHub", Username: "ada", NeedsReauthorization: true, CanDisconnect: true},
			},
			Connect: []ProviderButton{{Name: "corp", Kind: "oidc", DisplayName: "Corp"}},
			Sessions: []SessionRow{
				{Device: Device("Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"), IP: "192.0.2.1", Created: "2026-01-02 15:04:05 UTC", Current: true},
				{Device: Device("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"), IP: "192.0.2.2", Created: "2026-01-01 10:00:00 UTC"},
			},
		}},
	}
}

// BenchmarkRender renders the sign-in and account pages, as a browser
// asking for German first gets them (negotiation included).
func BenchmarkRender(b *testing.B) {
	r, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/_auth/sign-in", nil)
	req.Header.Set("Accept-Language", "de-CH,de;q=0.9,en;q=0.8")
	for name, page := range benchPages() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				r.Render(w, req, 200, name, page)
			}
		})
	}
}
