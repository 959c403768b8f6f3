package ui

import "testing"

func TestDevice_NamesCommonBrowsers(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36":                           "Chrome on Linux",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1": "Safari on iPhone",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0":                   "Edge on Windows",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:120.0) Gecko/20100101 Firefox/120.0":                                                     "Firefox on macOS",
		"Go-http-client/1.1": "Go client",
		"":                   "Unknown device",
		"MyApp/1.0":          "MyApp/1.0",
	} {
		if got := Device(ua).String(); got != want {
			t.Errorf("Device(%q) = %q, want %q", ua, got, want)
		}
	}
}
