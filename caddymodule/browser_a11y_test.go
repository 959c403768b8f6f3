package caddymodule_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/chromedp"
)

// What the browser tests read of a page's accessibility: the names of its
// controls and the focused element.

// chromeControlRoles are the accessibility roles of form controls.
var chromeControlRoles = []string{"button", "textbox", "searchbox", "checkbox", "radio", "combobox",
	"listbox", "spinbutton", "slider", "switch", "menuitem"}

// chromeAccessibleNames checks, with Chromium's own accessibility tree, that every
// form control of the page has an accessible name (from a label, aria-label
// or its text), and returns the names of the controls, in document order.
func chromeAccessibleNames(ctx context.Context) ([]string, error) {
	// The DOM's controls, to make sure that none is missing from the tree.
	domCount, err := chromedp.Run(ctx, chromedp.Evaluate[int](
		`document.querySelectorAll('button, input:not([type=hidden]), select, textarea').length`))
	if err != nil {
		return nil, err
	}
	tree, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		return nil, fmt.Errorf("reading the accessibility tree: %w", err)
	}
	var names, unnamed []string
	for _, n := range tree.Nodes {
		if n.Ignored || n.Role == nil {
			continue
		}
		role := chromeAXString(n.Role)
		if !slices.Contains(chromeControlRoles, role) {
			continue
		}
		name := strings.TrimSpace(chromeAXString(n.Name))
		if name == "" {
			unnamed = append(unnamed, fmt.Sprintf("a %s (DOM node %d)", role, n.BackendDOMNodeID))
			continue
		}
		names = append(names, name)
	}
	if len(unnamed) > 0 {
		return names, fmt.Errorf("form controls without an accessible name: %s", strings.Join(unnamed, ", "))
	}
	if len(names) != domCount {
		return names, fmt.Errorf("the page has %d form controls but its accessibility tree has %d named ones: %q", domCount, len(names), names)
	}
	return names, nil
}

func chromeAXString(v *accessibility.Value) string {
	if v == nil {
		return ""
	}
	var s string
	if err := json.Unmarshal(v.Value, &s); err != nil {
		return ""
	}
	return s
}

// chromeFocused describes the focused element: its tag and its accessible text.
func chromeFocused(ctx context.Context) (string, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[string](
		`(e => e ? e.tagName.toLowerCase() + " " + (e.getAttribute("aria-label") || e.innerText || "").trim() : "")(document.activeElement)`))
}
