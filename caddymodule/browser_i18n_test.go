package caddymodule_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// chromeLanguage makes the tab ask for pages in header's languages
// (Accept-Language), as a browser set to them does.
func chromeLanguage(ctx context.Context, header string) error {
	_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
		Headers: network.Headers{"Accept-Language": header}})
	return err
}

// chromeLayout is where a page puts things, read in the page.
type chromeLayout struct {
	Lang, Dir string
	// Content is main's content box; Text the box of a short line's text
	// (not of its element, which is as wide as main either way).
	ContentLeft, ContentRight, TextLeft, TextRight float64
	// The first button with an icon: its icon and label, left edges.
	IconLeft, LabelLeft float64
	Buttons             []string
}

// chromeLayoutJS reads the layout, with %q the selector of an element
// whose text fits on one line.
const chromeLayoutJS = `(() => {
	const main = document.querySelector("main"), cs = getComputedStyle(main), box = main.getBoundingClientRect();
	const line = document.createRange(); line.selectNodeContents(document.querySelector(%q));
	const short = line.getBoundingClientRect();
	const button = document.querySelector("main form button svg").closest("button");
	const icon = button.querySelector("svg").getBoundingClientRect(), text = button.querySelector("span").getBoundingClientRect();
	return {
		Lang: document.documentElement.lang, Dir: getComputedStyle(document.body).direction,
		ContentLeft: box.left + parseFloat(cs.borderLeftWidth) + parseFloat(cs.paddingLeft),
		ContentRight: box.right - parseFloat(cs.borderRightWidth) - parseFloat(cs.paddingRight),
		TextLeft: short.left, TextRight: short.right,
		IconLeft: icon.left, LabelLeft: text.left,
		Buttons: Array.from(document.querySelectorAll("main form button"), b => b.innerText.replace(/\s+/g, " ").trim()),
	};
})()`

// checkDirection checks that the page is laid out in dir: the short
// line's text starts at the content's start edge (left in ltr, right in
// rtl) and the first button's icon comes before its label in reading order.
func (l chromeLayout) checkDirection(lang, dir string) error {
	if l.Lang != lang || l.Dir != dir {
		return fmt.Errorf("the page is lang %q, direction %q; want %q, %q", l.Lang, l.Dir, lang, dir)
	}
	start, end := l.TextLeft-l.ContentLeft, l.ContentRight-l.TextRight
	iconFirst := l.IconLeft < l.LabelLeft
	if dir == "rtl" {
		start, end = end, start
		iconFirst = !iconFirst
	}
	if math.Abs(start) > 1.5 || end < 20 {
		return fmt.Errorf("a line's text spans %.0f–%.0f in content %.0f–%.0f: not at the %s start", l.TextLeft, l.TextRight, l.ContentLeft, l.ContentRight, dir)
	}
	if !iconFirst {
		return fmt.Errorf("the first button's icon is at %.0f, its label at %.0f: the icon does not lead in %s", l.IconLeft, l.LabelLeft, dir)
	}
	return nil
}

// chromeReadLayout reads the page's layout, with short the selector of an
// element whose text fits on one line.
func chromeReadLayout(ctx context.Context, short string) (chromeLayout, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[chromeLayout](fmt.Sprintf(chromeLayoutJS, short)))
}

