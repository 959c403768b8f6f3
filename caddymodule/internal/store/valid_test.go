package store

import "testing"

// CleanEmail: an address is trimmed of surrounding whitespace, then must be
// a plain addr-spec; anything else is no address.
func TestCleanEmail_TrimsThenKeepsOnlyAPlainAddrSpec(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"victim@example.org", "victim@example.org"},
		{"Victim@Example.org", "Victim@Example.org"}, // case is NormalizeEmail's
		{" victim@example.org", "victim@example.org"},
		{"victim@example.org ", "victim@example.org"},
		{"\t victim@example.org\r\n", "victim@example.org"},
		{"victim@example.org\u00a0", "victim@example.org"}, // NBSP is whitespace
		{"\u3000victim@example.org", "victim@example.org"},
		{"a+tag@example.org", "a+tag@example.org"},
		{"o/z@example.com", "o/z@example.com"},
		{"jürgen@example.de", "jürgen@example.de"}, // RFC 6532, NFC
		// The domain in its one ASCII form (UTS #46): Unicode, xn--, U+3002.
		{"jürgen@exämple.de", "jürgen@xn--exmple-cua.de"},
		{"jürgen@EXÄMPLE.de", "jürgen@xn--exmple-cua.de"},
		{"jürgen@xn--exmple-cua.de", "jürgen@xn--exmple-cua.de"},
		{"victim@example\u3002org", "victim@example.org"},
		{"victim@bücher.org", "victim@xn--bcher-kva.org"},
	} {
		if got, ok := CleanEmail(tc.in); !ok || got != tc.want {
			t.Errorf("CleanEmail(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	for _, in := range []string{
		"", " ", "victim", "@example.org", "victim@", "a@b@example.org",
		"victim @example.org", "victim@ example.org", "vic\ttim@example.org",
		"victim@example.org\u200b", "\u200bvictim@example.org", "victim@example.org\u202e", "\ufeffvictim@example.org",
		"victim@example.org\x00", "victim@example.org\x01", "victim@example.org\x7f", "\xffvictim@example.org",
		"Victim <victim@example.org>", "<victim@example.org>", `"vic tim"@example.org`, `"victim"@example.org`,
		"victim@example.org,eve@example.org", "victim@example.org;", "victim(c)@example.org", "victim@[127.0.0.1]",
		"\uff56ictim@example.org", "victim@example.or\u1d4d", "victim@e\u212axample.org", // full-width v, modifier g, Kelvin K
		".victim@example.org", "vic..tim@example.org", "victim@example.org.",
		"victim@example\u3002org\u3002", "victim@xn--zz.org", "victim@ex_ample.org", "victim@-example.org",
		"victim@example\uff0eorg", "victim@example\uff61org", // full-width and half-width dots are not NFKC
		"a@" + string(make([]byte, 330)),
	} {
		if got, ok := CleanEmail(in); ok || got != "" {
			t.Errorf("CleanEmail(%q) = %q, %v; want no address", in, got, ok)
		}
	}
}

// ValidEmail: an address's domain is in its ASCII form, but for the case; a
// Unicode domain (stored before CleanEmail put it in that form) is not.
func TestValidEmail_TheDomainIsASCII(t *testing.T) {
	for in, want := range map[string]bool{
		"victim@example.org": true, "Victim@Example.ORG": true, "victim@xn--bcher-kva.org": true,
		"vicıtim@example.org": true, // the local part is as it is: a dotless ı is another address
		"victim@bücher.org":   false, "victim@example。org": false, "victim@xn--zz.org": false,
	} {
		if got := ValidEmail(in); got != want {
			t.Errorf("ValidEmail(%q) = %v, want %v", in, got, want)
		}
	}
}

// A session's address is checked once (CheckEmail, as the session cache
// keeps it) and read on every request without a second check; a session
// stored before CleanEmail with an address that is not plain carries none,
// checked or not, and an address changed after the check is checked again.
func TestSessionVerifiedEmail_CheckedOnceAndNeverTrustsANonPlainAddress(t *testing.T) {
	for _, tc := range []struct {
		email    string
		verified bool
		want     string
	}{
		{"ada@example.org", true, "ada@example.org"},
		{"ada@example.org", false, ""},
		{" victim@example.org", true, ""},
		{"victim@example。org", true, ""},
		{"", true, ""},
	} {
		for _, checked := range []bool{false, true} {
			s := &Session{Email: tc.email, EmailVerified: tc.verified}
			if checked {
				s.CheckEmail()
			}
			if got := s.VerifiedEmail(); got != tc.want {
				t.Errorf("%q (verified %v, checked %v): VerifiedEmail() = %q, want %q", tc.email, tc.verified, checked, got, tc.want)
			}
		}
	}
	s := &Session{Email: "ada@example.org", EmailVerified: true}
	s.CheckEmail()
	if n := testing.AllocsPerRun(100, func() { s.VerifiedEmail() }); n != 0 {
		t.Errorf("a checked session's VerifiedEmail allocates %v times, want 0", n)
	}
	c := *s
	c.Email = " victim@example.org"
	if got := c.VerifiedEmail(); got != "" {
		t.Errorf("an address changed after the check: VerifiedEmail() = %q, want none", got)
	}
}
