package session

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/securecookie"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
)

// Session cookie and session token decoding, fuzzed:
//
//	go test ./caddymodule/internal/session -run '^$' -fuzz '^FuzzSessionCookie$' -fuzztime 60s
//	go test ./caddymodule/internal/session -run '^$' -fuzz '^FuzzHeaderSafe$' -fuzztime 60s

// fuzzIssued is a manager on an in-memory store and every credential it
// handed out: cookies (by Start, with the current and with a rotated-out
// key) and session tokens (by Issue), some of whose sessions have ended.
// The fuzz engine runs the target in several processes, each with its own
// keys and sessions, so inputs name credentials by index (pick) instead of
// carrying them.
type fuzzIssued struct {
	m      *Manager
	cached *Manager          // the same keys and store, with the session cache on
	values []string          // every credential ever issued or forged, for pick
	live   map[string]string // issued credential → its session id, while live
	forged map[string]bool   // credentials the manager never issued
}

type fuzzQuietLogger struct{}

func (fuzzQuietLogger) Errorf(string, ...any)   {}
func (fuzzQuietLogger) Warningf(string, ...any) {}
func (fuzzQuietLogger) Infof(string, ...any)    {}
func (fuzzQuietLogger) Debugf(string, ...any)   {}

func newFuzzIssued(tb testing.TB) *fuzzIssued {
	tb.Helper()
	st, err := badger.Open(badger.Options{InMemory: true, Logger: fuzzQuietLogger{}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	current, older := bytes.Repeat([]byte("n"), 32), bytes.Repeat([]byte("o"), 32)
	oldManager, err := NewManager(st, [][]byte{older}, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := NewManager(st, [][]byte{current, older}, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	iss := &fuzzIssued{m: m, live: map[string]string{}, forged: map[string]bool{}}
	ctx := context.Background()
	var users []*store.User
	for _, sub := range []string{"ada", "grace"} {
		res, err := st.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "dev", Issuer: "http://dev.example",
			Subject: sub, Email: sub + "@example.com", EmailVerified: true, Name: sub}})
		if err != nil {
			tb.Fatal(err)
		}
		users = append(users, res.User)
	}
	start := func(mgr *Manager, u *store.User) (string, *store.Session) {
		rec := httptest.NewRecorder()
		s, err := mgr.Start(ctx, rec, httptest.NewRequest(http.MethodGet, "/", nil), u, nil, Auth{})
		if err != nil {
			tb.Fatal(err)
		}
		return rec.Result().Cookies()[0].Value, s
	}
	for i, u := range users {
		v, s := start(m, u)
		iss.add(v, s.ID)
		v, s = start(oldManager, u) // before a key rotation: still valid
		iss.add(v, s.ID)
		_, token, err := m.Issue(ctx, httptest.NewRequest(http.MethodGet, "/", nil), u, "", 0)
		if err != nil {
			tb.Fatal(err)
		}
		sess, _, err := m.Lookup(bearerRequest(token))
		if err != nil {
			tb.Fatal(err)
		}
		iss.add(token, sess.ID)
		if i == 0 {
			// Signed out (cookie) and revoked (token): dead from now on.
			v, _ := start(m, u)
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			r.AddCookie(&http.Cookie{Name: CookieName, Value: v})
			if err := m.End(ctx, httptest.NewRecorder(), r, nil); err != nil {
				tb.Fatal(err)
			}
			iss.values = append(iss.values, v)
			_, dead, err := m.Issue(ctx, httptest.NewRequest(http.MethodGet, "/", nil), u, "", 0)
			if err != nil {
				tb.Fatal(err)
			}
			ds, _, _ := m.Lookup(bearerRequest(dead))
			if err := st.DeleteSession(ctx, ds.ID); err != nil {
				tb.Fatal(err)
			}
			iss.values = append(iss.values, dead)
		}
	}
	// A live session id sealed under someone else's keys, and under the
	// right keys but another cookie name: forgeries, however well formed.
	var anyID string
	for _, id := range iss.live {
		anyID = id
		break
	}
	foreign, _ := securecookie.EncodeMulti(CookieName, []byte(anyID),
		securecookie.New(bytes.Repeat([]byte("x"), 32), bytes.Repeat([]byte("y"), 32)).SetSerializer(securecookie.NopEncoder{}))
	otherName, _ := securecookie.EncodeMulti("socialgate_flow", []byte(anyID), m.codecs...)
	for _, v := range []string{foreign, otherName} {
		iss.forged[v] = true
		iss.values = append(iss.values, v)
	}
	iss.cached, err = NewManager(st, [][]byte{current, older}, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	iss.cached.RememberVerified()
	// The target means something only if what was issued works.
	for v, id := range iss.live {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: v})
		if s, _, err := m.Lookup(r); err != nil || s.ID != id {
			tb.Fatalf("an issued credential does not work as a cookie: %v", err)
		}
		if s, bearer, err := m.Lookup(bearerRequest(v)); err != nil || s.ID != id || !bearer {
			tb.Fatalf("an issued credential does not work as a bearer token: %v", err)
		}
	}
	return iss
}

