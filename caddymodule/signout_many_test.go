package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Found open by a second red-team run: with four live sessions tossed for
// the sign-out path (sent before the person's), the sign-out page listed
// those four only (the access path's cap of four session cookies), and its
// POST said "signed out" while the victim's session lived on. The sign-out
// now reads up to 64 session cookies, and past that never says "signed
// out".
func TestSignOut_TossedSessionsPastTheAccessCapHideNoSession(t *testing.T) {
	e := newEnv(t, options{Global: "\t\trate_limit start 0 1m\n\t\trate_limit callback 0 1m"}) // many sign-ins
	signIn := func(p url.Values) string {
		b := newBrowser(t)
		rec := &setCookieRecorder{rt: b.c.Transport}
		b.c.Transport = rec
		b.signInDev(e, "/", p)
		return rec.last(plainSession)
	}
	signOut := e.Base + "/_auth/sign-out"
	for _, n := range []int{4, 5, 64} {
		t.Run(fmt.Sprint(n, " tossed"), func(t *testing.T) {
			var cookies []string
			for i := range n {
				cookies = append(cookies, plainSession+"="+signIn(person(fmt.Sprint("Mallory", i), fmt.Sprintf("m%d-%d@evil.example", n, i), true)))
			}
			v := signIn(ada)
			if v == "" || whoIs(t, e, plainSession+"="+v) == "" {
				t.Fatal("setup: the victim's session is not live")
			}
			all := strings.Join(append(cookies, plainSession+"="+v), "; ")
			resp, page := rawAt(t, http.MethodGet, signOut, all, nil)
			tokens := csrfTokens(page)
			readable := n+1 <= 64
			unread := strings.Contains(page, "more session cookies than can be read")
			if resp.StatusCode != http.StatusOK || strings.Contains(page, "You are signed out") || unread == readable ||
				len(tokens) != min(n+1, 64) {
				t.Fatalf("the sign-out page: status %d, %d tokens, says it could not read them all %v", resp.StatusCode, len(tokens), unread)
			}
			resp, page = rawAt(t, http.MethodPost, signOut, all, url.Values{"csrf_token": tokens})
			if readable {
				if resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("signing out: status %d", resp.StatusCode)
				}
				if whoIs(t, e, plainSession+"="+v) != "" {
					t.Error("the victim's session outlived its sign-out")
				}
			} else if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "more session cookies than can be read") {
				t.Errorf("signing out past the bound: status %d, %q; want 409 saying some sessions could not be read", resp.StatusCode, page)
			}
			expired := false
			for _, c := range resp.Cookies() {
				expired = expired || c.Name == plainSession && c.Path == "/_auth/sign-out" && c.MaxAge < 0
			}
			if !expired {
				t.Error("the sign-out did not expire the cookies tossed for its path")
			}
			for i, c := range cookies[:min(n, 63)] {
				if whoIs(t, e, c) != "" {
					t.Errorf("tossed session %d outlived the sign-out", i)
				}
			}
		})
	}
}
