package ui

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
)

// A page comes in the browser's language, with lang, dir, Content-Language
// and Vary: Accept-Language; a pinned locale needs no Vary.
func TestRender_InTheBrowsersLanguage(t *testing.T) {
	r, err := New(Options{AppName: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	page := benchPages()["sign-in"]
	for _, tc := range []struct{ header, lang, dir, heading, button string }{
		{"de-DE,de;q=0.9", "de", "ltr", "Bei Acme anmelden", "Weiter mit Google"},
		{"fr;q=0.9", "fr", "ltr", "Connexion à Acme", "Continuer avec Google"},
		{"es", "es", "ltr", "Inicia sesión en Acme", "Continuar con Google"},
		{"ja", "ja", "ltr", "Acme にログイン", "Google で続行"},
		{"ar", "ar", "rtl", "تسجيل الدخول إلى \u2068Acme\u2069", "المتابعة باستخدام \u2068Google\u2069"},
		{"sv-SE", "en", "ltr", "Sign in to Acme", "Continue with Google"},
		{"", "en", "ltr", "Sign in to Acme", "Continue with Google"},
	} {
		req := httptest.NewRequest("GET", "/_auth/sign-in", nil)
		req.Header.Set("Accept-Language", tc.header)
		w := httptest.NewRecorder()
		r.Render(w, req, 200, "sign-in", page)
		body := w.Body.String()
		if !strings.Contains(body, `<html lang="`+tc.lang+`" dir="`+tc.dir+`">`) {
			t.Errorf("%q: %s", tc.header, between(body, "<html", ">"))
		}
		if !strings.Contains(body, "<h1>"+tc.heading+"</h1>") || !strings.Contains(body, "<span>"+tc.button+"</span>") {
			t.Errorf("%q: heading %q, first button %q", tc.header, between(body, "<h1>", "</h1>"), between(body, "<span>", "</span>"))
		}
		if h := w.Header(); h.Get("Content-Language") != tc.lang || h.Get("Vary") != "Accept-Language" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%q: Content-Language %q, Vary %q, Cache-Control %q", tc.header, h.Get("Content-Language"), h.Get("Vary"), h.Get("Cache-Control"))
		}
	}

	pinned, err := New(Options{Locale: "ja"})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/_auth/sign-in", nil)
	req.Header.Set("Accept-Language", "de")
	w := httptest.NewRecorder()
	pinned.Render(w, req, 200, "sign-in", page)
	if !strings.Contains(w.Body.String(), `<html lang="ja" dir="ltr">`) || w.Header().Get("Vary") != "" || w.Header().Get("Content-Language") != "ja" {
		t.Errorf("pinned to ja: %s, Vary %q", between(w.Body.String(), "<html", ">"), w.Header().Get("Vary"))
	}
}

// Values reach the page escaped in every language, also inside messages.
func TestRender_EscapesValuesInMessages(t *testing.T) {
	r, err := New(Options{AppName: `<script>alert(1)</script>`})
	if err != nil {
		t.Fatal(err)
	}
	page := benchPages()["sign-in"]
	page.Providers[0].DisplayName = `"><img src=x onerror=alert(1)>`
	for _, lang := range []string{"en", "ar"} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Accept-Language", lang)
		w := httptest.NewRecorder()
		r.Render(w, req, 200, "sign-in", page)
		if body := w.Body.String(); strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s: a value reached the page unescaped", lang)
		}
	}
}

// An operator's messages directory and locale reach the pages.
func TestRender_OperatorMessages(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "de.json"), []byte(`{"sign_in.lead": "Wie möchten Sie sich anmelden?"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{MessageDir: dir, Locale: "de"})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	r.Render(w, httptest.NewRequest("GET", "/", nil), 200, "sign-in", benchPages()["sign-in"])
	if got := between(w.Body.String(), `<p class="sub">`, "</p>"); got != "Wie möchten Sie sich anmelden?" {
		t.Errorf("lead %q", got)
	}
	if _, err := New(Options{MessageDir: dir, Locale: "ko"}); err == nil || !strings.Contains(err.Error(), `locale "ko": there are no messages in that language`) {
		t.Errorf("locale ko: %v", err)
	}
}

// Error pages are titled in words, in the reader's language.
func TestErrorTitle_InWords(t *testing.T) {
	cat, err := i18n.Load(i18n.Options{})
	if err != nil {
		t.Fatal(err)
	}
	en, de := cat.English(), cat.Negotiate("de")
	for status, want := range map[int][2]string{
		400: {"This request didn't work", "Das hat nicht geklappt"},
		403: {"Not allowed here", "Kein Zugang"},
		404: {"Page not found", "Seite nicht gefunden"},
		429: {"Too many attempts", "Zu viele Versuche"},
		500: {"Something went wrong", "Etwas ist schiefgelaufen"},
		502: {"Sign-in provider problem", "Problem beim Anmeldeanbieter"},
		418: {"Something went wrong", "Etwas ist schiefgelaufen"},
	} {
		if got := [2]string{en.Text(ErrorTitle(status)), de.Text(ErrorTitle(status))}; got != want {
			t.Errorf("%d: %q, want %q", status, got, want)
		}
	}
}

func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return ""
	}
	before, _, _ := strings.Cut(after, end)
	return before
}