// newBrandEnv is a gateway with the dev provider, Corp (the local test
// provider) and the Google and GitHub presets, each pointed at a local
// test provider of its own (one issuer is one provider's): the pages show
// their marks; nothing leaves the machine.
func newBrandEnv(t *testing.T) *env {
	e, _ := newLinkEnv(t, "", "")
	googleOP, githubOP := startOP(t, testop.Options{}), startOP(t, testop.Options{})
	e.corp += fmt.Sprintf("\n\t\tprovider google {\n\t\t\tclient_id g\n\t\t\tclient_secret g\n\t\t\tissuer %[1]s\n\t\t}"+
		"\n\t\tprovider github {\n\t\t\tclient_id h\n\t\t\tclient_secret h\n\t\t\tauthorize_url %[2]s/authorize\n\t\t\ttoken_url %[2]s/token\n\t\t\tuserinfo_url %[2]s/userinfo\n\t\t\temails_url %[2]s/emails\n\t\t}", googleOP.URL(), githubOP.URL())
	if err := e.Load(options{Global: e.corp}); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestBrowser_PagesInGermanAndArabic opens the sign-in and account pages
// as a German and an Arabic browser would: German left to right, Arabic
// mirrored right to left, both at desktop and phone width (the screenshots
// in docs/screenshots), and the brands' marks on the buttons.
func TestBrowser_PagesInGermanAndArabic(t *testing.T) {
	started := time.Now()
	b := startChrome(t, 120*time.Second)
	e := newBrandEnv(t)

	b.step("the sign-in page in German", 15*time.Second, func(ctx context.Context) error {
		if err := chromeLanguage(ctx, "de-DE,de;q=0.9,en;q=0.5"); err != nil {
			return err
		}
		if err := chromeOpen(ctx, e.Base+"/_auth/sign-in?return_to=/"); err != nil {
			return err
		}
		l, err := chromeReadLayout(ctx, "p.sub")
		if err != nil {
			return err
		}
		if want := []string{"Weiter mit Dev provider", "Weiter mit Corp", "Weiter mit Google", "Weiter mit GitHub"}; !slices.Equal(l.Buttons, want) {
			return fmt.Errorf("the buttons say %q, want %q", l.Buttons, want)
		}
		if err := chromeExpectText(ctx, "h1", "Bei socialgate anmelden"); err != nil {
			return err
		}
		names, err := chromeAccessibleNames(ctx)
		if err != nil {
			return err
		}
		if !slices.Equal(names, l.Buttons) { // the marks are decoration: the names are the words
			return fmt.Errorf("the buttons' accessible names are %q", names)
		}
		return l.checkDirection("de", "ltr")
	})
	b.screenshots("sign-in-de")

	b.step("the sign-in page in Arabic", 15*time.Second, func(ctx context.Context) error {
		if err := chromeLanguage(ctx, "ar"); err != nil {
			return err
		}
		if err := chromeOpen(ctx, e.Base+"/_auth/sign-in?return_to=/"); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, "h1", "تسجيل الدخول إلى \u2068socialgate\u2069"); err != nil {
			return err
		}
		l, err := chromeReadLayout(ctx, "p.sub")
		if err != nil {
			return err
		}
		if len(l.Buttons) != 4 || l.Buttons[2] != "المتابعة باستخدام \u2068Google\u2069" {
			return fmt.Errorf("the buttons say %q", l.Buttons)
		}
		return l.checkDirection("ar", "rtl")
	})
	b.screenshots("sign-in-ar")

	b.step("sign in as Ada and connect Corp, in Arabic", 20*time.Second, func(ctx context.Context) error {
		if err := chromeClick(ctx, chromedp.Search(`//form[contains(@action, "/oauth/dev/start")]/button`)); err != nil {
			return err
		}
		if err := chromeClick(ctx, chromeDevUser("Ada Lovelace")); err != nil {
			return err
		}
		if err := chromeOpen(ctx, e.Base+"/_auth/account"); err != nil {
			return err
		}
		if err := chromeClick(ctx, chromedp.Search(`//form[.//input[@name="provider"][@value="corp"]]/button`)); err != nil {
			return err
		}
		return chromeExpectText(ctx, ".notice[role=status]", "تم ربط الحساب.")
	})

	b.step("the account page in Arabic", 15*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, e.Base+"/_auth/account"); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, "h1", "حسابك"); err != nil {
			return err
		}
		accounts, err := chromeTexts(ctx, "section[aria-labelledby=connected] li")
		if err != nil {
			return err
		}
		if len(accounts) != 2 || !strings.HasPrefix(accounts[1], "\u2068Corp\u2069") && !strings.HasPrefix(accounts[1], "Corp") {
			return fmt.Errorf("the connected accounts are %q", accounts)
		}
		l, err := chromeReadLayout(ctx, "h1")
		if err != nil {
			return err
		}
		if err := l.checkDirection("ar", "rtl"); err != nil {
			return err
		}
		// The way back to the app starts the page, on its right, pointing right.
		back, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`(() => { const r = document.querySelector("a.back").getBoundingClientRect(); return [r.right, getComputedStyle(document.querySelector("a.back"), "::before").content === '"→ "' ? 1 : 0] })()`))
		if err != nil {
			return err
		}
		if math.Abs(back[0]-l.ContentRight) > 1.5 || back[1] != 1 {
			return fmt.Errorf("the back link ends at %.0f (content ends at %.0f), arrow right %v", back[0], l.ContentRight, back[1] == 1)
		}
		return nil
	})
	b.screenshots("account-ar")
	t.Logf("the German and Arabic browser test took %v", time.Since(started).Round(time.Millisecond))
}

// TestBrowser_SignedOutNotice signs out and lands on the sign-in page,
// which says so.
func TestBrowser_SignedOutNotice(t *testing.T) {
	b := startChrome(t, 60*time.Second)
	e, _ := newLinkEnv(t, "", "")
	b.step("sign in and out", 20*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, e.Base+"/"); err != nil {
			return err
		}
		if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".notice").length`)); err != nil || n != 0 {
			return fmt.Errorf("the sign-in page has %d notices (%v) before any sign-out", n, err)
		}
		if err := chromeClick(ctx, chromeButton("Continue with Dev provider")); err != nil {
			return err
		}
		if err := chromeClick(ctx, chromeDevUser("Ada Lovelace")); err != nil {
			return err
		}
		if err := chromeOpen(ctx, e.Base+"/_auth/account"); err != nil {
			return err
		}
		if err := chromeClick(ctx, chromeLink("Sign out")); err != nil {
			return err
		}
		if err := chromeClick(ctx, chromeButton("Sign out")); err != nil {
			return err
		}
		if err := chromeExpectLocation(ctx, func(l string) bool { return l == e.Base+"/_auth/sign-in?notice=signed_out" }, "the sign-in page with the notice"); err != nil {
			return err
		}
		return chromeExpectText(ctx, ".notice[role=status]", "You are signed out.")
	})
	b.screenshots("signed-out")
	b.step("the notice is not sticky", 10*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, e.Base+"/"); err != nil {
			return err
		}
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(".notice").length`))
		if err != nil || n != 0 {
			return fmt.Errorf("a later sign-in page has %d notices (%v)", n, err)
		}
		return nil
	})
}
