package confcheck

import (
	"strings"
	"testing"
)

func TestHint_SuggestsATypoOfAKnownNameElseListsThem(t *testing.T) {
	providers := []string{"dev", "github", "google", "corp"}
	tests := []struct{ name, want string }{
		{"gitub", "did you mean github?"},
		{"githbu", "did you mean github?"},
		{"Github", "did you mean github?"},
		{"googel", "did you mean google?"},
		{"dve", "did you mean dev?"},
		{"crop", "did you mean corp?"},
		{"gitlab", "want one of dev, github, google, corp"},
		{"x", "want one of dev, github, google, corp"},
		{"microsoft", "want one of dev, github, google, corp"},
	}
	for _, tt := range tests {
		if got := Hint(tt.name, providers); got != tt.want {
			t.Errorf("Hint(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := Hint("dev", nil); got != "none is configured" {
		t.Errorf("Hint with nothing known = %q", got)
	}
	// Two names equally near: no guess.
	if got := Hint("ab", []string{"aa", "bb"}); !strings.HasPrefix(got, "want one of") {
		t.Errorf("Hint with a tie = %q", got)
	}
	if got := Hint("sesion_lifetime", []string{"session_lifetime", "session_cache"}); got != "did you mean session_lifetime?" {
		t.Errorf("Hint = %q", got)
	}
}

func TestServerURL_HTTPSUnlessThePlainTextStaysOffTheInternet(t *testing.T) {
	good := []string{"https://idp.example.com", "https://idp.example.com/realms/x", "http://127.0.0.1:8080", "http://localhost:9999/x",
		"http://[::1]:80", "http://dev.localhost", "http://10.0.0.5/hook", "http://192.168.1.2", "http://172.20.0.3:8080",
		"http://[fd00::1]/", "http://keycloak:8080/realms/corp", "http://169.254.1.1"}
	for _, u := range good {
		if err := ServerURL(u); err != nil {
			t.Errorf("ServerURL(%q): %v", u, err)
		}
	}
	bad := map[string]string{
		"http://accounts.google.com":      "must use https",
		"http://8.8.8.8/hook":             "must use https",
		"http://localhost.evil.com/":      "must use https",
		"http://127.0.0.1.nip.io/":        "must use https",
		"idp.example.com":                 "not an absolute http(s) URL",
		"ftp://idp.example.com":           "not an absolute http(s) URL",
		"https://user:pw@idp.example.com": "not an absolute http(s) URL",
		"https://idp.example.com/#x":      "not an absolute http(s) URL",
		"https:///path":                   "not an absolute http(s) URL",
	}
	for u, want := range bad {
		if err := ServerURL(u); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ServerURL(%q) = %v, want %q", u, err, want)
		}
	}
}

func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "LOCALHOST.": true, "a.localhost": true, "127.0.0.1": true, "127.9.9.9": true,
		"::1": true, "[::1]": true, "::ffff:127.0.0.1": true, "": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "example.com": false,
		"localhost.example.com": false} {
		if got := Loopback(host); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestHint_TwoEditsOnlyForLongNames(t *testing.T) {
	if got := Hint("sesion_lifetme", []string{"session_lifetime"}); got != "did you mean session_lifetime?" {
		t.Errorf("Hint = %q", got)
	}
	if got := Hint("gtihb", []string{"github"}); got != "want one of github" {
		t.Errorf("Hint = %q", got)
	}
}
