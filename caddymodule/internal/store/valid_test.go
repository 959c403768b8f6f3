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
		{"jürgen@exämple.de", "jürgen@exämple.de"}, // RFC 6532, NFC
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
		"a@" + string(make([]byte, 330)),
	} {
		if got, ok := CleanEmail(in); ok || got != "" {
			t.Errorf("CleanEmail(%q) = %q, %v; want no address", in, got, ok)
		}
	}
}
