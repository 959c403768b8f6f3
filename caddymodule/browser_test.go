package caddymodule_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The browser test drives a real Chromium through a real Caddy, as a person
// would: it clicks the buttons that the pages show. It needs Debian's
// Chromium (apt-get install -y chromium) and skips without it.

const chromePath = "/usr/bin/chromium"

// chromeTab is one headless Chromium with one tab.
type chromeTab struct {
	t   *testing.T
	ctx context.Context // the tab; every step derives a context with a timeout from it
	out *chromeOutput   // Chromium's stdout and stderr, shown when a step fails
}

type chromeOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *chromeOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns the last lines of the output, without the noise of a
// machine that has no D-Bus.
func (l *chromeOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lines []string
	for line := range strings.Lines(l.b.String()) {
		if !strings.Contains(line, "dbus") {
			lines = append(lines, line)
		}
	}
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "")
}

// startChrome starts Chromium with a fresh profile. The whole browser
// lives at most limit, so a hung browser cannot hang the test run.
func startChrome(t *testing.T, limit time.Duration) *chromeTab {
	t.Helper()
	if _, err := os.Stat(chromePath); err != nil {
		t.Skipf("browser test skipped: no Chromium at %s (install it with: apt-get update && apt-get install -y chromium)", chromePath)
	}
	profile := t.TempDir()
	out := &chromeOutput{}
	life, cancelLife := context.WithTimeout(context.Background(), limit)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life,
		chromedp.ExecPath(chromePath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),       // loopback only, whatever the environment says
		chromedp.Flag("disable-dev-shm-usage", true), // /dev/shm is small in containers
		chromedp.Flag("hide-scrollbars", true),       // screenshots without scrollbars
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(int(chromeDesktop.width), int(chromeDesktop.height)),
		chromedp.CombinedOutput(out),
	)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	// Cleanups run last-in first-out: the browser ends before its profile
	// directory is removed.
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		cancelLife()
	})
	// The first Do starts the browser; its context is the browser's life.
	started := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v\n%s", err, out.String())
	}
	t.Logf("Chromium started in %v", time.Since(started).Round(time.Millisecond))
	return &chromeTab{t: t, ctx: ctx, out: out}
}

// step runs f with a context that ends after d, and fails the test with
// Chromium's output when f returns an error.
func (c *chromeTab) step(name string, d time.Duration, f func(ctx context.Context) error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, d)
	defer cancel()
	started := time.Now()
	if err := f(ctx); err != nil {
		loc, _ := chromedp.Run(c.ctx, chromedp.Location())
		c.t.Fatalf("%s: %v (after %v, at %s)\nChromium's output:\n%s", name, err,
			time.Since(started).Round(time.Millisecond), loc, c.out.String())
	}
}

// chromeButton selects a button by its visible text, as a person finds it.
func chromeButton(chromeText string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//button[normalize-space(.)=%q]`, chromeText))
}

// chromeClick clicks the element and waits until the page it leads to
// (after every redirect) has loaded.
func chromeClick[S chromedp.Selectable](ctx context.Context, sel S) error {
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(sel))
	if err != nil {
		return fmt.Errorf("clicking %v: %w", sel, err)
	}
	if resp.Status != 200 {
		return fmt.Errorf("clicking %v led to %s: status %d", sel, resp.URL, resp.Status)
	}
	return nil
}

// chromeOpen navigates to rawURL and waits for the page to load.
func chromeOpen(ctx context.Context, rawURL string) error {
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(rawURL))
	if err != nil {
		return fmt.Errorf("opening %s: %w", rawURL, err)
	}
	if resp.Status != 200 {
		return fmt.Errorf("opening %s led to %s: status %d", rawURL, resp.URL, resp.Status)
	}
	return nil
}

func chromeLocation(ctx context.Context) (string, error) {
	return chromedp.Run(ctx, chromedp.Location())
}

func chromeText(ctx context.Context, css string) (string, error) {
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css), chromedp.NodeVisible))
	return strings.TrimSpace(s), err
}

// chromeTexts returns the visible text of every element that matches css, with
// runs of white space collapsed.
func chromeTexts(ctx context.Context, css string) ([]string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(
		`Array.from(document.querySelectorAll(%q), e => e.innerText.replace(/\s+/g, " ").trim())`, css)))
}

func chromeExpectText(ctx context.Context, css, want string) error {
	got, err := chromeText(ctx, css)
	if err != nil {
		return fmt.Errorf("reading %s: %w", css, err)
	}
	if got != want {
		return fmt.Errorf("%s says %q, want %q", css, got, want)
	}
	return nil
}

