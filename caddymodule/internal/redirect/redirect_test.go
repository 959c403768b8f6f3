package redirect_test

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// maxLen mirrors the package's bound on URL length.
const maxLen = 2048

// Disguises that attackers wrap a payload in.
var (
	// inserted at every position: raw and percent-encoded control characters,
	// a double-encoded tab and LF, NEL and a zero-width space.
	insertions = []string{
		"\t", "\n", "\r", "\x00", "\x0b", "\x0c", "\x1b", "\x7f",
		"%09", "%0a", "%0D", "%00", "%0d%0a", "%7f", "%2509", "%250A", "%C2%85", "%E2%80%8B",
	}
	// put before and after the payload.
	paddings = []string{" ", "  ", "\t", "\u00a0", "\u3000", "\u200b", "\ufeff", "%20", "%09"}
	// replace one or every "/": backslash and Unicode lookalikes, raw and percent-encoded.
	slashes = func() []string {
		out := []string{`\`, "%5C", "%5c"}
		for _, r := range []rune{'\uFF0F', '\u2215', '\u2044', '\u29F8', '\uFF3C', '\uFE68', '\u2216'} {
			out = append(out, string(r), url.PathEscape(string(r)))
		}
		return out
	}()
)

// hostileVariants returns p with the disguises above: upper and lower case,
// percent-encoded once and twice (every byte, every byte but the first, or
// only the delimiters), control characters inserted at each position,
// leading and trailing spaces, backslash or lookalikes for slashes, and
// padded past the length limit.
func hostileVariants(p string) []string {
	set := map[string]bool{p: true, strings.ToUpper(p): true, strings.ToLower(p): true}
	for _, enc := range []func(string) string{encodeAll, encodeTail, encodeDelims} {
		once := enc(p)
		twice := enc(once)
		for _, s := range []string{once, twice, strings.ToUpper(once), strings.ToLower(twice)} {
			set[s] = true
		}
	}
	for i := 0; i <= len(p); i++ {
		for _, ins := range insertions {
			set[p[:i]+ins+p[i:]] = true
		}
	}
	for _, pad := range paddings {
		set[pad+p] = true
		set[p+pad] = true
		set[pad+p+pad] = true
	}
	for _, sl := range slashes {
		set[strings.ReplaceAll(p, "/", sl)] = true
		for i := range len(p) {
			if p[i] == '/' {
				set[p[:i]+sl+p[i+1:]] = true
			}
		}
	}
	set[p+strings.Repeat("a", maxLen)] = true
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func encodeAll(s string) string {
	var b strings.Builder
	for i := range len(s) {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// encodeTail keeps the first byte (a leading "/") and encodes the rest.
func encodeTail(s string) string {
	if s == "" {
		return s
	}
	return s[:1] + encodeAll(s[1:])
}

// encodeDelims keeps the first byte and encodes delimiters, "%", and
// anything not printable ASCII, as a URL-building library would.
func encodeDelims(s string) string {
	if s == "" {
		return s
	}
	var b strings.Builder
	b.WriteByte(s[0])
	for i := 1; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`/\:@.?#%`, c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

var escapeRE = regexp.MustCompile(`%[0-9a-fA-F]{2}`)

// lenientDecodings returns s and its successive percent-decodings, leaving
// invalid escapes alone, until stable (at most 20 rounds).
func lenientDecodings(s string) []string {
	out := []string{s}
	for range 20 {
		d := escapeRE.ReplaceAllStringFunc(s, func(m string) string {
			v, _ := url.PathUnescape(m)
			return v
		})
		if d == s {
			break
		}
		out = append(out, d)
		s = d
	}
	return out
}

// checkLocalPath fails t unless out is a path that stays on the origin.
func checkLocalPath(t *testing.T, in, out string) {
	t.Helper()
	fail := func(why string) { t.Errorf("Sanitize(%q) = %q: %s", in, out, why) }
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") {
		fail("does not start with a single /")
	}
	if len(out) > maxLen {
		fail("too long")
	}
	u, err := url.Parse(out)
	if err != nil {
		fail("does not parse: " + err.Error())
	} else if u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		fail("has scheme, host, userinfo or opaque part")
	}
	for i := range len(out) {
		if out[i] <= ' ' || out[i] >= 0x7f {
			fail("has whitespace, control or non-ASCII bytes")
			break
		}
	}
	for _, d := range lenientDecodings(out) {
		if strings.ContainsRune(d, '\\') {
			fail(fmt.Sprintf("decodes to %q, with a backslash", d))
		}
		for _, r := range d {
			if r != ' ' && (unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Cf, r)) {
				fail(fmt.Sprintf("decodes to %q, with control or whitespace %U", d, r))
				break
			}
		}
		if strings.HasPrefix(strings.ReplaceAll(d, " ", ""), "//") {
			fail(fmt.Sprintf("decodes to %q, a network path", d))
		}
	}
}

