package caddymodule_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

// None of the gateway's cookies reaches an upstream, under any of the names
// it gives them: the session's bare (HTTP), __Host- (HTTPS) and __Secure-
// (HTTPS with cookie_domain), and the flow binding's. Found open by a
// red-team run: with cookie_domain over HTTPS the live
// __Secure-socialgate_session went upstream, as only __Host- was stripped.

// setCookieRecorder keeps every Set-Cookie a browser's transport saw, even
// those its jar refuses (a Domain the test host is not under).
type setCookieRecorder struct {
	rt      http.RoundTripper
	mu      sync.Mutex
	cookies []*http.Cookie
}

func (s *setCookieRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(r)
	if err == nil {
		s.mu.Lock()
		s.cookies = append(s.cookies, resp.Cookies()...)
		s.mu.Unlock()
	}
	return resp, err
}

// last returns the last value set for the cookie name.
func (s *setCookieRecorder) last(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := ""
	for _, c := range s.cookies {
		if c.Name == name {
			v = c.Value
		}
	}
	return v
}

// gatewayCookieNames are the names the gateway gives its cookies, written
// out here rather than taken from the code under test.
var gatewayCookieNames = []string{
	"socialgate_session", "__Host-socialgate_session", "__Secure-socialgate_session",
	"socialgate_flow", "__Host-socialgate_flow", "__Secure-socialgate_flow",
}

func TestCookies_NoGatewayCookieReachesTheUpstreamUnderAnyName(t *testing.T) {
	body := "handle /pub/* {\n\t\tsocialgate public\n\t\treverse_proxy localhost:3000\n\t}\n\thandle {\n\t\tsocialgate\n\t\treverse_proxy localhost:3000\n\t}"
	for _, tc := range []struct {
		name, global, cookie string
		tls                  bool
	}{
		{"http", "", "socialgate_session", false},
		{"https", "", "__Host-socialgate_session", true},
		{"https with cookie_domain", "cookie_domain sso.test", "__Secure-socialgate_session", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, options{TLS: tc.tls, Global: tc.global, Body: body})
			b := newBrowser(t)
			rec := &setCookieRecorder{rt: b.c.Transport}
			b.c.Transport = rec
			b.signInDev(e, "/", ada)
			live := rec.last(tc.cookie)
			if live == "" {
				t.Fatalf("the sign-in set no %s cookie", tc.cookie)
			}
			// The live session under its name, and every other name with it.
			var parts []string
			for _, n := range gatewayCookieNames {
				parts = append(parts, n+"="+live)
			}
			cookie := "theme=dark; " + strings.Join(parts, "; ") + "; lang=en"
			for _, path := range []string{"/app", "/pub/page"} {
				req, _ := http.NewRequest(http.MethodGet, e.Base+path, nil)
				req.Header.Set("Cookie", cookie)
				resp, err := (&http.Client{Transport: testTransport()}).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				up := e.Upstream.Last(t)
				if resp.StatusCode != http.StatusOK || up.Get("X-Auth-User-Id") == "" {
					t.Fatalf("%s: status %d, user %q; want the session's user through", path, resp.StatusCode, up.Get("X-Auth-User-Id"))
				}
				if got := up.Get("Cookie"); got != "theme=dark; lang=en" {
					t.Errorf("%s: the upstream received Cookie %.120q, want only the app's cookies", path, got)
				}
			}
		})
	}
}
