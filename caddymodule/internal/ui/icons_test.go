package ui

import (
	"regexp"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/provider"
)

// Every preset has its brand's mark; oidc, oauth2 and anything unknown get
// the generic key.
func TestIcons_EveryPresetHasItsMark(t *testing.T) {
	for _, kind := range provider.Kinds() {
		generic := kind == provider.KindOIDC || kind == provider.KindOAuth2
		if got := icon(kind) == icons["generic"]; got != generic {
			t.Errorf("%s: generic icon %v, want %v", kind, got, generic)
		}
	}
	if icon("no-such-kind") != icons["generic"] || icon("") != icons["generic"] {
		t.Error("an unknown kind has no generic icon")
	}
}

// The marks are inline SVG that is decoration only (the button's text
// names the provider): hidden from screen readers, not focusable, and
// with nothing that fetches, runs or collides: no URL but the SVG
// namespace, no script, no style, no id (two providers of a kind on one
// page would repeat it).
func TestIcons_AreInertDecoration(t *testing.T) {
	forbidden := regexp.MustCompile(`(?i)<script|<style|<image|<use|<foreignObject|\bon[a-z]+=|href|url\(|\bid=`)
	for kind, svg := range icons {
		s := string(svg)
		if !strings.HasPrefix(s, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="`) ||
			!strings.Contains(s, ` aria-hidden="true" focusable="false">`) || !strings.HasSuffix(s, "</svg>") {
			t.Errorf("%s: %.120s… is not an aria-hidden inline SVG", kind, s)
		}
		if m := forbidden.FindString(s); m != "" {
			t.Errorf("%s: has %q", kind, m)
		}
		if strings.Count(s, "http") != 1 {
			t.Errorf("%s: refers to a URL besides the SVG namespace", kind)
		}
	}
	if len(icons) != 15 {
		t.Errorf("%d icons, want 14 presets and the generic key", len(icons))
	}
}
