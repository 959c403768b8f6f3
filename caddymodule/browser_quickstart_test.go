package caddymodule_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromeLink selects a link by its visible text.
func chromeLink(text string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//a[normalize-space(.)=%q]`, text))
}

// chromeDevUser selects a preset user's button on the dev provider's page.
func chromeDevUser(name string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//button[@name="user"][.//span[normalize-space(.)=%q]]`, name))
}

// TestBrowser_QuickStart clicks through Caddyfile.example as a newcomer
// would: sign in with dev, connect Corp (the dev provider's second
// identity), grant it repo when /repos asks, disconnect it. It takes the
// README's account screenshots, with both accounts connected.
func TestBrowser_QuickStart(t *testing.T) {
	started := time.Now()
	b := startChrome(t, 90*time.Second)
	e := quickStart(t)
	accounts := func(ctx context.Context) ([]string, error) {
		return chromeTexts(ctx, "section[aria-labelledby=connected] li")
	}

	b.step("sign in with dev as Ada", 15*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, e.Base+"/"); err != nil {
			return err
		}
		buttons, err := chromeTexts(ctx, "main button")
		if err != nil {
			return err
		}
		if want := []string{"Continue with Dev provider"}; !slices.Equal(buttons, want) {
			return fmt.Errorf("the sign-in buttons are %q, want %q (Corp is connect-only)", buttons, want)
		}
		if err := chromeClick(ctx, chromeButton("Continue with Dev provider")); err != nil {
			return err
		}
		if err := chromeClick(ctx, chromeDevUser("Ada Lovelace")); err != nil {
			return err
		}
		return chromeExpectText(ctx, "h1", "Hello, Ada Lovelace")
	})

	b.step("connect Corp from the account page", 15*time.Second, func(ctx context.Context) error {
		if err := chromeClick(ctx, chromeLink("Your account")); err != nil {
			return err
		}
		if got, err := accounts(ctx); err != nil || len(got) != 1 || !strings.HasPrefix(got[0], "Dev provider · ada@example.com connected") {
			return fmt.Errorf("the connected accounts are %q (%v), want only Dev provider", got, err)
		}
		if err := chromeClick(ctx, chromeButton("Connect Corp")); err != nil {
			return err
		}
		if err := chromeExpectLocation(ctx, func(l string) bool { return strings.HasPrefix(l, e.DevURL+"/corp/authorize?") }, "Corp's page at the dev provider"); err != nil {
			return err
		}
		if intro, err := chromeText(ctx, "main > p:not(.banner)"); err != nil || !strings.Contains(intro, e.DevURL+"/corp") || strings.Contains(intro, "repo") {
			return fmt.Errorf("Corp's page says %q (%v), want its issuer and no repo yet", intro, err)
		}
		if err := chromeClick(ctx, chromeDevUser("Ada Lovelace")); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, ".notice[role=status]", "Account connected."); err != nil {
			return err
		}
		got, err := accounts(ctx)
		if err != nil || len(got) != 2 || !strings.HasPrefix(got[1], "Corp · ada@example.com connected") {
			return fmt.Errorf("the connected accounts are %q (%v), want Dev provider and Corp", got, err)
		}
		return nil
	})

	b.step("grant Corp repo when /repos asks", 15*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, e.Base+"/repos"); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, "h1", "More access to Corp"); err != nil {
			return err
		}
		if err := chromeClick(ctx, chromeButton("Continue to Corp")); err != nil {
			return err
		}
		if intro, err := chromeText(ctx, "main > p:not(.banner)"); err != nil || !strings.Contains(intro, "repo") {
			return fmt.Errorf("Corp's page says %q (%v), want repo asked for", intro, err)
		}
		if err := chromeClick(ctx, chromeDevUser("Ada Lovelace")); err != nil {
			return err
		}
		body, err := chromeText(ctx, "body")
		if err != nil || !strings.Contains(body, "You reached /repos") {
			return fmt.Errorf("after granting repo the page says %q (%v)", body, err)
		}
		return nil
	})

	b.step("the account page with Corp and its repo access", 15*time.Second, func(ctx context.Context) error {
		if err := chromeOpen(ctx, e.Base+"/_auth/account"); err != nil {
			return err
		}
		got, err := accounts(ctx)
		if err != nil || len(got) != 2 || !strings.Contains(got[1], "repo") {
			return fmt.Errorf("the connected accounts are %q (%v), want Corp with repo", got, err)
		}
		names, err := chromeAccessibleNames(ctx)
		if err != nil {
			return err
		}
		// Dev is the only account to sign in with: it cannot be disconnected.
		if want := []string{"Disconnect Corp"}; !slices.Equal(names, want) {
			return fmt.Errorf("the account page's controls are named %q, want %q", names, want)
		}
		return nil
	})
	b.screenshots("account")

	b.step("disconnect Corp", 15*time.Second, func(ctx context.Context) error {
		if err := chromeClick(ctx, chromeButton("Disconnect")); err != nil {
			return err
		}
		if err := chromeExpectText(ctx, ".notice[role=status]", "Account disconnected."); err != nil {
			return err
		}
		buttons, err := chromeTexts(ctx, "main form button")
		if err != nil || !slices.Equal(buttons, []string{"Connect Corp"}) {
			return fmt.Errorf("after the disconnect the buttons are %q (%v), want only Connect Corp", buttons, err)
		}
		return nil
	})
	t.Logf("the quick-start browser test took %v", time.Since(started).Round(time.Millisecond))
}
