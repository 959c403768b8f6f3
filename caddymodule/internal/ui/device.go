package ui

import (
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
)

// Device describes a user agent in a few words ("Chrome on Linux",
// "Safari on iPhone"); the raw string is long and means little to people.
func Device(userAgent string) i18n.Message {
	if userAgent == "" {
		return i18n.M("device.unknown")
	}
	browser := firstMatch(userAgent, [][2]string{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"},
		{"Safari/", "Safari"}, {"curl/", "curl"}, {"Go-http-client", "Go client"},
	}, "")
	os := firstMatch(userAgent, [][2]string{
		{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"}, {"Mac OS X", "macOS"},
		{"Windows", "Windows"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	}, "")
	switch {
	case browser != "" && os != "":
		return i18n.M("device.browser_on_os", "browser", browser, "os", os)
	case browser != "":
		return i18n.M("device.named", "name", browser)
	case os != "":
		return i18n.M("device.named", "name", os)
	}
	if len(userAgent) > 40 {
		userAgent = userAgent[:40] + "…"
	}
	return i18n.M("device.named", "name", userAgent)
}

func firstMatch(s string, table [][2]string, def string) string {
	for _, row := range table {
		if strings.Contains(s, row[0]) {
			return row[1]
		}
	}
	return def
}
