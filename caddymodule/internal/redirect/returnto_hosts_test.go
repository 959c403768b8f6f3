package redirect_test

import (
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
)

func newHostsReturnTo(t *testing.T, hosts ...string) *redirect.ReturnTo {
	t.Helper()
	v, err := redirect.NewReturnTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.AllowHosts(hosts); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestReturnTo_AllowHosts_KeepsURLsOnTheHosts(t *testing.T) {
	v := newHostsReturnTo(t, "app1.example.com", "*.apps.example.com", "http://app.localhost:8080")
	for _, raw := range []string{
		"https://app1.example.com/", "https://app1.example.com", "https://APP1.example.com/a/b?c=d&e=f",
		"https://app1.example.com:443/x", "https://a.apps.example.com/x", "https://a.b.apps.example.com/",
		"http://app.localhost:8080/back?x=1",
		"/same/origin", // same-origin paths stay allowed
	} {
		if got := v.Sanitize(raw); got != raw {
			t.Errorf("Sanitize(%q) = %q, want it kept", raw, got)
		}
	}
}

func TestReturnTo_AllowHosts_RefusesEverythingElse(t *testing.T) {
	v := newHostsReturnTo(t, "app1.example.com", "*.apps.example.com", "http://app.localhost:8080")
	for _, raw := range []string{
		"http://app1.example.com/",             // https only unless written
		"https://app1.example.com:8443/",       // another port
		"https://apps.example.com/",            // the wildcard's domain itself
		"https://evilapps.example.com/",        // a suffix that is no subdomain
		"https://app1.example.com.evil.com/",   // a suffix of another domain
		"https://evil.com/.apps.example.com",   // the domain in the path
		"https://app1.example.com@evil.com/",   // userinfo
		"https://evil.com#@app1.example.com/",  // fragment trick
		"https://evil.com\\@app1.example.com/", // backslash
		"https://a.apps.example.com/#x",        // fragments are refused on absolute URLs
		"https://app1.example.com/\r\nX: y",    // header injection
		"https://app1.example.com%2eevil.com/", // encoded dot
		"https://xn--app1-.example.com/",       // not on the list
		"http://app.localhost/",                // without the port
		"https://app.localhost:8080/",          // https where http was written
		"javascript://app1.example.com/%0aalert(1)",
		"//app1.example.com/",     // no scheme
		"https:app1.example.com/", // no authority
		"https://a.apps.example.com:" + strings.Repeat("9", 6) + "/",
	} {
		if got := v.Sanitize(raw); got != "/" {
			t.Errorf("Sanitize(%q) = %q, want /", raw, got)
		}
	}
}

func TestReturnTo_AllowHosts_RefusesInvalidPatterns(t *testing.T) {
	for _, raw := range []string{
		"", "*", "*.", "*.com", "app.example.com/path", "app.example.com?x", "ftp://app.example.com",
		"user@app.example.com", "app.*.example.com", "**.example.com", "*.*.example.com", ".example.com",
		"app..example.com", "https://app.example.com#x", "app.example.com:0", "app.example.com:99999",
		"app example.com", "app.exämple.com",
	} {
		v, _ := redirect.NewReturnTo(nil)
		if err := v.AllowHosts([]string{raw}); err == nil {
			t.Errorf("AllowHosts(%q) accepted it", raw)
		} else if !strings.Contains(err.Error(), "return-to host") {
			t.Errorf("AllowHosts(%q) = %v, which does not name the option", raw, err)
		}
	}
}
