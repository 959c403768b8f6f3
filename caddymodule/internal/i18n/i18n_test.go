package i18n

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/text/language"
)

// shippedFiles reads the embedded message files as JSON, by language.
func shippedFiles(t *testing.T) map[string]map[string]any {
	t.Helper()
	files := map[string]map[string]any{}
	names, _ := fs.Glob(embedded, "messages/*.json")
	for _, name := range names {
		data, err := embedded.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		files[strings.TrimSuffix(filepath.Base(name), ".json")] = m
	}
	return files
}

func TestShipped_TheSixLanguagesShip(t *testing.T) {
	c, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Languages(), []string{"en", "ar", "de", "es", "fr", "ja"}; !slices.Equal(got, want) {
		t.Errorf("languages %v, want %v", got, want)
	}
}

// Every shipped language has exactly the English messages: none missing,
// none extra, plural messages where English has them (or one plain
// sentence, in a language without plural forms).
func TestShipped_EveryLanguageHasEveryMessage(t *testing.T) {
	files := shippedFiles(t)
	en := files["en"]
	for lang, msgs := range files {
		for id := range en {
			if _, ok := msgs[id]; !ok {
				t.Errorf("%s.json lacks %q", lang, id)
			}
		}
		for id, v := range msgs {
			if _, ok := en[id]; !ok {
				t.Errorf("%s.json has %q, which en.json has not", lang, id)
			}
			if _, plural := v.(map[string]any); plural {
				if _, enPlural := en[id].(map[string]any); !enPlural {
					t.Errorf("%s.json: %q has plural forms, English has one sentence", lang, id)
				}
			}
			if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
				t.Errorf("%s.json: %q is empty", lang, id)
			}
		}
	}
}

// A plural message has exactly the forms that its language gives whole
// numbers (CLDR): English and German one and other; Arabic zero, one, two,
// few, many and other; Japanese only other.
func TestShipped_PluralFormsAreTheLanguagesOwn(t *testing.T) {
	want := map[string][]string{
		"en": {"one", "other"}, "de": {"one", "other"}, "es": {"one", "other"}, "fr": {"one", "other"},
		"ja": {"other"}, "ar": {"few", "many", "one", "other", "two", "zero"},
	}
	for lang, msgs := range shippedFiles(t) {
		if got := slices.Sorted(maps.Keys(integerForms(language.Make(lang)))); !slices.Equal(got, want[lang]) {
			t.Errorf("%s: x/text's whole-number plural forms are %v, want %v", lang, got, want[lang])
		}
		for id, v := range msgs {
			forms, ok := v.(map[string]any)
			if !ok {
				continue
			}
			if got := slices.Sorted(maps.Keys(forms)); !slices.Equal(got, want[lang]) {
				t.Errorf("%s.json: %q has the forms %v, want %v", lang, id, got, want[lang])
			}
		}
	}
}

// Every message formats cleanly in every language: no printf complaint
// (%!), no placeholder left unreplaced, the values it was given shown.
func TestShipped_EveryMessageFormats(t *testing.T) {
	c, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range c.Locales() {
		for id, params := range c.params {
			for _, count := range []int{0, 1, 2, 3, 11, 100, 101} {
				var args []any
				for _, p := range params {
					if p == countParam {
						args = append(args, p, count)
					} else {
						args = append(args, p, "<"+p+">")
					}
				}
				got := l.Text(M(id, args...))
				if strings.Contains(got, "%!") || strings.ContainsAny(got, "{}") || got == "" {
					t.Errorf("%s %s (count %d): %q", l.Lang(), id, count, got)
				}
				for _, p := range params {
					if p != countParam && !strings.Contains(got, "<"+p+">") {
						t.Errorf("%s %s: %q does not show {%s}", l.Lang(), id, got, p)
					}
				}
			}
		}
	}
}

