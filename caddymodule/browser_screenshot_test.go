package caddymodule_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The browser tests' screenshots: each page at desktop and phone width,
// checked, and written to docs/screenshots on request.

// chromeUpdateScreenshots makes the browser tests write their screenshots to
// docs/screenshots. Without it the screenshots are taken and checked, but
// the tracked files are left alone.
const chromeUpdateScreenshots = "SOCIALGATE_UPDATE_SCREENSHOTS"

// The two viewports of the screenshots.
var (
	chromeDesktop = chromeViewport{name: "desktop", width: 1280, height: 800, scale: 1}
	chromePhone   = chromeViewport{name: "phone", width: 390, height: 844, scale: 2, mobile: true}
)

type chromeViewport struct {
	name          string
	width, height int64
	scale         float64
	mobile        bool
}

func (v chromeViewport) emulate() chromedp.Action[chromedp.Void] {
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(v.scale)}
	if v.mobile {
		opts = append(opts, chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	return chromedp.EmulateViewport(v.width, v.height, opts...)
}

// fullScreenshot takes a PNG of the whole page at v's width: it makes the
// viewport as tall as the page and takes that, then sets v again.
// (Chromium's own capture beyond the viewport shifts a right-to-left page
// sideways.)
func (v chromeViewport) fullScreenshot(ctx context.Context) ([]byte, error) {
	m, err := chromedp.Call(ctx, page.GetLayoutMetrics, cdp.Empty{})
	if err != nil {
		return nil, err
	}
	tall := v
	tall.height = max(v.height, int64(math.Ceil(m.CSSContentSize.Height)))
	if err := chromedp.Do(ctx, tall.emulate()); err != nil {
		return nil, err
	}
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return nil, err
	}
	return buf, chromedp.Do(ctx, v.emulate())
}

// screenshots takes a full-page PNG of the current page at each viewport,
// checks it, and writes it to docs/screenshots/NAME-VIEWPORT.png when
// SOCIALGATE_UPDATE_SCREENSHOTS=1. It leaves the tab at the desktop size.
func (c *chromeTab) screenshots(name string) {
	c.t.Helper()
	c.takeScreenshots(name, os.Getenv(chromeUpdateScreenshots) == "1")
}

// checkScreenshots takes and checks the screenshots of a page whose pictures
// in docs/screenshots another test writes.
func (c *chromeTab) checkScreenshots(name string) {
	c.t.Helper()
	c.takeScreenshots(name, false)
}

func (c *chromeTab) takeScreenshots(name string, write bool) {
	c.t.Helper()
	for _, v := range []chromeViewport{chromeDesktop, chromePhone} {
		file := name + "-" + v.name + ".png"
		c.step("screenshot "+file, 10*time.Second, func(ctx context.Context) error {
			// No focus ring from an earlier step in the picture.
			if err := chromedp.Do(ctx,
				chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur()`),
				v.emulate(),
			); err != nil {
				return err
			}
			buf, err := v.fullScreenshot(ctx)
			if err != nil {
				return err
			}
			// The page fits the width: nothing sticks out sideways.
			overflow, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth - document.documentElement.clientWidth`))
			if err != nil {
				return err
			}
			if overflow > 0 {
				c.t.Errorf("%s: the page is %dpx wider than the %s viewport", file, overflow, v.name)
			}
			img, err := png.Decode(bytes.NewReader(buf))
			if err != nil {
				return fmt.Errorf("not a PNG (%d bytes): %w", len(buf), err)
			}
			minW, minH := int(float64(v.width)*v.scale), int(float64(v.height)*v.scale)
			if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w < minW || h < minH {
				return fmt.Errorf("the screenshot is %d×%d, want at least %d×%d", w, h, minW, minH)
			}
			if write {
				dir := filepath.Join("..", "docs", "screenshots")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, file), buf, 0o644); err != nil {
					return err
				}
				c.t.Logf("wrote docs/screenshots/%s (%d bytes)", file, len(buf))
			}
			return nil
		})
	}
	c.step("back to the desktop viewport", 5*time.Second, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromeDesktop.emulate())
	})
}