// checkOutput fails t unless out is "/", in itself, free of control
// characters, and either a local path or an absolute URL naming one of
// allowed's targets.
func checkOutput(t *testing.T, allowed []string, in, out string) {
	t.Helper()
	if out != in && out != "/" {
		t.Fatalf("Sanitize(%q) = %q: neither the input nor /", in, out)
	}
	if strings.ContainsAny(out, "\r\n") {
		t.Fatalf("Sanitize(%q) = %q: CR or LF would reach the Location header", in, out)
	}
	if u, err := url.Parse(out); err == nil && u.Scheme != "" {
		if !strings.HasPrefix(strings.ToLower(out), u.Scheme+"://") || !isOneOf(out, allowed, false) {
			t.Errorf("Sanitize(%q) = %q: absolute URL not in %q", in, out, allowed)
		}
		return
	}
	checkLocalPath(t, in, out)
}

// isOneOf reports whether raw has the scheme, host, port and path of one
// of entries, ports of loopback http URLs aside when loopbackPorts. It
// reads the URLs independently of the package: ports normalised by hand,
// paths cut out of the text.
func isOneOf(raw string, entries []string, loopbackPorts bool) bool {
	if strings.ContainsAny(raw, "#\\") || !utf8.ValidString(raw) {
		return false
	}
	for _, r := range raw {
		if r <= ' ' || r >= 0x7f {
			return false
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.User != nil {
		return false
	}
	for _, e := range entries {
		eu, err := url.Parse(e)
		if err != nil {
			continue
		}
		loopback := loopbackPorts && eu.Scheme == "http" && slices.Contains([]string{"127.0.0.1", "::1", "localhost"}, eu.Hostname())
		if strings.EqualFold(u.Scheme, eu.Scheme) &&
			strings.EqualFold(u.Hostname(), eu.Hostname()) &&
			(loopback || port(u) == port(eu)) &&
			pathText(raw) == pathText(e) {
			return true
		}
	}
	return false
}

func port(u *url.URL) string {
	p := strings.TrimLeft(u.Port(), "0")
	switch {
	case p == "" && strings.EqualFold(u.Scheme, "http"):
		return "80"
	case p == "" && strings.EqualFold(u.Scheme, "https"):
		return "443"
	}
	return p
}

// pathText cuts the path out of an absolute URL's text, "/" for an empty
// http(s) path, prefixed with "//" when the URL has an authority.
func pathText(raw string) string {
	scheme, rest, _ := strings.Cut(raw, ":")
	authority := ""
	if after, ok := strings.CutPrefix(rest, "//"); ok {
		authority, rest = "//", ""
		if i := strings.IndexAny(after, "/?"); i >= 0 {
			rest = after[i:]
		}
	}
	path, _, _ := strings.Cut(rest, "?")
	if s := strings.ToLower(scheme); path == "" && (s == "http" || s == "https") {
		path = "/"
	}
	return authority + path
}
