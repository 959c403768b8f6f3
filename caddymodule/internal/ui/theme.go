package ui

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// DefaultAccent is the accent colour when none is set: white text on it
// contrasts 6.1:1, well past WCAG AA's 4.5:1.
const DefaultAccent = "#1f5ad1"

// minContrast is WCAG 2's AA contrast for normal text (the buttons' text
// is 16px, too small to count as large).
const minContrast = 4.5

// The page's own text colour and card background (layout.html's --fg and
// --card): the dark text a light accent gets, and what accent text sits on.
const (
	darkText = "#1b1f24"
	white    = "#ffffff"
)

var accentPattern = regexp.MustCompile(`^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$`)

// theme is the accent's colours, chosen once at load so that each pair
// reads: text on the accent, and the accent as text on white.
type theme struct {
	accent     string // primary buttons' background
	onAccent   string // their text
	accentText string // links and focus rings on the white card
}

// newTheme checks the operator's accent and derives the theme from it. An
// accent that white text does not contrast with enough gets dark text (or,
// where neither reads, is darkened until white does), and links use a
// darkened accent: the operator is told which, with the ratios.
func newTheme(accent string, logger *zap.Logger) (theme, error) {
	if accent == "" {
		accent = DefaultAccent
	}
	given := accent
	if !strings.HasPrefix(accent, "#") {
		accent = "#" + accent // "#" starts a Caddyfile comment unless quoted
	}
	if !accentPattern.MatchString(accent) {
		return theme{}, fmt.Errorf("accent colour %q is not a hex colour like %s", given, DefaultAccent)
	}
	rgb := parseHex(accent)
	th := theme{accent: accent, onAccent: white, accentText: accent}
	onWhite := contrast(rgb, parseHex(white))
	if onWhite >= minContrast {
		return th, nil
	}
	dark := darkened(rgb)
	th.accentText = dark.hex()
	if contrast(rgb, parseHex(darkText)) >= minContrast {
		th.onAccent = darkText
		logger.Warn("the accent colour is too light for white text: its buttons get dark text, and links a darker shade of it",
			zap.String("accent", accent), zap.String("white_contrast", ratio(onWhite)),
			zap.String("dark_text_contrast", ratio(contrast(rgb, parseHex(darkText)))), zap.String("links", th.accentText))
		return th, nil
	}
	th.accent = th.accentText
	logger.Warn("the accent colour contrasts too little with both white and dark text: a darker shade of it is used",
		zap.String("accent", accent), zap.String("white_contrast", ratio(onWhite)), zap.String("used", th.accent),
		zap.String("used_contrast", ratio(contrast(dark, parseHex(white)))))
	return th, nil
}

func ratio(r float64) string { return strconv.FormatFloat(r, 'f', 2, 64) + ":1" }

type rgb [3]float64 // 0–255

func parseHex(s string) rgb {
	s = strings.TrimPrefix(s, "#")
	if len(s) == 3 {
		s = string([]byte{s[0], s[0], s[1], s[1], s[2], s[2]})
	}
	var c rgb
	for i := range c {
		v, _ := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		c[i] = float64(v)
	}
	return c
}

func (c rgb) hex() string {
	return fmt.Sprintf("#%02x%02x%02x", int(math.Round(c[0])), int(math.Round(c[1])), int(math.Round(c[2])))
}

// luminance is WCAG 2's relative luminance.
func (c rgb) luminance() float64 {
	var lin [3]float64
	for i, v := range c {
		v = math.Round(v) / 255
		if v <= 0.04045 {
			lin[i] = v / 12.92
		} else {
			lin[i] = math.Pow((v+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*lin[0] + 0.7152*lin[1] + 0.0722*lin[2]
}

// contrast is WCAG 2's contrast ratio of two colours, from 1 to 21.
func contrast(a, b rgb) float64 {
	la, lb := a.luminance(), b.luminance()
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

// darkened is c scaled towards black, keeping its hue, until white text on
// it contrasts at least minContrast.
func darkened(c rgb) rgb {
	for contrast(c, parseHex(white)) < minContrast {
		for i := range c {
			c[i] *= 0.97
		}
	}
	return c
}
