package caddymodule_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// axeScript is axe-core, installed by npm ci in test/axe (.ci/run does it).
var axeScript = filepath.Join("..", "test", "axe", "node_modules", "axe-core", "axe.min.js")

// chromeErrors collects what the tab reports as errors: uncaught
// exceptions, console.error calls, and log entries of level error (a
// resource that failed to load, a Content-Security-Policy violation).
type chromeErrors struct {
	mu   sync.Mutex
	list []string
}

func (c *chromeErrors) listen(t *testing.T, tab *chromeTab) {
	tab.step("listen for errors", 5*time.Second, func(ctx context.Context) error {
		if err := chromedp.Listen(tab.ctx, func(ev any) {
			var msg string
			switch ev := ev.(type) {
			case *runtime.EventExceptionThrown:
				msg = "exception: " + ev.ExceptionDetails.Text
			case *runtime.EventConsoleAPICalled:
				if ev.Type == runtime.ConsoleAPICalledTypeError {
					msg = "console.error"
				}
			case *log.EventEntryAdded:
				if ev.Entry.Level == log.EntryLevelError {
					msg = ev.Entry.Text + " " + ev.Entry.URL
				}
			}
			if msg != "" {
				c.mu.Lock()
				c.list = append(c.list, msg)
				c.mu.Unlock()
			}
		}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, log.Enable, cdp.Empty{})
		return err
	})
}

func (c *chromeErrors) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.list...)
}

// axeViolations runs axe-core in the page and returns its violations, one
// line each.
func axeViolations(ctx context.Context, script string) ([]string, error) {
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](script)); err != nil {
		return nil, fmt.Errorf("loading axe-core: %w", err)
	}
	return chromedp.Run(ctx, chromedp.Evaluate[[]string](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
		r.violations.map(v => v.id + " (" + v.impact + "): " + v.help + ": " + v.nodes.map(n => n.target.join(" ")).join(", ")))`,
		chromedp.EvalAwaitPromise))
}

// chromeTabUntil presses Tab until the focused element is want (see
// chromeFocused), at most n times.
func chromeTabUntil(ctx context.Context, want string, n int) error {
	var seen []string
	for range n {
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			return err
		}
		got, err := chromeFocused(ctx)
		if err != nil {
			return err
		}
		if got == want {
			return nil
		}
		seen = append(seen, got)
	}
	return fmt.Errorf("%d Tabs never focus %q; they focus %q", n, want, seen)
}

// chromeEnterLeadsTo presses Enter on the focused element and waits for the
// page at a location that want accepts.
func chromeEnterLeadsTo(ctx context.Context, want func(string) bool, what string) error {
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\r")); err != nil {
		return err
	}
	for {
		loc, err := chromeLocation(ctx)
		if err != nil {
			return err
		}
		ready, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState`))
		if want(loc) && ready == "complete" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Enter left the browser at %s, want %s", loc, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// The console in Chromium: every page at desktop and phone width without
