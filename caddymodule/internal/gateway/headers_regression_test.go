package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/flow"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
)

// Found by FuzzUpstreamHygiene: Go's cookie parser (net/http, which the
// gateway's own session lookup uses) trims whitespace around a cookie's
// name, so "socialgate_session =VALUE" signs the request in; but
// StripGatewayCookies compares the untrimmed name ("socialgate_session ")
// and forwards the cookie to the upstream, where any Go (or RFC 6265 5.2)
// parser reads it as the session cookie.
func TestStripGatewayCookies_NameWithWhitespaceBeforeEquals(t *testing.T) {
	fg := newFuzzGateway(t)
	_, value := fg.signIn(t)
	for _, header := range []string{
		session.CookieName + " =" + value + "; theme=dark",
		session.CookieName + "\t=" + value,
		"theme=dark; " + session.CookieName + "  =" + value,
		flow.BindingCookie + " =" + "binding-value-binding-value-binding-value-1",
	} {
		r := httptest.NewRequest(http.MethodGet, "/app", nil)
		r.Header.Set("Cookie", header)
		_, _, lookupErr := fg.sessions.Lookup(r)
		StripGatewayCookies(r.Header)
		for _, c := range r.Cookies() {
			if c.Name == session.CookieName || c.Name == flow.BindingCookie {
				t.Errorf("Cookie %q: the upstream receives %s (the gateway itself read it as a session: %v)",
					header, c.Name, lookupErr == nil)
			}
		}
	}
}
