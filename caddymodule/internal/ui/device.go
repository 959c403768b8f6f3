package ui

import "strings"

// Device describes a user agent in a few words ("Chrome on Linux",
// "Safari on iPhone"); the raw string is long and means little to people.
func Device(userAgent string) string {
	if userAgent == "" {
		return "Unknown device"
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
		return browser + " on " + os
	case browser != "":
		return browser
	case os != "":
		return os
	}
	if len(userAgent) > 40 {
		return userAgent[:40] + "…"
	}
	return userAgent
}

func firstMatch(s string, table [][2]string, def string) string {
	for _, row := range table {
		if strings.Contains(s, row[0]) {
			return row[1]
		}
	}
	return def
}