func TestPlural_ChoosesTheFormOfTheCount(t *testing.T) {
	c, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		lang  string
		count int
		want  string
	}{
		{"en", 1, "Sign out the other session"},
		{"en", 4, "Sign out the 4 other sessions"},
		{"en", 1200, "Sign out the 1,200 other sessions"},
		{"de", 1, "Die andere Sitzung abmelden"},
		{"de", 2, "Die 2 anderen Sitzungen abmelden"},
		{"fr", 1, "Déconnecter l’autre session"},
		{"fr", 5, "Déconnecter les 5 autres sessions"},
		{"es", 3, "Cerrar las otras 3 sesiones"},
		{"ja", 3, "ほかの 3 件のセッションからログアウト"},
		{"ar", 1, "تسجيل الخروج من الجلسة الأخرى"},
		{"ar", 2, "تسجيل الخروج من الجلستين الأخريين"},
		{"ar", 3, "تسجيل الخروج من الجلسات الأخرى (٣ جلسات)"},
		{"ar", 11, "تسجيل الخروج من الجلسات الأخرى (١١ جلسة)"},
		{"ar", 100, "تسجيل الخروج من الجلسات الأخرى (١٠٠ جلسة)"},
	} {
		if got := c.Negotiate(tc.lang).T("account.sign_out_others", "count", tc.count); got != tc.want {
			t.Errorf("%s, %d: %q, want %q", tc.lang, tc.count, got, tc.want)
		}
	}
}

func TestNegotiate_PicksTheBrowsersBestLanguage(t *testing.T) {
	c, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ header, want string }{
		{"", "en"},
		{"de", "de"},
		{"de-AT", "de"},
		{"fr;q=0.9", "fr"},
		{"fr-CA,fr;q=0.9,en;q=0.5", "fr"},
		{"ja-JP", "ja"},
		{"ar-EG,ar;q=0.9", "ar"},
		{"es-419", "es"},
		{"zh-CN,zh;q=0.9", "en"},       // not shipped: English
		{"pt-BR,de;q=0.4", "de"},       // the first one this site has
		{"en-GB,de;q=0.8", "en"},       // English asked for first
		{"fr;q=0.3, ja;q=0.8", "ja"},   // by weight, not order
		{"de;q=0, fr", "fr"},           // q=0 means "not this one"
		{"*", "en"},                    //
		{"de, !!!not-a-tag, fr", "de"}, // one bad entry spoils nothing
		{"!!!, ja", "ja"},              //
		{strings.Repeat("x-bogus-entry, ", 1000) + "de", "en"}, // read to 256 bytes only
	} {
		l := c.Negotiate(tc.header)
		if l.Lang() != tc.want {
			t.Errorf("Accept-Language %.40q: %s, want %s", tc.header, l.Lang(), tc.want)
		}
	}
}

func TestLocale_ArabicIsRightToLeftWithIsolatedArguments(t *testing.T) {
	c, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for lang, dir := range map[string]string{"ar": "rtl", "en": "ltr", "de": "ltr", "ja": "ltr"} {
		if got := c.Negotiate(lang).Dir(); got != dir {
			t.Errorf("%s: dir %s, want %s", lang, got, dir)
		}
	}
	if got := c.Negotiate("ar").T("sign_in.continue_with", "provider", "GitHub"); got != "المتابعة باستخدام \u2068GitHub\u2069" {
		t.Errorf("Arabic with an English name: %q, want the name isolated (FSI … PDI)", got)
	}
	if got := c.Negotiate("de").T("sign_in.continue_with", "provider", "GitHub"); got != "Weiter mit GitHub" {
		t.Errorf("German: %q", got)
	}
}

