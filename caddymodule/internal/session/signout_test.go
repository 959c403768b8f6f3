package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// Two live sessions presented at sign-out (one tossed beside the person's):
// both are offered, each ends under its own token only, and the cookie is
// expired at every path this request's cookies can have.
func TestEndVouched_EndsEachPresentedSessionUnderItsOwnToken(t *testing.T) {
	w := newCookieWorld(t)
	ctx := context.Background()
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "http://auth.example.com/_auth/sign-out", nil)
		r.Header.Set("Cookie", CookieName+"="+w.attacker+"; "+CookieName+"="+w.victim+"; "+CookieName+"="+w.dead)
		return r
	}
	live, err := w.m.Presented(ctx, req())
	if err != nil || len(live) != 2 || live[0].ID != w.attackerID || live[1].ID != w.victimID {
		t.Fatalf("Presented = %d sessions, %v; want the attacker's and the victim's, in that order", len(live), err)
	}
	rec := httptest.NewRecorder()
	if _, ok, err := w.m.EndVouched(ctx, rec, req(), []string{"forged", w.m.CSRFToken("sess_other")}); ok || err != nil || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("EndVouched without a presented session's token: ok %v, %v, %d cookies set; want nothing done", ok, err, len(rec.Result().Cookies()))
	}
	ended, ok, err := w.m.EndVouched(ctx, httptest.NewRecorder(), req(), []string{w.m.CSRFToken(w.attackerID)})
	if !ok || err != nil || !slices.Equal(ended, []string{w.attackerID}) {
		t.Fatalf("EndVouched(the attacker's token) = %q, %v, %v", ended, ok, err)
	}
	if w.lookup(t, false, CookieName+"="+w.victim) != w.victimID {
		t.Fatal("another session's token ended the victim's session")
	}
	rec = httptest.NewRecorder()
	if ended, ok, err = w.m.EndVouched(ctx, rec, req(), []string{w.m.CSRFToken(w.victimID)}); !ok || err != nil || !slices.Equal(ended, []string{w.victimID}) {
		t.Fatalf("EndVouched(the victim's token) = %q, %v, %v", ended, ok, err)
	}
	if w.lookup(t, false, CookieName+"="+w.victim) != "" {
		t.Error("the victim's session outlived its sign-out")
	}
	expired := map[string]bool{}
	for _, c := range rec.Result().Cookies() {
		if c.Name == CookieName && c.MaxAge < 0 {
			expired[c.Path+" "+c.Domain] = true
		}
	}
	for _, want := range []string{"/ ", "/_auth ", "/_auth/ ", "/_auth/sign-out ", "/_auth/sign-out example.com", "/_auth/sign-out auth.example.com"} {
		if !expired[want] {
			t.Errorf("not expired at %q; expired %v", want, expired)
		}
	}
}

func TestCookiePaths_EveryPathThatMatchesTheRequest(t *testing.T) {
	for path, want := range map[string][]string{
		"/":                {"/"},
		"/_auth/sign-out":  {"/", "/_auth", "/_auth/", "/_auth/sign-out"},
		"/_auth/sign-out/": {"/", "/_auth", "/_auth/", "/_auth/sign-out", "/_auth/sign-out/"},
	} {
		if got := cookiePaths(path); !slices.Equal(got, want) {
			t.Errorf("cookiePaths(%q) = %q, want %q", path, got, want)
		}
	}
	for host, want := range map[string][]string{
		"auth.sso.test:8080": {"auth.sso.test", "sso.test"},
		"a.b.Example.COM.":   {"a.b.example.com", "b.example.com", "example.com"},
		"127.0.0.1:80":       nil,
		"[::1]:443":          nil,
		"localhost":          nil,
	} {
		if got := parentDomains(host); !slices.Equal(got, want) {
			t.Errorf("parentDomains(%q) = %q, want %q", host, got, want)
		}
	}
}