// overflow, axe-core finding no violation, no error in the browser, and
// an operator who finds a user and bans them with the keyboard alone.
func TestBrowser_Console(t *testing.T) {
	script, err := os.ReadFile(axeScript)
	if err != nil {
		t.Skipf("browser console test skipped: no axe-core at %s (run npm ci in test/axe)", axeScript)
	}
	tab := startChrome(t, 120*time.Second)
	var errs chromeErrors
	errs.listen(t, tab)
	e := consoleEnv(t, "badger", "webhook app http://127.0.0.1:9/hooks {\n\t\t\tsecret "+hookSecret+"\n\t\t}\n\t\tredirect_urls myapp://oauth-callback")
	recordSecret(hookSecret)
	grace := consoleUser(t, e, "Grace Hopper", "grace@example.com")
	consoleUser(t, e, "Bob Kahn", "bob@example.com")
	graceID := userIDOf(t, e, grace)
	graceLink := "a " + "Grace Hopper"

	tab.step("sign in as the operator", 20*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, e.Base+"/_auth/admin"); err != nil {
			return err
		}
		if err := chromeClick(ctx, chromeButton("Continue with Dev provider")); err != nil {
			return err
		}
		if err := chromeClick(ctx, chromedp.Search(`//button[@name="user"][.//span[normalize-space(.)="Ada Lovelace"]]`)); err != nil {
			return err
		}
		return chromeExpectText(ctx, "h1", "Users")
	})
	check := func(page string) {
		tab.step("axe-core on "+page, 30*time.Second, func(ctx context.Context) error {
			violations, err := axeViolations(ctx, string(script))
			if err != nil {
				return err
			}
			if len(violations) > 0 {
				return fmt.Errorf("axe-core finds %d violations:\n%s", len(violations), strings.Join(violations, "\n"))
			}
			_, err = chromeAccessibleNames(ctx)
			return err
		})
		tab.screenshots(page)
	}
	check("console-users")

	// Keyboard only: from the top of the list to Grace's page, then Ban.
	tab.step("reach a user with the keyboard", 20*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, e.Base+"/_auth/admin"); err != nil {
			return err
		}
		if err := chromeTabUntil(ctx, "button Search", 5); err != nil { // past the search box
			return err
		}
		if err := chromeTabUntil(ctx, graceLink, 10); err != nil {
			return err
		}
		return chromeEnterLeadsTo(ctx, func(l string) bool { return strings.HasSuffix(l, "/_auth/admin/users/"+graceID) }, "Grace's page")
	})
	tab.step("the user page's metadata", 10*time.Second, func(ctx context.Context) error {
		return chromeExpectText(ctx, "h1", "Grace Hopper")
	})
	tab.step("ban with the keyboard", 20*time.Second, func(ctx context.Context) error {
		if err := chromeTabUntil(ctx, "button Ban", 40); err != nil {
			return err
		}
		if err := chromeEnterLeadsTo(ctx, func(l string) bool { return strings.HasSuffix(l, "?notice=banned") }, "the notice"); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, "p.notice", "The user is banned: their sessions ended and they cannot sign in."); err != nil {
			return err
		}
		return chromeExpectText(ctx, "section[aria-labelledby=audit] tbody tr:first-child td:nth-child(2)", "Banned")
	})
	check("console-user")

	tab.step("open the gateway page", 20*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, e.Base+"/_auth/admin/gateway"); err != nil {
			return err
		}
		return chromeExpectText(ctx, "h1", "Gateway")
	})
	check("console-gateway")

	// In Arabic the list is mirrored: the heading starts at the right, the
	// first column is the rightmost, the search button follows the box to
	// its left.
	tab.step("the user list in Arabic", 15*time.Second, func(ctx context.Context) error {
		if err := chromeLanguage(ctx, "ar"); err != nil {
			return err
		}
		if err := chromeOpen(ctx, e.Base+"/_auth/admin"); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, "h1", "المستخدمون"); err != nil {
			return err
		}
		l, err := chromedp.Run(ctx, chromedp.Evaluate[consoleLayout](consoleLayoutJS))
		if err != nil {
			return err
		}
		switch {
		case l.Lang != "ar" || l.Dir != "rtl":
			return fmt.Errorf("the page is lang %q, direction %q; want ar, rtl", l.Lang, l.Dir)
		case math.Abs(l.ContentRight-l.TextRight) > 1.5 || l.TextLeft-l.ContentLeft < 20:
			return fmt.Errorf("the heading spans %.0f–%.0f in content %.0f–%.0f: not at the right", l.TextLeft, l.TextRight, l.ContentLeft, l.ContentRight)
		case l.FirstColumn <= l.LastColumn:
			return fmt.Errorf("the first column is at %.0f, the last at %.0f: not mirrored", l.FirstColumn, l.LastColumn)
		case l.Button >= l.Input:
			return fmt.Errorf("the search button is at %.0f, its box at %.0f: not to its left", l.Button, l.Input)
		}
		return nil
	})
	check("console-users-ar")

	// A signed-in user who is no operator gets the 403 page, and nothing
	// of the console.
	tab.step("sign out the operator", 20*time.Second, func(ctx context.Context) error {
		if err := chromeLanguage(ctx, "en"); err != nil {
			return err
		}
		if err := chromeOpen(ctx, e.Base+"/_auth/sign-out"); err != nil {
			return err
		}
		return chromeClick(ctx, chromeButton("Sign out"))
	})
	tab.step("the console as a non-operator", 20*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, e.Base+"/_auth/admin"); err != nil {
			return err
		}
		if err := chromeClick(ctx, chromeButton("Continue with Dev provider")); err != nil {
			return err
		}
		resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.Search(`//button[@name="user"][.//span[normalize-space(.)="Alan Turing"]]`)))
		if err != nil {
			return err
		}
		if resp.Status != 403 || !strings.HasSuffix(resp.URL, "/_auth/admin") {
			return fmt.Errorf("signing in as Alan led to %s: status %d, want the console's 403", resp.URL, resp.Status)
		}
		if err := chromeExpectText(ctx, "h1", "Not allowed here"); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, "div.error", "You do not have access to this page."); err != nil {
			return err
		}
		return chromeExpectText(ctx, "p.sub", "You are signed in as alan@example.com.")
	})
	check("console-forbidden")

	// Chromium logs the 403 as a resource that failed to load: that one
	// answer is the page's point, not an error of it.
	all := errs.all()
	if i := slices.Index(all, "Failed to load resource: the server responded with a status of 403 (Forbidden) "+e.Base+"/_auth/admin"); i >= 0 {
		all = slices.Delete(all, i, i+1)
	}
	if errs := all; len(errs) > 0 {
		t.Errorf("the browser reported errors:\n%s", strings.Join(errs, "\n"))
	}
}

// consoleLayout is where the console's user list puts things, read in the
// page (consoleLayoutJS): main's content box, the heading's text, the left
// edges of the table's first and last columns, of the search box and of
// its button.
type consoleLayout struct {
	Lang, Dir                                      string
	ContentLeft, ContentRight, TextLeft, TextRight float64
	FirstColumn, LastColumn, Input, Button         float64
}

const consoleLayoutJS = `(() => {
	const main = document.querySelector("main"), cs = getComputedStyle(main), box = main.getBoundingClientRect();
	const line = document.createRange(); line.selectNodeContents(document.querySelector("h1"));
	const text = line.getBoundingClientRect(), th = Array.from(document.querySelectorAll("thead th"), c => c.getBoundingClientRect());
	return {
		Lang: document.documentElement.lang, Dir: getComputedStyle(document.body).direction,
		ContentLeft: box.left + parseFloat(cs.borderLeftWidth) + parseFloat(cs.paddingLeft),
		ContentRight: box.right - parseFloat(cs.borderRightWidth) - parseFloat(cs.paddingRight),
		TextLeft: text.left, TextRight: text.right,
		FirstColumn: th[0].left, LastColumn: th[th.length - 1].left,
		Input: document.querySelector("#q").getBoundingClientRect().left,
		Button: document.querySelector("form[role=search] button").getBoundingClientRect().left,
	};
})()`