// JSON answers use the shipped English, whatever an operator's files say.
func TestMessage_StringIsTheShippedEnglish(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "en.json", `{"flow.invalid_state": "Link expired."}`)
	c, err := Load(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	m := M("flow.invalid_state")
	if got := c.English().Text(m); got != "Link expired." {
		t.Errorf("operator's English: %q", got)
	}
	if got := m.String(); got != "This sign-in link is invalid or has expired. Please start again." {
		t.Errorf("String: %q, want the shipped English", got)
	}
	if got := M("flow.denied", "provider", "GitHub").String(); got != "GitHub did not complete the sign-in. Please try again." {
		t.Errorf("String with an argument: %q", got)
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// An operator's directory replaces single messages, adds messages of its
// own (English first), and adds languages, whose untranslated messages
// are English, plural ones included.
func TestLoad_OperatorFilesOverrideAndAdd(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "de.json", `{"sign_in.heading": "Willkommen bei {app}"}`)
	writeFile(t, dir, "en.json", `{"acme.legal": "By signing in you accept the terms of {app}.",
		"account.sign_out_others": {"=2": "Sign out both other sessions", "one": "Sign out the other session", "other": "Sign out all {count} others"}}`)
	writeFile(t, dir, "nl.json", `{"sign_in.heading": "Inloggen bij {app}", "acme.legal": "Door in te loggen aanvaardt u de voorwaarden van {app}."}`)
	writeFile(t, dir, "he.json", `{"sign_in.title": "כניסה"}`)
	writeFile(t, dir, "README.md", `not a message file`)
	logs, observed := observer.New(zap.WarnLevel)
	c, err := Load(Options{Dir: dir, Logger: zap.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	de, nl, he := c.Negotiate("de"), c.Negotiate("nl-BE"), c.Negotiate("he")
	for _, tc := range []struct{ got, want string }{
		{de.T("sign_in.heading", "app", "Acme"), "Willkommen bei Acme"},
		{de.T("sign_in.lead"), "Wählen Sie, wie Sie fortfahren möchten."}, // the rest stays shipped
		{nl.Lang(), "nl"},
		{nl.T("sign_in.heading", "app", "Acme"), "Inloggen bij Acme"},
		{nl.T("acme.legal", "app", "Acme"), "Door in te loggen aanvaardt u de voorwaarden van Acme."},
		{nl.T("sign_in.lead"), "Choose how you want to continue."},                  // untranslated: English
		{nl.T("account.sign_out_others", "count", 1), "Sign out the other session"}, // English plural forms
		{de.T("acme.legal", "app", "Acme"), "By signing in you accept the terms of Acme."},
		{he.Dir(), "rtl"},
		{c.English().T("sign_in.heading", "app", "Acme"), "Sign in to Acme"},
		{c.English().T("account.sign_out_others", "count", 2), "Sign out both other sessions"}, // =N before the forms
		{c.English().T("account.sign_out_others", "count", 3), "Sign out all 3 others"},
		{de.T("account.sign_out_others", "count", 2), "Die 2 anderen Sitzungen abmelden"},
	} {
		if tc.got != tc.want {
			t.Errorf("%q, want %q", tc.got, tc.want)
		}
	}
	// The operator is told how many messages each language shows in
	// English: nl and he most of them, the shipped ones the new acme.legal.
	missing := map[string]int64{}
	for _, e := range observed.FilterMessage("messages not translated: English is shown for them").All() {
		missing[e.ContextMap()["language"].(string)] = e.ContextMap()["missing"].(int64)
	}
	all := int64(len(c.params))
	if want := map[string]int64{"nl": all - 2, "he": all - 1, "de": 1, "fr": 1, "es": 1, "ja": 1, "ar": 1}; !maps.Equal(missing, want) {
		t.Errorf("untranslated messages by language: %v, want %v", missing, want)
	}
}

func TestLoad_RefusesBrokenFilesByName(t *testing.T) {
	for _, tc := range []struct {
		name, file, content, locale, want string
	}{
		{"unknown ID", "de.json", `{"sign_in.headng": "x"}`, "", `de.json: message "sign_in.headng" is not in the English messages`},
		{"foreign placeholder", "de.json", `{"sign_in.heading": "Bei {application} anmelden"}`, "", `message "sign_in.heading" has the placeholder {application}, which the English message does not have (it has: {app})`},
		{"unclosed brace", "fr.json", `{"sign_in.heading": "Connexion à {app"}`, "", `has a "{" that no "}" closes`},
		{"stray brace", "fr.json", `{"sign_in.lead": "Choisissez }"}`, "", `has a "}" that closes no placeholder`},
		{"odd placeholder", "fr.json", `{"sign_in.heading": "Connexion à { app }"}`, "", `has { app }, which is not a placeholder like {provider}`},
		{"plural without other", "de.json", `{"account.sign_out_others": {"one": "Eine"}}`, "", `has plural forms without "other"`},
		{"plural missing a form", "de.json", `{"account.sign_out_others": {"other": "Die {count} anderen"}}`, "", `lacks the plural form "one"`},
		{"plural form the language lacks", "ja.json", `{"account.sign_out_others": {"one": "1", "other": "{count}"}}`, "", `has the plural form "one", which this language does not use (it uses: other)`},
		{"plural form that is none", "de.json", `{"account.sign_out_others": {"single": "x", "one": "x", "other": "x"}}`, "", `has the plural form "single", which this language does not use`},
		{"plural without a count", "de.json", `{"sign_in.lead": {"one": "x", "other": "y"}}`, "", `has plural forms but its English has no {count}`},
		{"not JSON", "de.json", `{"sign_in.lead": "x",}`, "", `de.json: invalid character`},
		{"not a string", "de.json", `{"sign_in.lead": 3}`, "", `message "sign_in.lead" is neither a string nor an object of plural forms`},
		{"bad ID", "en.json", `{"Sign In": "x"}`, "", `"Sign In" is not a message ID like sign_in.heading`},
		{"file name", "german.json", `{}`, "", `german.json: the file name is not a language tag like de.json or pt-BR.json`},
		{"locale not there", "", ``, "ko", `locale "ko": there are no messages in that language (there are: en, ar, de, es, fr, ja); add a ko.json`},
		{"locale not a tag", "", ``, "deutsch!", `locale "deutsch!" is not a language tag like de or pt-BR`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.file != "" {
				writeFile(t, dir, tc.file, tc.content)
			}
			_, err := Load(Options{Dir: dir, Locale: tc.locale})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := Load(Options{Dir: filepath.Join(t.TempDir(), "missing")}); err == nil || !strings.Contains(err.Error(), "messages: open") {
		t.Errorf("a missing directory: %v", err)
	}
}

func TestLoad_LocalePinsEveryPage(t *testing.T) {
	c, err := Load(Options{Locale: "de-CH"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Pinned() {
		t.Error("not pinned")
	}
	for _, h := range []string{"", "fr", "ar, ja;q=0.5"} {
		if l := c.Negotiate(h); l.Lang() != "de" {
			t.Errorf("%q: %s, want de (pinned)", h, l.Lang())
		}
	}
	if c, _ := Load(Options{}); c.Pinned() {
		t.Error("pinned without a locale")
	}
}

func TestVerbatim_IsSaidAsItIsInEveryLanguage(t *testing.T) {
	c, err := Load(Options{Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range c.Locales() {
		if got := l.Text(Verbatim("flow.denied")); got != "flow.denied" {
			t.Errorf("%s: Verbatim(%q) = %q", l.Lang(), "flow.denied", got)
		}
	}
	if got := M("flow.denied", "provider", "X").String(); got == "flow.denied" {
		t.Errorf("M of a catalogued ID came out verbatim: %q", got)
	}
}

// A code from data is said through its message where a catalogue has one,
// and as the code itself where none has (an audit entry of a newer
// version), in every language.
func TestCode_IsItsMessageOrTheCodeItself(t *testing.T) {
	c, err := Load(Options{Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range c.Locales() {
		if got, want := l.Text(Code("common.", "sign_in")), l.T("common.sign_in"); got != want {
			t.Errorf("%s: Code(common., sign_in) = %q, want %q", l.Lang(), got, want)
		}
		if got := l.Text(Code("audit.", "user.frobnicate")); got != "user.frobnicate" {
			t.Errorf("%s: Code of an unknown action = %q, want the code", l.Lang(), got)
		}
	}
}
