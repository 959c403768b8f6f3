package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/flow"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
)

// Found by FuzzUpstreamHygiene: stripGatewayCookies compares the untrimmed
// cookie name, so "socialgate_session =VALUE" (whitespace before "=") is
// forwarded, and Go's net/http parser, like any that trims names as RFC 6265
// 5.2 does, reads it upstream as the session cookie. Sent after a normal one
// ("socialgate_session=V; socialgate_session =V") the request is signed in
// by the first and the upstream receives a live session cookie in the second.
// Only the cookie's owner can send such a header (browsers write "name=value"),
// so this breaks the hygiene guarantee rather than opening an attack.
func TestStripGatewayCookies_NameWithWhitespaceBeforeEquals(t *testing.T) {
	fg := newFuzzGateway(t)
	_, value := fg.signIn(t)
	for _, header := range []string{
		session.CookieName + " =" + value + "; theme=dark",
		session.CookieName + "\t=" + value,
		"theme=dark; " + session.CookieName + "  =" + value,
		flow.BindingCookie + " =" + "binding-value-binding-value-binding-value-1",
		session.CookieName + "=" + value + "; " + session.CookieName + " =" + value,
		// The HTTPS names of both cookies.
		session.HostCookieName + "=" + value + "; theme=dark",
		"theme=dark; " + session.HostPrefix + flow.BindingCookie + "=binding",
	} {
		r := httptest.NewRequest(http.MethodGet, "/app", nil)
		r.Header.Set("Cookie", header)
		_, _, lookupErr := fg.sessions.Lookup(r)
		stripGatewayCookies(r.Header)
		for _, c := range r.Cookies() {
			if n := strings.TrimPrefix(c.Name, session.HostPrefix); n == session.CookieName || n == flow.BindingCookie {
				t.Errorf("Cookie %q: the upstream receives %s (the gateway itself read it as a session: %v)",
					header, c.Name, lookupErr == nil)
			}
		}
	}
}

// Found by a red-team run: with a cookie domain over HTTPS the session
// cookie is __Secure-socialgate_session, and only the __Host- name was
// stripped, so the live session went upstream. Every name of every
// gateway cookie (session.Names) is stripped; the app's cookies stay.
func TestStripGatewayCookies_EveryNameOfEveryCookie(t *testing.T) {
	for _, name := range []string{
		"socialgate_session", "__Host-socialgate_session", "__Secure-socialgate_session",
		"socialgate_flow", "__Host-socialgate_flow", "__Secure-socialgate_flow",
	} {
		h := http.Header{"Cookie": {"a=1; " + name + "=v; b=2", name + " =v"}}
		stripGatewayCookies(h)
		if got := h.Get("Cookie"); got != "a=1; b=2" {
			t.Errorf("%s: the upstream receives Cookie %q, want \"a=1; b=2\"", name, got)
		}
	}
	// Names that merely contain a gateway cookie's name are the app's.
	h := http.Header{"Cookie": {"my_socialgate_session=1; __Host-socialgate_sessions=2"}}
	if stripGatewayCookies(h); h.Get("Cookie") != "my_socialgate_session=1; __Host-socialgate_sessions=2" {
		t.Errorf("the app's own cookies were stripped: %q", h.Get("Cookie"))
	}
}
