package ui

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// The console loads no remote picture (a user's provider chooses its URL):
// initials stand for it, and the console pages' img-src is their own and
// the logo's; the person's own pages keep https images.
func TestConsole_InitialsAndNoRemoteImages(t *testing.T) {
	for _, tc := range []struct{ name, id, want string }{
		{"Eve Tracker", "user_abc", "ET"}, {"  élodie  de la rue", "user_x", "ÉD"}, {"", "user_zq", "Z"}, {"", "", "?"},
	} {
		if got := (ConsoleUser{Name: tc.name, ID: tc.id}).Initials(); got != tc.want {
			t.Errorf("Initials(%q, %q) = %q, want %q", tc.name, tc.id, got, tc.want)
		}
	}
	r, err := New(Options{LogoURL: "https://cdn.example.com/logo.svg"})
	if err != nil {
		t.Fatal(err)
	}
	for page, want := range map[string]string{
		"console-user": "img-src 'self' data: https://cdn.example.com;", "console-users": "img-src 'self' data: https://cdn.example.com;",
		"account": "img-src https: data:;", "sign-in": "img-src https: data:;",
	} {
		rec := httptest.NewRecorder()
		r.Render(rec, httptest.NewRequest("GET", "/", nil), 200, page, Page{Console: &ConsoleView{User: &ConsoleUser{ImageURL: "https://t.example/p.png"}, Users: &ConsoleUsers{}, Gateway: &ConsoleGateway{}}})
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, want) {
			t.Errorf("%s: CSP %q, want %q", page, csp, want)
		}
		if strings.HasPrefix(page, "console-user") && strings.Contains(rec.Body.String(), `src="https://t.example`) {
			t.Errorf("%s loads the user's picture", page)
		}
	}
}
