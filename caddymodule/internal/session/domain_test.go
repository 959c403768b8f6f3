package session

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func TestWithDomain_TheCookieIsSharedAndDuplicatesStillFailSafe(t *testing.T) {
	w := newCookieWorld(t)
	w.m.WithDomain("example.com")
	dom := func(v string) string { return DomainCookieName + "=" + v }
	for _, tc := range []struct {
		name   string
		https  bool
		cookie []string
		want   string
	}{
		{"the __Secure- name over HTTPS", true, []string{dom(w.victim)}, "victim"},
		{"the __Host- name is no longer read", true, []string{HostCookieName + "=" + w.victim}, ""},
		{"the plain name over HTTPS: a plain-HTTP answer set it", true, []string{CookieName + "=" + w.attacker}, ""},
		{"a sibling's tossed session beside the victim's: neither", true, []string{dom(w.attacker) + "; " + dom(w.victim)}, ""},
		{"the other way round", true, []string{dom(w.victim), dom(w.attacker)}, ""},
		{"garbage tossed before the victim's", true, []string{dom("junk") + "; " + dom(w.tampered) + "; " + dom(w.victim)}, "victim"},
		{"a signed-out session's beside", true, []string{dom(w.dead) + "; " + dom(w.victim)}, "victim"},
		{"the plain name over HTTP", false, []string{CookieName + "=" + w.victim}, "victim"},
	} {
		got := w.lookup(t, tc.https, tc.cookie...)
		want := map[string]string{"victim": w.victimID, "": ""}[tc.want]
		if got != want {
			t.Errorf("%s: got session %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestWithDomain_SignInAndOutSetAndClearTheDomainCookie(t *testing.T) {
	w := newCookieWorld(t)
	w.m.WithDomain("example.com")
	ctx := context.Background()
	u, err := w.m.store.SignIn(ctx, store.SignIn{Now: time.Now(), Account: store.ExternalAccount{Provider: "p", Issuer: "https://i", Subject: "victim"}})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://auth.example.com/", nil)
	r.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	s, err := w.m.Start(ctx, rec, r, u.User, nil, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	var set *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge > 0 {
			set = c
		}
	}
	if set == nil || set.Name != DomainCookieName || set.Domain != "example.com" || !set.Secure || !set.HttpOnly ||
		set.SameSite != http.SameSiteLaxMode || set.Path != "/" {
		t.Fatalf("sign-in set %+v, want a Secure, HttpOnly, Lax %s for example.com", set, DomainCookieName)
	}
	// The cookie, sent to another host under the domain, is the session.
	if got := w.lookup(t, true, DomainCookieName+"="+set.Value); got != s.ID {
		t.Fatalf("the domain cookie was taken for %q, want %q", got, s.ID)
	}
	// Sign-out clears it for the domain, and the session is gone for every host.
	r = httptest.NewRequest(http.MethodPost, "https://auth.example.com/", nil)
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Cookie", DomainCookieName+"="+set.Value)
	rec = httptest.NewRecorder()
	if err := w.m.End(ctx, rec, r, nil); err != nil {
		t.Fatal(err)
	}
	cleared := false
	for _, c := range rec.Result().Cookies() {
		if c.Name == DomainCookieName && c.Domain == "example.com" && c.MaxAge < 0 {
			cleared = true
		}
	}
	if !cleared {
		t.Errorf("sign-out did not clear the domain cookie: %v", rec.Result().Header["Set-Cookie"])
	}
	if got := w.lookup(t, true, DomainCookieName+"="+set.Value); got != "" {
		t.Errorf("the session outlived sign-out: %q", got)
	}
}

func TestCheckDomain(t *testing.T) {
	for _, ok := range []string{"example.com", "a.b.example.co.uk", "x-y.test"} {
		if err := CheckDomain(ok); err != nil {
			t.Errorf("CheckDomain(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "com", ".example.com", "example.com.", "https://example.com", "example.com:443",
		"exa mple.com", "*.example.com", "-a.example.com", "ex_ample.com", "exämple.com"} {
		if err := CheckDomain(bad); err == nil {
			t.Errorf("CheckDomain(%q) accepted it", bad)
		}
	}
}