func (iss *fuzzIssued) add(value, sessionID string) {
	iss.live[value] = sessionID
	iss.values = append(iss.values, value)
}

func bearerRequest(token string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}

// mutate applies edits to v, three bytes an edit: an operation, a position
// and a byte. It lets the fuzzer tamper with real credentials.
func mutate(v string, edits []byte) string {
	b := []byte(v)
	for len(edits) >= 3 {
		op, pos, c := edits[0], int(edits[1]), edits[2]
		edits = edits[3:]
		if len(b) > 0 {
			pos %= len(b) + 1
		} else {
			pos = 0
		}
		switch op % 6 {
		case 0: // flip a bit
			if pos < len(b) {
				b[pos] ^= 1 << (c % 8)
			}
		case 1: // replace a byte
			if pos < len(b) {
				b[pos] = c
			}
		case 2: // insert a byte
			b = append(b[:pos], append([]byte{c}, b[pos:]...)...)
		case 3: // delete a byte
			if pos < len(b) {
				b = append(b[:pos], b[pos+1:]...)
			}
		case 4: // truncate
			b = b[:pos]
		case 5: // duplicate the tail
			b = append(b, b[pos:]...)
		}
	}
	return string(b)
}

// sameBytes reports whether presented decodes to the bytes of issued: the
// same credential, possibly spelled differently (quotes, base64 padding
// bits). Decoding is lenient, as a browser or a proxy may re-spell it.
func sameBytes(presented, issued string) bool {
	if presented == issued {
		return true
	}
	presented = strings.Trim(strings.TrimSpace(presented), `"`)
	p, err := base64.URLEncoding.DecodeString(presented)
	if err != nil {
		return false
	}
	i, _ := base64.URLEncoding.DecodeString(issued)
	return bytes.Equal(p, i)
}

// presented lists the credential strings a request carries: every value of
// the session cookie of its scheme (the plain name over HTTP, the __Host-
// name over HTTPS), and the Authorization header's bearer token.
func presented(r *http.Request) (cookies []string, bearer string) {
	name := CookieName
	if r.TLS != nil {
		name = HostCookieName
	}
	for _, line := range r.Header.Values("Cookie") {
		for _, part := range strings.Split(line, ";") {
			n, value, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && n == name {
				cookies = append(cookies, value)
			}
		}
	}
	bearer, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return cookies, bearer
}

// liveSessions counts the different live sessions that values carry.
func (iss *fuzzIssued) liveSessions(values []string) int {
	seen := map[string]bool{}
	for v, id := range iss.live {
		for _, c := range values {
			if sameBytes(c, v) {
				seen[id] = true
			}
		}
	}
	return len(seen)
}

