package ui

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// Every accent yields buttons whose text contrasts at least 4.5:1 (WCAG
// AA) and links that do too on the white card; the default does with
// margin. An accent that needed help is reported.
func TestTheme_AccentTextAlwaysContrasts(t *testing.T) {
	for _, tc := range []struct {
		accent                   string
		wantAccent, wantOnAccent string
		wantWarning              string
	}{
		{"", DefaultAccent, white, ""},
		{"#2f6feb", "#2f6feb", white, ""}, // the old default: just AA (4.57:1)
		{"4f46e5", "#4f46e5", white, ""},  // without the "#" a Caddyfile would cut
		{"#000", "#000", white, ""},
		{"#ffd400", "#ffd400", darkText, "too light for white text"},                 // yellow: dark text reads
		{"#4d7bd6", "", white, "contrasts too little with both white and dark text"}, // mid blue: darkened
		{"#7a7a7a", "", white, "contrasts too little with both white and dark text"},
		{"#fff", "#fff", darkText, "too light for white text"},
		{"#e8590c", "#e8590c", darkText, "too light for white text"}, // orange: 3.58:1 with white, 4.63:1 with dark text
	} {
		logs, observed := observer.New(zap.WarnLevel)
		th, err := newTheme(tc.accent, zap.New(logs))
		if err != nil {
			t.Fatalf("%q: %v", tc.accent, err)
		}
		if tc.wantAccent != "" && th.accent != tc.wantAccent {
			t.Errorf("%q: accent %s, want %s", tc.accent, th.accent, tc.wantAccent)
		}
		if th.onAccent != tc.wantOnAccent {
			t.Errorf("%q: text on the accent %s, want %s", tc.accent, th.onAccent, tc.wantOnAccent)
		}
		if c := contrast(parseHex(th.accent), parseHex(th.onAccent)); c < minContrast {
			t.Errorf("%q: button text contrasts %.2f:1", tc.accent, c)
		}
		if c := contrast(parseHex(th.accentText), parseHex(white)); c < minContrast {
			t.Errorf("%q: accent text %s contrasts %.2f:1 on white", tc.accent, th.accentText, c)
		}
		warnings := observed.All()
		switch {
		case tc.wantWarning == "" && len(warnings) > 0:
			t.Errorf("%q: warned %q", tc.accent, warnings[0].Message)
		case tc.wantWarning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0].Message, tc.wantWarning)):
			t.Errorf("%q: warnings %v, want one saying %q", tc.accent, warnings, tc.wantWarning)
		}
	}
	if c := contrast(parseHex(DefaultAccent), parseHex(white)); c < 6 {
		t.Errorf("the default accent contrasts %.2f:1 with white, want a margin over 4.5:1 (6:1)", c)
	}
}

func TestTheme_RefusesWhatIsNotAColour(t *testing.T) {
	for _, accent := range []string{"red", "#12345", "#ggg", "javascript:1", "#fff;}body{x:y"} {
		if _, err := newTheme(accent, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "is not a hex colour like #1f5ad1") {
			t.Errorf("%q: %v", accent, err)
		}
	}
}

// The contrast formula is WCAG 2's: known pairs.
func TestTheme_ContrastIsWCAGs(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want float64
	}{
		{"#000000", "#ffffff", 21},
		{"#ffffff", "#ffffff", 1},
		{"#767676", "#ffffff", 4.54},
		{"#2f6feb", "#ffffff", 4.57},
		{"#1f5ad1", "#ffffff", 6.10},
	} {
		if got := contrast(parseHex(tc.a), parseHex(tc.b)); got < tc.want-0.01 || got > tc.want+0.01 {
			t.Errorf("%s on %s: %.3f, want %.2f", tc.a, tc.b, got, tc.want)
		}
	}
}
