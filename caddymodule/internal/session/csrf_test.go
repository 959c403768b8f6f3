package session

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"
)

// A form's tokens are checked as a set: the session's own token counts
// wherever it stands among others, by the current key or an older one;
// nothing else counts.
func TestCheckCSRFAny(t *testing.T) {
	older := bytes.Repeat([]byte("o"), 32)
	_, m := signOutManager(t, older)
	oldOnly := mustManager(t, older) // issued its tokens before the rotation
	const id = "sess_ada"
	others := make([]string, 500)
	for i := range others {
		others[i] = m.CSRFToken(fmt.Sprint("sess_other_", i))
	}
	cases := []struct {
		name   string
		id     string
		tokens []string
		want   bool
	}{
		{"its token alone", id, []string{m.CSRFToken(id)}, true},
		{"its token after 500 others", id, append(slices.Clone(others), m.CSRFToken(id)), true},
		{"its token first", id, append([]string{m.CSRFToken(id)}, others...), true},
		{"its token by the older key", id, append(slices.Clone(others), oldOnly.CSRFToken(id)), true},
		{"only other sessions' tokens", id, others, false},
		{"no token", id, nil, false},
		{"empty and junk tokens", id, []string{"", "x", "%%%", m.CSRFToken(id)[:20], m.CSRFToken(id) + "A"}, false},
		{"another manager's key", id, []string{mustManager(t, bytes.Repeat([]byte("z"), 32)).CSRFToken(id)}, false},
		{"no session id", "", []string{m.CSRFToken("")}, false},
	}
	for _, c := range cases {
		if got := m.CheckCSRFAny(c.id, c.tokens); got != c.want {
			t.Errorf("%s: CheckCSRFAny = %v, want %v", c.name, got, c.want)
		}
		// The one-token check agrees on every token.
		each := slices.ContainsFunc(c.tokens, func(tok string) bool { return m.CheckCSRF(c.id, tok) })
		if each != c.want {
			t.Errorf("%s: CheckCSRF on each = %v, want %v", c.name, each, c.want)
		}
	}
}

func mustManager(t *testing.T, key []byte) *Manager {
	t.Helper()
	m, err := NewManager(nil, [][]byte{key}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A signed-in sign-out form as large as the gateway's 64 KiB body allows,
// none of its tokens the session's: what anyone with the session's cookie
// (or a page that makes the browser post) costs the gateway. "each" is the
// check one token at a time it replaced.
func BenchmarkCheckCSRFAny(b *testing.B) {
	_, m := signOutManager(b, bytes.Repeat([]byte("o"), 32))
	tokens := make([]string, (64<<10)/len("csrf_token=&"+m.CSRFToken("x")))
	for i := range tokens {
		tokens[i] = m.CSRFToken(fmt.Sprint("other_", i))
	}
	b.Run("any", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if m.CheckCSRFAny("sess_ada", tokens) {
				b.Fatal("a form without the session's token was vouched for")
			}
		}
	})
	b.Run("each", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if slices.ContainsFunc(tokens, func(t string) bool { return m.CheckCSRF("sess_ada", t) }) {
				b.Fatal("a form without the session's token was vouched for")
			}
		}
	})
}
