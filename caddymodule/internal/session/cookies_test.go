package session

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/store/cache"
)

// cookieWorld is a manager with three people's cookies: victim and
// attacker signed in, quitter signed out.
type cookieWorld struct {
	m                        *Manager
	victim, attacker, dead   string // cookie values
	victimID, attackerID     string // their session ids
	tampered, foreign, other string // forgeries
}

func newCookieWorld(t *testing.T) *cookieWorld {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true, Logger: fuzzQuietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := NewManager(cache.New(st, nil).Store(time.Minute), [][]byte{bytes.Repeat([]byte("k"), 32)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	m.RememberVerified()
	ctx := context.Background()
	w := &cookieWorld{m: m}
	start := func(sub string) (string, string) {
		s, c := started(t, st, m, sub)
		return c.Value, s.ID
	}
	w.victim, w.victimID = start("victim")
	w.attacker, w.attackerID = start("attacker")
	w.dead, _ = start("quitter")
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Cookie", CookieName+"="+w.dead)
	if err := m.End(ctx, httptest.NewRecorder(), r, nil); err != nil {
		t.Fatal(err)
	}
	b := []byte(w.victim)
	b[len(b)/2] ^= 1
	w.tampered = string(b)
	w.foreign, _ = securecookie.EncodeMulti(CookieName, []byte(w.victimID), securecookie.New(bytes.Repeat([]byte("x"), 32), nil))
	w.other, _ = m.Seal("socialgate_flow", []byte(w.victimID))
	return w
}

// lookup returns the session id a request with this Cookie header gets.
func (w *cookieWorld) lookup(t *testing.T, https bool, cookie ...string) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if https {
		r.TLS = &tls.ConnectionState{}
	}
	r.Header["Cookie"] = cookie
	s, _, err := w.m.Lookup(r)
	if err != nil {
		return ""
	}
	return s.ID
}

func TestLookup_OnlyTheSchemesNameCountsAndDuplicatesFailSafe(t *testing.T) {
	w := newCookieWorld(t)
	plain := func(v string) string { return CookieName + "=" + v }
	host := func(v string) string { return HostCookieName + "=" + v }
	for _, tc := range []struct {
		name   string
		https  bool
		cookie []string
		want   string // "victim", "" for no session
	}{
		{"the plain name over HTTP", false, []string{plain(w.victim)}, "victim"},
		{"the __Host- name over HTTPS", true, []string{"theme=dark; " + host(w.victim) + "; a=1"}, "victim"},
		{"the __Host- name over HTTP (no browser sends it there)", false, []string{host(w.victim)}, ""},
		{"the plain name over HTTPS: a sibling subdomain tossed it", true, []string{plain(w.attacker)}, ""},
		{"a tossed plain cookie before the victim's over HTTPS", true, []string{plain(w.attacker) + "; " + host(w.victim)}, "victim"},
		{"a tossed plain cookie after the victim's over HTTPS", true, []string{host(w.victim) + "; " + plain(w.attacker)}, "victim"},
		{"garbage before the victim's", false, []string{plain("junk") + "; " + plain(w.victim)}, "victim"},
		{"garbage after the victim's", false, []string{plain(w.victim) + "; " + plain("junk")}, "victim"},
		{"an empty one beside", false, []string{plain("") + "; " + plain(w.victim)}, "victim"},
		{"a tampered copy beside", true, []string{host(w.tampered) + "; " + host(w.victim)}, "victim"},
		{"one sealed with other keys beside", false, []string{plain(w.foreign) + "; " + plain(w.victim)}, "victim"},
		{"one sealed for another cookie beside", false, []string{plain(w.other) + "; " + plain(w.victim)}, "victim"},
		{"a signed-out session's beside", false, []string{plain(w.dead), plain(w.victim)}, "victim"},
		{"a signed-out session's after", true, []string{host(w.victim) + "; " + host(w.dead)}, "victim"},
		{"200 garbage values, then the victim's", false, []string{strings.Repeat(plain("junk")+"; ", 40) + plain(w.victim)}, "victim"},
		{"500 planted garbage values, then the victim's", false, []string{strings.Repeat(plain("junk")+"; ", 500) + plain(w.victim)}, "victim"},
		{"300 tampered copies, then the victim's", false, []string{strings.Repeat(plain(w.tampered)+"; ", 300) + plain(w.victim)}, "victim"},
		{"300 sealed with other keys, each its own header, then the victim's", false,
			append(slices.Repeat([]string{plain(w.foreign)}, 300), plain(w.victim)), "victim"},
		{"the same cookie twice", false, []string{plain(w.victim), plain(w.victim)}, "victim"},
		{"two live sessions: ambiguous, neither", false, []string{plain(w.attacker) + "; " + plain(w.victim)}, ""},
		{"two live sessions the other way round", true, []string{host(w.victim) + "; " + host(w.attacker)}, ""},
		{"only a signed-out session's", false, []string{plain(w.dead)}, ""},
		{"only garbage", true, []string{host("junk") + "; " + host(w.tampered)}, ""},
		{"a quoted value", false, []string{plain(`"` + w.victim + `"`)}, ""},
		{"another spelling of the name", false, []string{"SOCIALGATE_SESSION=" + w.victim + "; x" + plain(w.victim)}, ""},
	} {
		got := w.lookup(t, tc.https, tc.cookie...)
		want := map[string]string{"victim": w.victimID, "": ""}[tc.want]
		if got != want {
			who := map[string]string{w.victimID: "the victim", w.attackerID: "the attacker", "": "no one"}[got]
			t.Errorf("%s: the request was taken for %s, want %q", tc.name, who, tc.want)
		}
	}
}

func TestStartAndEnd_EndEverySessionTheCookiesCarryAndClearBothNames(t *testing.T) {
	w := newCookieWorld(t)
	ctx := context.Background()
	// Sign-out over HTTPS with the victim's cookie and a tossed duplicate of
	// the attacker's (sent by a non-browser client): both sessions end.
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Cookie", HostCookieName+"="+w.victim+"; "+HostCookieName+"="+w.attacker)
	rec := httptest.NewRecorder()
	if err := w.m.End(ctx, rec, r, nil); err != nil {
		t.Fatal(err)
	}
	var cleared []string
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 && c.Path == "/" && c.Secure {
			cleared = append(cleared, c.Name)
		}
	}
	if !slices.Contains(cleared, HostCookieName) || !slices.Contains(cleared, CookieName) {
		t.Errorf("sign-out over HTTPS cleared %q, want both names", cleared)
	}
	for who, v := range map[string]string{"victim": w.victim, "attacker": w.attacker} {
		if w.lookup(t, true, HostCookieName+"="+v) != "" {
			t.Errorf("the %s's session outlived a sign-out that carried its cookie", who)
		}
	}
	// A sign-in over HTTPS sets the __Host- cookie and clears the plain one.
	u, err := w.m.store.SignIn(ctx, store.SignIn{Now: time.Now(), Account: store.ExternalAccount{Provider: "p", Issuer: "https://i", Subject: "victim"}})
	if err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.TLS = &tls.ConnectionState{}
	if _, err := w.m.Start(ctx, rec, r, u.User, nil, Auth{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range rec.Result().Cookies() {
		switch {
		case c.Name == HostCookieName && (c.MaxAge <= 0 || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly):
			t.Errorf("the session cookie over HTTPS is %s: want Secure, HttpOnly, Path=/, no Domain", c)
		case c.Name == CookieName && c.MaxAge >= 0:
			t.Errorf("a sign-in over HTTPS set the plain cookie: %s", c)
		}
	}
}

// countingStore counts session reads.
type countingStore struct {
	store.Store
	reads atomic.Int64
}

func (c *countingStore) Session(ctx context.Context, id string) (*store.Session, error) {
	c.reads.Add(1)
	return c.Store.Session(ctx, id)
}

// TestLookup_PlantedCookiesOfEndedSessionsHideNoOne: found by the second
// red team. Four planted cookies of ended sessions, before the victim's,
// used up the four session cookies a request is resolved for, so the
// victim's was never looked at: locked out for as long as the planted
// cookies lived. Ended sessions are now remembered and skipped, each costs
// one store read, and a request is never taken for a live session while
// cookies remain that it did not resolve.
func TestLookup_PlantedCookiesOfEndedSessionsHideNoOne(t *testing.T) {
	for _, cached := range []bool{true, false} {
		t.Run(map[bool]string{true: "session cache on", false: "session cache off"}[cached], func(t *testing.T) {
			st, err := badger.Open(badger.Options{InMemory: true, Logger: fuzzQuietLogger{}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			cs := &countingStore{Store: st}
			m, err := NewManager(cs, [][]byte{bytes.Repeat([]byte("k"), 32)}, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if cached { // sessions read through the store's cache
				m.store = cache.New(cs, nil).Store(time.Minute)
			}
			ctx := context.Background()
			cookie := func(sub string) (string, string) {
				s, c := started(t, st, m, sub)
				return CookieName + "=" + c.Value, s.ID
			}
			victim, victimID := cookie("victim")
			attacker, attackerID := cookie("attacker")
			// Sessions that ended where this gateway did not see it (another
			// gateway, an expiry): their cookies still verify.
			ghosts := func(n int) string {
				var out []string
				for i := range n {
					c, id := cookie(fmt.Sprintf("ghost-%d", i))
					if err := st.DeleteSession(ctx, id); err != nil {
						t.Fatal(err)
					}
					out = append(out, c)
				}
				return strings.Join(out, "; ")
			}
			lookup := func(header string) (string, int64) {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header.Set("Cookie", header)
				before := cs.reads.Load()
				s, _, err := m.Lookup(r)
				if err != nil {
					return "", cs.reads.Load() - before
				}
				return s.ID, cs.reads.Load() - before
			}

			// Nine ghosts before the victim's cookie: at most
			// maxSessionCookies store reads a request, the victim back
			// within three requests, and the ghosts free from then on.
			header := ghosts(9) + "; " + victim
			var got string
			for i := 0; got != victimID; i++ {
				if i == 3 {
					t.Fatalf("nine planted cookies of ended sessions still hide the victim's after %d requests", i)
				}
				var reads int64
				got, reads = lookup(header)
				if reads > maxSessionCookies {
					t.Errorf("request %d cost %d session reads, want at most %d", i+1, reads, maxSessionCookies)
				}
			}
			if got, reads := lookup(header); got != victimID || (cached && reads != 0) || reads > 1 {
				t.Errorf("once known, the ghosts: taken for %q with %d store reads; want the victim, no read for them", got, reads)
			}

			// Ghosts, then a planted live cookie, then the victim's: never
			// the attacker, whatever the ghosts hide.
			header = ghosts(3) + "; " + attacker + "; " + victim
			for i := range 3 {
				if got, _ := lookup(header); got != "" {
					t.Errorf("request %d with ghosts, the attacker's and the victim's cookie: taken for %s, want no one",
						i+1, map[string]string{victimID: "the victim", attackerID: "the attacker"}[got])
				}
			}
		})
	}
}