func chromeExpectLocation(ctx context.Context, want func(string) bool, what string) error {
	loc, err := chromeLocation(ctx)
	if err != nil {
		return err
	}
	if !want(loc) {
		return fmt.Errorf("the browser is at %s, want %s", loc, what)
	}
	return nil
}

var chromeUpstreamAnswer = regexp.MustCompile(`^upstream saw (\S+) as (\S+)$`)

func TestBrowser_SignInAccountSignOut(t *testing.T) {
	started := time.Now()
	b := startChrome(t, 90*time.Second)
	e, op := newLinkEnv(t, "", "")
	op.SetClaims(map[string]any{"sub": "corp-ada", "email": "ada@corp.example", "email_verified": true, "name": "Ada Lovelace"})
	protected := e.Base + "/reports/2026?view=all"
	isSignIn := func(loc string) bool { return strings.HasPrefix(loc, e.Base+"/_auth/sign-in") }

	// 1. A protected URL leads to the sign-in page.
	b.step("open the protected URL", 15*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, protected); err != nil {
			return err
		}
		if err := chromeExpectLocation(ctx, func(l string) bool {
			return strings.HasPrefix(l, e.Base+"/_auth/sign-in?return_to=")
		}, "the sign-in page with a return_to"); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, "h1", "Sign in to socialgate"); err != nil {
			return err
		}
		buttons, err := chromeTexts(ctx, "main button")
		if err != nil {
			return err
		}
		if want := []string{"Continue with Dev provider", "Continue with Corp"}; !slices.Equal(buttons, want) {
			return fmt.Errorf("the sign-in buttons are %q, want %q", buttons, want)
		}
		return nil
	})

	// 5a. Accessibility of the sign-in page: named controls, and the first
	// Tab from the top of the page reaches the first sign-in button.
	b.step("accessibility of the sign-in page", 10*time.Second, func(ctx context.Context) error {
		names, err := chromeAccessibleNames(ctx)
		if err != nil {
			return err
		}
		t.Logf("sign-in page controls: %q", names)
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			return err
		}
		got, err := chromeFocused(ctx)
		if err != nil {
			return err
		}
		if got != "button Continue with Dev provider" {
			return fmt.Errorf("the first Tab focuses %q, want the button Continue with Dev provider", got)
		}
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			return err
		}
		if got, err = chromeFocused(ctx); err != nil || got != "button Continue with Corp" {
			return fmt.Errorf("the second Tab focuses %q (%v), want the button Continue with Corp", got, err)
		}
		return nil
	})
	b.screenshots("sign-in")

	// 1 (continued). Continue with the dev provider and pick Ada.
	b.step("continue with the dev provider", 15*time.Second, func(ctx context.Context) error {
		if err := chromeClick(ctx, chromeButton("Continue with Dev provider")); err != nil {
			return err
		}
		if err := chromeExpectLocation(ctx, func(l string) bool { return strings.HasPrefix(l, e.DevURL+"/authorize?") }, "the dev provider's page"); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, "h1", "Sign in"); err != nil {
			return err
		}
		banner, err := chromeText(ctx, ".banner")
		if err != nil || !strings.Contains(banner, "not for production") {
			return fmt.Errorf("the dev provider's warning banner says %q (%v)", banner, err)
		}
		return nil
	})
	b.screenshots("dev-provider")

	var userID string
	b.step("sign in as Ada Lovelace", 15*time.Second, func(ctx context.Context) error {
		ada := chromedp.Search(`//button[@name="user"][.//span[normalize-space(.)="Ada Lovelace"]]`)
		if err := chromeClick(ctx, ada); err != nil {
			return err
		}
		if err := chromeExpectLocation(ctx, func(l string) bool { return l == protected }, protected); err != nil {
			return err
		}
		body, err := chromeText(ctx, "body")
		if err != nil {
			return err
		}
		m := chromeUpstreamAnswer.FindStringSubmatch(body)
		if m == nil || m[1] != "/reports/2026" {
			return fmt.Errorf("the protected page says %q, want the upstream's answer for /reports/2026 with a user id", body)
		}
		userID = m[2]
		if got := e.Upstream.Last(t).Get("X-Auth-User-Id"); got != userID {
			return fmt.Errorf("the page shows user %q, the upstream received %q", userID, got)
		}
		return nil
	})
	t.Logf("signed in as user %s", userID)

	// 2. The account page: profile, the Dev account, connect and
	// disconnect Corp.
	b.step("open the account page", 15*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, e.Base+"/_auth/account"); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, "h1", "Your account"); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, "section[aria-labelledby=profile] strong", "Ada Lovelace"); err != nil {
			return err
		}
		emails, err := chromeTexts(ctx, "section[aria-labelledby=profile] li")
		if err != nil {
			return err
		}
		if !slices.Contains(emails, "ada@example.com verified") {
			return fmt.Errorf("the profile's emails are %q, want ada@example.com verified", emails)
		}
		accounts, err := chromeTexts(ctx, "section[aria-labelledby=connected] li")
		if err != nil {
			return err
		}
		if len(accounts) != 1 || !strings.HasPrefix(accounts[0], "Dev provider · ada@example.com connected") {
			return fmt.Errorf("the connected accounts are %q, want only Dev provider with ada@example.com", accounts)
		}
		return nil
	})

	b.step("connect Corp", 15*time.Second, func(ctx context.Context) error {
		authorizeBefore := op.Calls("authorize")
		if err := chromeClick(ctx, chromeButton("Connect Corp")); err != nil {
			return err
		}
		if op.Calls("authorize") != authorizeBefore+1 {
			return fmt.Errorf("the click did not go through Corp's authorization endpoint")
		}
		if err := chromeExpectLocation(ctx, func(l string) bool { return strings.HasPrefix(l, e.Base+"/_auth/account") }, "the account page"); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, ".notice[role=status]", "Account connected."); err != nil {
			return err
		}
		accounts, err := chromeTexts(ctx, "section[aria-labelledby=connected] li")
		if err != nil {
			return err
		}
		if len(accounts) != 2 || !strings.HasPrefix(accounts[0], "Dev provider · ada@example.com connected") ||
			!strings.HasPrefix(accounts[1], "Corp · ada@corp.example connected") {
			return fmt.Errorf("the connected accounts are %q, want Dev provider and Corp", accounts)
		}
		if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main form button").length`)); err != nil || n != 2 {
			return fmt.Errorf("the account page has %d buttons (%v), want the two Disconnect buttons and no Connect button", n, err)
		}
		return nil
	})

	// 5b. Accessibility of the account page, with both accounts connected.
	b.step("accessibility of the account page", 10*time.Second, func(ctx context.Context) error {
		names, err := chromeAccessibleNames(ctx)
		if err != nil {
			return err
		}
		if want := []string{"Disconnect Dev provider", "Disconnect Corp"}; !slices.Equal(names, want) {
			return fmt.Errorf("the account page's controls are named %q, want %q", names, want)
		}
		return nil
	})
	// The README's account picture is the quick start's (TestBrowser_QuickStart).
	b.checkScreenshots("account")

	b.step("disconnect Corp", 15*time.Second, func(ctx context.Context) error {
		corpDisconnect := chromedp.Search(`//li[.//strong[normalize-space(.)="Corp"]]//button[normalize-space(.)="Disconnect"]`)
		if err := chromeClick(ctx, corpDisconnect); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, ".notice[role=status]", "Account disconnected."); err != nil {
			return err
		}
		accounts, err := chromeTexts(ctx, "section[aria-labelledby=connected] li")
		if err != nil {
			return err
		}
		if len(accounts) != 1 || !strings.HasPrefix(accounts[0], "Dev provider") {
			return fmt.Errorf("after the disconnect the connected accounts are %q, want only Dev provider", accounts)
		}
		buttons, err := chromeTexts(ctx, "main form button")
		if err != nil {
			return err
		}
		if !slices.Equal(buttons, []string{"Connect Corp"}) {
			return fmt.Errorf("after the disconnect the buttons are %q, want only Connect Corp", buttons)
		}
		return nil
	})

	// 3. Sign out, and the protected URL asks for a sign-in again.
	b.step("sign out", 15*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, e.Base+"/_auth/sign-out"); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, "h1", "Sign out"); err != nil {
			return err
		}
		if err := chromeClick(ctx, chromeButton("Sign out")); err != nil {
			return err
		}
		if err := chromeExpectLocation(ctx, isSignIn, "the sign-in page"); err != nil {
			return err
		}
		return chromeExpectText(ctx, "h1", "Sign in to socialgate")
	})
	b.step("the protected URL after sign-out", 15*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, protected); err != nil {
			return err
		}
		if err := chromeExpectLocation(ctx, isSignIn, "the sign-in page"); err != nil {
			return err
		}
		return chromeExpectText(ctx, "h1", "Sign in to socialgate")
	})
	t.Logf("the browser test took %v", time.Since(started).Round(time.Millisecond))
}
