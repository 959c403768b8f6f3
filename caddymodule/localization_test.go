package caddymodule_test

import (
	"html"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// getIn opens rawURL as a browser whose Accept-Language is header.
func (b *browser) getIn(rawURL, header string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept-Language", header)
	return b.do(req)
}

// pageLanguage checks that a page is in lang, written in dir, and says
// want; it returns the page's h1.
func pageLanguage(t *testing.T, what string, resp *http.Response, page string, status int, lang, dir string, pinned bool, want ...string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("%s: status %d, want %d", what, resp.StatusCode, status)
	}
	if got := "<html" + between(page, "<html", ">") + ">"; got != `<html lang="`+lang+`" dir="`+dir+`">` {
		t.Errorf("%s: %s, want lang %s dir %s", what, got, lang, dir)
	}
	if got := resp.Header.Get("Content-Language"); got != lang {
		t.Errorf("%s: Content-Language %q, want %q", what, got, lang)
	}
	if vary := strings.Join(resp.Header.Values("Vary"), ", "); strings.Contains(vary, "Accept-Language") == pinned {
		t.Errorf("%s: Vary %q (the locale is pinned: %v)", what, vary, pinned)
	}
	for _, w := range want {
		if !strings.Contains(page, w) {
			t.Errorf("%s: the page does not say %q:\n%s", what, w, between(page, "<main", "</main>"))
		}
	}
}

// Every page the gateway shows comes in the browser's language, in the
// right direction, and varies with Accept-Language; a language the
// gateway lacks gets English.
func TestPages_SpeakTheBrowsersLanguage(t *testing.T) {
	e, _ := newLinkEnv(t, "", "")
	signedIn := newBrowser(t)
	signedIn.signInDev(e, "/", ada)
	for _, tc := range []struct {
		header, lang, dir                                          string
		signIn, notFound, nothingHere, signedOut, account, connect string
		badLink                                                    string
	}{
		{"de", "de", "ltr", "<h1>Bei socialgate anmelden</h1>", "<h1>Seite nicht gefunden</h1>", "Hier gibt es nichts.",
			"Sie sind abgemeldet.", "<h1>Ihr Konto</h1>", "<h1>Corp verbinden</h1>", "Dieser Anmeldelink ist ungültig oder abgelaufen."},
		{"fr;q=0.9", "fr", "ltr", "<h1>Connexion à socialgate</h1>", "<h1>Page introuvable</h1>", "Il n’y a rien ici.",
			"Vous êtes déconnecté.", "<h1>Votre compte</h1>", "<h1>Associer Corp</h1>", "Ce lien de connexion n’est pas valide ou a expiré."},
		{"ja", "ja", "ltr", "<h1>socialgate にログイン</h1>", "<h1>ページが見つかりません</h1>", "ここには何もありません。",
			"ログアウトしました。", "<h1>アカウント</h1>", "<h1>Corp と連携</h1>", "このログイン リンクは無効か、有効期限が切れています。"},
		{"ar", "ar", "rtl", "<h1>تسجيل الدخول إلى \u2068socialgate\u2069</h1>", "<h1>الصفحة غير موجودة</h1>", "لا يوجد شيء هنا.",
			"تم تسجيل خروجك.", "<h1>حسابك</h1>", "<h1>ربط \u2068Corp\u2069</h1>", "رابط تسجيل الدخول هذا غير صالح أو انتهت صلاحيته."},
		{"zh-CN,zh;q=0.9", "en", "ltr", "<h1>Sign in to socialgate</h1>", "<h1>Page not found</h1>", "There is nothing here.",
			"You are signed out.", "<h1>Your account</h1>", "<h1>Connect Corp</h1>", "This sign-in link is invalid or has expired."},
	} {
		t.Run(tc.header, func(t *testing.T) {
			anonymous := newBrowser(t)
			resp, page := anonymous.getIn(e.Base+"/_auth/sign-in", tc.header)
			pageLanguage(t, "sign-in", resp, page, 200, tc.lang, tc.dir, false, tc.signIn)
			resp, page = anonymous.getIn(e.Base+"/_auth/no-such-page", tc.header)
			pageLanguage(t, "not found", resp, page, 404, tc.lang, tc.dir, false, tc.notFound, tc.nothingHere)
			resp, page = anonymous.getIn(e.Base+"/_auth/sign-out", tc.header)
			pageLanguage(t, "sign-out", resp, page, 200, tc.lang, tc.dir, false, tc.signedOut)
			resp, page = anonymous.getIn(e.Base+"/_auth/oauth/dev/callback?state=forged&code=x", tc.header)
			pageLanguage(t, "a forged callback", resp, page, 400, tc.lang, tc.dir, false, tc.badLink)
			resp, page = signedIn.getIn(e.Base+"/_auth/account", tc.header)
			pageLanguage(t, "account", resp, page, 200, tc.lang, tc.dir, false, tc.account)
			resp, page = signedIn.getIn(e.Base+"/_auth/reauthorize?provider=corp&return_to=/", tc.header)
			pageLanguage(t, "reauthorize", resp, page, 200, tc.lang, tc.dir, false, tc.connect)
		})
	}
}

