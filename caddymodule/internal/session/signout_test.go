package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
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
	live, all, err := w.m.Presented(ctx, req())
	if err != nil || !all || len(live) != 2 || live[0].ID != w.attackerID || live[1].ID != w.victimID {
		t.Fatalf("Presented = %d sessions, %v; want the attacker's and the victim's, in that order", len(live), err)
	}
	rec := httptest.NewRecorder()
	if _, _, ok, err := w.m.EndVouched(ctx, rec, req(), []string{"forged", w.m.CSRFToken("sess_other")}); ok || err != nil || len(rec.Result().Cookies()) != 0 {
		t.Fatalf("EndVouched without a presented session's token: ok %v, %v, %d cookies set; want nothing done", ok, err, len(rec.Result().Cookies()))
	}
	ended, _, ok, err := w.m.EndVouched(ctx, httptest.NewRecorder(), req(), []string{w.m.CSRFToken(w.attackerID)})
	if !ok || err != nil || !slices.Equal(ended, []string{w.attackerID}) {
		t.Fatalf("EndVouched(the attacker's token) = %q, %v, %v", ended, ok, err)
	}
	if w.lookup(t, false, CookieName+"="+w.victim) != w.victimID {
		t.Fatal("another session's token ended the victim's session")
	}
	rec = httptest.NewRecorder()
	if ended, _, ok, err = w.m.EndVouched(ctx, rec, req(), []string{w.m.CSRFToken(w.victimID)}); !ok || err != nil || !slices.Equal(ended, []string{w.victimID}) {
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
		// A client's Host of 200 labels: the 8 shortest domains, not 200
		// Set-Cookie headers per name and path.
		strings.Repeat("x.", 192) + "a.b.c.d.e.f.example.com": {
			"x.a.b.c.d.e.f.example.com", "a.b.c.d.e.f.example.com", "b.c.d.e.f.example.com",
			"c.d.e.f.example.com", "d.e.f.example.com", "e.f.example.com", "f.example.com", "example.com",
		},
	} {
		if got := parentDomains(host); !slices.Equal(got, want) {
			t.Errorf("parentDomains(%q) = %q, want %q", host, got, want)
		}
	}
}

// Sessions tossed for the sign-out path come before the person's: the
// sign-out reads past the access path's four (maxSessionCookies), up to
// maxSignOutCookies, and says when the cookies name more than that.
func TestPresented_ReadsPastTheAccessCapAndSaysWhenItStops(t *testing.T) {
	st, m := signOutManager(t)
	ctx := context.Background()
	for _, n := range []int{maxSessionCookies, maxSessionCookies + 1, maxSignOutCookies - 1, maxSignOutCookies} {
		victim, vc := started(t, st, m, fmt.Sprint("victim-", n))
		var tossed []string
		for i := range n {
			_, c := started(t, st, m, fmt.Sprint("tossed-", n, "-", i))
			tossed = append(tossed, CookieName+"="+c.Value)
		}
		r := httptest.NewRequest(http.MethodGet, "http://auth.example.com/_auth/sign-out", nil)
		r.Header.Set("Cookie", presentedCookie(tossed[:n], vc.Value))
		live, all, err := m.Presented(ctx, r)
		readsVictim := slices.ContainsFunc(live, func(s *store.Session) bool { return s.ID == victim.ID })
		if want := n+1 <= maxSignOutCookies; err != nil || all != want || readsVictim != want || len(live) != min(n+1, maxSignOutCookies) {
			t.Errorf("%d tossed and the victim's: %d sessions read, all %v, the victim's %v, %v; want all %v", n, len(live), all, readsVictim, err, want)
		}
		tokens := []string{m.CSRFToken(victim.ID)}
		for _, s := range live {
			tokens = append(tokens, m.CSRFToken(s.ID))
		}
		r = httptest.NewRequest(http.MethodPost, "http://auth.example.com/_auth/sign-out", nil)
		r.Header = http.Header{"Cookie": {presentedCookie(tossed[:n], vc.Value)}}
		ended, all, ok, err := m.EndVouched(ctx, httptest.NewRecorder(), r, tokens)
		if want := n+1 <= maxSignOutCookies; !ok || err != nil || all != want || slices.Contains(ended, victim.ID) != want {
			t.Errorf("EndVouched with %d tossed and the victim's: %d ended, all %v, ok %v, %v; want all and the victim's ended %v", n, len(ended), all, ok, err, want)
		}
	}
}

// presentedCookie is a Cookie header with the tossed cookies before the
// victim's.
func presentedCookie(tossed []string, victim string) string {
	return strings.Join(append(slices.Clone(tossed), CookieName+"="+victim), "; ")
}

// A sign-in ends every session the request's cookies carry, past the
// access path's four too: a victim signing in again with sessions tossed
// before theirs leaves no session of theirs behind.
func TestStart_EndsThePresentedSessionsPastTheAccessCap(t *testing.T) {
	st, m := signOutManager(t)
	ctx := context.Background()
	victim, vc := started(t, st, m, "victim")
	var tossed []string
	for i := range maxSessionCookies + 1 {
		_, c := started(t, st, m, fmt.Sprint("tossed-", i))
		tossed = append(tossed, CookieName+"="+c.Value)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", presentedCookie(tossed, vc.Value))
	u, err := st.User(ctx, victim.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(ctx, httptest.NewRecorder(), r, u, nil, Auth{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Session(ctx, victim.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the victim's earlier session after a sign-in behind %d tossed ones: %v, want it ended", len(tossed), err)
	}
}

// A sign-out form naming none of its cookies' sessions, with as many
// tokens as the gateway's 64 KiB body holds, against the most cookies a
// sign-out reads: what a cross-site form, or anyone, costs the gateway.
func BenchmarkEndVouchedRefused(b *testing.B) {
	_, m := signOutManager(b, bytes.Repeat([]byte("o"), 32))
	var cookies []string
	for i := range maxSignOutCookies {
		v, err := securecookie.EncodeMulti(CookieName, []byte(fmt.Sprint("sess_", i)), m.codecs...)
		if err != nil {
			b.Fatal(err)
		}
		cookies = append(cookies, CookieName+"="+v)
	}
	tokens := make([]string, (64<<10)/len("csrf_token=&"+m.CSRFToken("x")))
	for i := range tokens {
		tokens[i] = m.CSRFToken(fmt.Sprint("other_", i))
	}
	r := httptest.NewRequest(http.MethodPost, "http://auth.example.com/_auth/sign-out", nil)
	r.Header.Set("Cookie", strings.Join(cookies, "; "))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok, _ := m.EndVouched(context.Background(), httptest.NewRecorder(), r, tokens); ok {
			b.Fatal("a form without the cookies' tokens ended a session")
		}
	}
}

// signOutManager is a Manager on an in-memory store, with a current key
// and any older keys.
func signOutManager(tb testing.TB, older ...[]byte) (*badger.Store, *Manager) {
	tb.Helper()
	st, err := badger.Open(badger.Options{InMemory: true, Logger: fuzzQuietLogger{}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	m, err := NewManager(st, append([][]byte{bytes.Repeat([]byte("k"), 32)}, older...), time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return st, m
}