func FuzzSessionCookie(f *testing.F) {
	iss := newFuzzIssued(f)
	n := len(iss.values)
	// Seeds: every issued credential as it is and tampered, in each place
	// it can travel, and hostile raw values.
	for pick := 0; pick <= n; pick++ {
		for where := uint8(0); where < 14; where++ {
			f.Add(uint8(pick), []byte(nil), "", where)
		}
		f.Add(uint8(pick), []byte{0, 10, 3}, "", uint8(0))    // one flipped bit
		f.Add(uint8(pick), []byte{4, 40, 0}, "", uint8(2))    // truncated token
		f.Add(uint8(pick), []byte{2, 255, '='}, "", uint8(0)) // padding appended
		f.Add(uint8(pick), []byte{5, 0, 0}, "", uint8(0))     // doubled (oversized)
		f.Add(uint8(pick), []byte{1, 200, 'A'}, "", uint8(3))
	}
	for _, raw := range []string{
		"", "=", "deleted", "null", `""`, `"MTcw"`, "%00", "a\x00b", "\r\nX-Injected: 1",
		strings.Repeat("A", 4097), strings.Repeat("MTczMjAwMDAwMHw", 300), "MTczMjAwMDAwMHxzZXNzXzF8AAAA",
		"socialgate_session=; socialgate_session=x", "Bearer ", "bearer x", "Basic dXNlcjpwYXNz",
		"sess_0123456789abcdefghijklmn", "eyJhbGciOiJub25lIn0.e30.",
	} {
		for where := uint8(0); where < 6; where++ {
			f.Add(uint8(n), []byte(nil), raw, where)
		}
	}
	f.Fuzz(func(t *testing.T, pick uint8, edits []byte, raw string, where uint8) {
		value := raw
		if i := int(pick) % (n + 1); i < n {
			value = mutate(iss.values[i], edits)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		switch where % 7 {
		case 0:
			r.Header.Set("Cookie", CookieName+"="+value)
		case 1:
			r.Header.Set("Cookie", value) // the whole header is the attacker's
		case 2:
			r.Header.Set("Authorization", "Bearer "+value)
		case 3:
			r.Header.Set("Authorization", value)
		case 4:
			r.Header.Set("Cookie", CookieName+"="+raw)
			r.Header.Set("Authorization", "Bearer "+value)
		case 5: // cookie tossing: two cookies of the same name
			r.Header.Set("Cookie", CookieName+"="+raw+"; "+CookieName+"="+value)
		case 6: // the HTTPS name next to the plain one
			r.Header.Set("Cookie", HostCookieName+"="+value+"; "+CookieName+"="+raw)
		}
		if where/7%2 == 1 { // the same over HTTPS, where only the __Host- name counts
			r.TLS = &tls.ConnectionState{}
		}
		for _, m := range []*Manager{iss.m, iss.cached} {
			iss.check(t, m, r)
		}
	})
}

// check looks r up with m and checks what came back against what was issued.
func (iss *fuzzIssued) check(t *testing.T, m *Manager, r *http.Request) {
	t.Helper()
	s, bearer, err := m.Lookup(r)
	if err != nil {
		if !errors.Is(err, ErrNoSession) || s != nil {
			t.Fatalf("Lookup = %v, %v; want ErrNoSession and no session", s, err)
		}
		return
	}
	if s == nil {
		t.Fatal("Lookup returned no session and no error")
	}
	// A session comes back only for a live credential the manager
	// issued for exactly that session, carried where bearer says.
	cookies, token := presented(r)
	carried := cookies
	if bearer {
		carried = []string{token}
	} else if iss.liveSessions(cookies) > 1 {
		// Cookies of two live sessions: one was planted (tossing).
		t.Fatalf("Lookup took one of two live sessions' cookies: %q", r.Header.Get("Cookie"))
	}
	ok := false
	for v, id := range iss.live {
		if id != s.ID {
			continue
		}
		for _, c := range carried {
			if sameBytes(c, v) {
				ok = true
			}
		}
	}
	if !ok {
		t.Fatalf("Lookup accepted a credential it never issued for session %s (bearer %v): Cookie %q, Authorization %q",
			s.ID, bearer, r.Header.Get("Cookie"), r.Header.Get("Authorization"))
	}
	for v := range iss.forged {
		for _, c := range carried {
			if c == v {
				t.Fatalf("a forged credential was accepted: %q", c)
			}
		}
	}
}

// FuzzHeaderSafe checks the function that guards the identity headers: a
// provider's profile (name, email) can hold anything, and whatever it holds
// must come out as a single, valid header value.
func FuzzHeaderSafe(f *testing.F) {
	for _, s := range []string{
		"Ada Lovelace", "ada@example.com", "Ada\r\nX-Auth-User-Id: admin", "a\x00b", "\x7f\x1b[31m", "tab\there",
		"\u2028line\u2029sep\u0085nel", "é" + strings.Repeat("é", 300), strings.Repeat("x", 511) + "é", "\xff\xfe",
		strings.Repeat("\r\n", 600), "\u202eevil", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := headerSafe(s)
		for i := 0; i < len(got); i++ {
			if c := got[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("headerSafe(%q) = %q keeps control byte %#x", s, got, c)
			}
		}
		if !utf8.ValidString(got) {
			t.Fatalf("headerSafe(%q) = %q is not valid UTF-8", s, got)
		}
		// 512 bytes kept, each invalid byte among them spelled U+FFFD.
		if len(got) > 3*512 {
			t.Fatalf("headerSafe kept %d bytes", len(got))
		}
		// Only removals, for valid text within the bound: nothing is
		// rewritten into something else.
		if len(s) <= 512 && utf8.ValidString(s) && !isSubsequence(got, s) {
			t.Fatalf("headerSafe(%q) = %q is not s with characters removed", s, got)
		}
	})
}

func isSubsequence(sub, s string) bool {
	i := 0
	for j := 0; j < len(s) && i < len(sub); j++ {
		if s[j] == sub[i] {
			i++
		}
	}
	return i == len(sub)
}