// API clients keep English messages beside the stable codes, whatever
// language they ask for.
func TestPages_JSONErrorsStayEnglish(t *testing.T) {
	e := newEnv(t, options{})
	for path, want := range map[string][2]string{
		"/_auth/no-such-page":                           {"not_found", "There is nothing here."},
		"/_auth/oauth/dev/callback?state=forged&code=x": {"invalid_state", "This sign-in link is invalid or has expired. Please start again."},
	} {
		req, _ := http.NewRequest(http.MethodGet, e.Base+path, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Accept-Language", "de, ar;q=0.5")
		resp, body := newBrowser(t).do(req)
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			!strings.Contains(body, `"code":"`+want[0]+`"`) || !strings.Contains(body, `"message":"`+want[1]+`"`) {
			t.Errorf("%s: %s %s", path, resp.Header.Get("Content-Type"), body)
		}
	}
}

// The locale option pins every page to one language: no negotiation, so
// no Vary.
func TestPages_LocalePinsTheLanguage(t *testing.T) {
	e := newEnv(t, options{Global: "locale ja"})
	for _, header := range []string{"de", "ar", ""} {
		resp, page := newBrowser(t).getIn(e.Base+"/_auth/sign-in", header)
		pageLanguage(t, "sign-in for "+header, resp, page, 200, "ja", "ltr", true, "<h1>socialgate にログイン</h1>")
	}
}

// An operator's messages directory replaces one string of a shipped
// language and adds a language of its own, which falls back to English
// for what it leaves out.
func TestPages_OperatorMessagesOverrideAndAdd(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"de.json": `{"sign_in.heading": "Willkommen bei {app}"}`,
		"nl.json": `{"sign_in.heading": "Inloggen bij {app}", "sign_in.continue_with": "Doorgaan met {provider}"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, options{Global: "messages " + dir})
	b := newBrowser(t)
	resp, page := b.getIn(e.Base+"/_auth/sign-in", "de")
	pageLanguage(t, "German", resp, page, 200, "de", "ltr", false, "<h1>Willkommen bei socialgate</h1>", "Weiter mit Dev provider", "Wählen Sie, wie Sie fortfahren möchten.")
	resp, page = b.getIn(e.Base+"/_auth/sign-in", "nl-BE,nl;q=0.9,en;q=0.5")
	pageLanguage(t, "Dutch", resp, page, 200, "nl", "ltr", false, "<h1>Inloggen bij socialgate</h1>", "Doorgaan met Dev provider", "Choose how you want to continue.")
	resp, page = b.getIn(e.Base+"/_auth/sign-in", "fr")
	pageLanguage(t, "French", resp, page, 200, "fr", "ltr", false, "<h1>Connexion à socialgate</h1>")
}

// Mistakes in the messages or the locale fail the config load, naming the
// file and the message, or the line.
func TestPages_MessageMistakesFailAtLoad(t *testing.T) {
	e := newEnv(t, options{})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "de.json"), []byte(`{"sign_in.heading": "Bei {application} anmelden"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ global, want string }{
		{"messages " + dir, `de.json: message "sign_in.heading" has the placeholder {application}, which the English message does not have (it has: {app})`},
		{"messages " + filepath.Join(dir, "missing"), "messages: open " + filepath.Join(dir, "missing")},
		{"locale ko", `locale "ko": there are no messages in that language (there are: en, ar, de, es, fr, ja)`},
		{"locale deutsch!", `locale "deutsch!" is not a language tag like de or pt-BR, at Caddyfile:`},
		{"locale de fr", "wrong argument count"},
	} {
		if err := e.Load(options{Global: tc.global}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v\nwant %q", tc.global, err, tc.want)
		}
	}
}

// After signing out, the sign-in page says so, in the browser's language;
// the notice is a fixed message chosen by name, never text from the URL.
func TestPages_SignedOutNotice(t *testing.T) {
	e := newEnv(t, options{})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	_, page := b.get(e.Base + "/_auth/sign-out")
	resp, _ := b.post(e.Base+"/_auth/sign-out", map[string][]string{"csrf_token": {html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))}})
	signIn := location(t, resp)
	resp, page = b.getIn(signIn, "de")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<p class="notice" role="status">Sie sind abgemeldet.</p>`) {
		t.Errorf("after sign-out, %s: %d\n%s", signIn, resp.StatusCode, between(page, "<main", "</main>"))
	}
	for _, notice := range []string{"", "connected", "%3Cb%3Eyou+won%3C%2Fb%3E", "signed_out%00"} {
		if _, page := newBrowser(t).get(e.Base + "/_auth/sign-in?notice=" + notice); strings.Contains(page, `class="notice"`) {
			t.Errorf("notice=%s: the sign-in page shows a notice", notice)
		}
	}
}
