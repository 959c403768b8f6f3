package redirect

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxDecodings bounds how many times a return-to path is percent-decoded
// while looking for a hidden "//", backslash or control character. A path
// still changing after that many rounds is refused.
const maxDecodings = 8

// ReturnTo is the set of absolute URLs a browser may be sent back to besides same-origin paths.
//
// The zero value and a nil *ReturnTo allow same-origin paths only.
type ReturnTo struct {
	allowed map[target]struct{}
	hosts   []hostPattern
}

// hostPattern is an origin every URL of which is allowed: an exact host, or
// every subdomain of a domain.
type hostPattern struct {
	scheme string
	host   string // exact, or ".example.com" for every subdomain
	port   int    // as in target
}

// NewReturnTo returns the return-to policy that allows, besides same-origin
// paths, exactly the given URLs. Each must be an absolute http or https URL
// written in printable ASCII (IDN hosts in punycode) without userinfo, query
// or fragment; the error names the first one that is not.
func NewReturnTo(allowed []string) (*ReturnTo, error) {
	v := &ReturnTo{allowed: make(map[target]struct{}, len(allowed))}
	for _, raw := range allowed {
		u, t, err := parseTarget(raw)
		switch {
		case err != nil:
		case !isWeb(u.Scheme):
			err = fmt.Errorf("has scheme %q, not http or https", u.Scheme)
		case u.RawQuery != "" || u.ForceQuery:
			err = errQuery
		}
		if err != nil {
			return nil, fmt.Errorf("return-to URL %q: %w", raw, err)
		}
		v.allowed[t] = struct{}{}
	}
	return v, nil
}

// Sanitize returns raw when it is a safe same-origin path or exactly matches an allowed URL, else "/".
//
// An allowed URL matches when scheme and host (case-insensitively, default
// ports aside) and path (exactly, as written) are equal; raw may add a query
// but no userinfo and no fragment. A safe same-origin path is described at
// isSafePath. The result never contains CR, LF or any other control character.
// With AllowHosts, any http(s) URL on an allowed host matches too.
func (v *ReturnTo) Sanitize(raw string) string {
	if isSafePath(raw) || v.allows(raw) {
		return raw
	}
	return "/"
}

func (v *ReturnTo) allows(raw string) bool {
	if v == nil || len(v.allowed)+len(v.hosts) == 0 {
		return false
	}
	u, t, err := parseTarget(raw)
	if err != nil {
		return false
	}
	if _, ok := v.allowed[t]; ok {
		return true
	}
	if !isWeb(t.scheme) || !t.authority || u.Host == "" {
		return false
	}
	for _, p := range v.hosts {
		if p.scheme == t.scheme && p.port == t.port &&
			(p.host == t.host || p.host[0] == '.' && strings.HasSuffix(t.host, p.host)) {
			return true
		}
	}
	return false
}

// AllowHosts allows, besides what v allows already, every URL on the
// given hosts, each written [scheme://]host[:port]: an exact host
// (app.example.com) or every subdomain of a domain, at any depth
// (*.example.com, which does not match example.com itself). The scheme is
// https unless written (http://app.localhost:8080); the port is the
// scheme's default unless written. This is what single sign-on across
// subdomains needs: a browser comes back to the very page of another host
// it left to sign in. The error names the first pattern that is invalid.
func (v *ReturnTo) AllowHosts(patterns []string) error {
	for _, raw := range patterns {
		p, err := parseHostPattern(raw)
		if err != nil {
			return fmt.Errorf("return-to host %q: %w", raw, err)
		}
		v.hosts = append(v.hosts, p)
	}
	return nil
}

// parseHostPattern parses one pattern of AllowHosts.
func parseHostPattern(raw string) (hostPattern, error) {
	full := raw
	if !strings.Contains(raw, "://") {
		full = "https://" + raw
	}
	wild := false
	if scheme, rest, _ := strings.Cut(full, "://"); strings.HasPrefix(rest, "*.") {
		wild, full = true, scheme+"://"+rest[2:]
	}
	u, t, err := parseTarget(full)
	switch {
	case err != nil:
		return hostPattern{}, err
	case !isWeb(u.Scheme):
		return hostPattern{}, fmt.Errorf("has scheme %q, not http or https", u.Scheme)
	case u.Path != "" || u.RawQuery != "" || u.ForceQuery:
		return hostPattern{}, errors.New("has a path or query: write the host only")
	case strings.ContainsAny(t.host, "*[]") || strings.HasPrefix(t.host, ".") || strings.Contains(t.host, ".."):
		return hostPattern{}, errors.New("is not a host name: want app.example.com or *.example.com")
	case wild && !strings.Contains(t.host, "."):
		return hostPattern{}, errors.New("names every subdomain of a top-level domain")
	}
	p := hostPattern{scheme: t.scheme, host: t.host, port: t.port}
	if wild {
		p.host = "." + t.host
	}
	return p, nil
}

// isSafePath reports whether raw is a path that keeps the browser on the
// gateway's origin, however a browser, a proxy or the application behind the
// gateway reads it:
//   - at most maxURLLen bytes of printable ASCII (non-ASCII must be
//     percent-encoded), starting with exactly one "/", without a backslash;
//   - url.Parse finds no scheme, host, userinfo or opaque part;
//   - neither raw nor any of its successive percent-decodings (until stable,
//     at most maxDecodings rounds) has a backslash, a control, format or
//     whitespace character other than a space, a slash lookalike, or invalid
//     UTF-8 (so "/caf%E9" is refused, "/caf%C3%A9" kept), nor starts with
//     "//" once spaces are removed and dot segments ("/./", "/../", "%2e")
//     resolved;
//   - a fragment is kept when, at every decoding, it passes the same
//     character checks and does not itself look like a URL: no leading "//"
//     and no leading "scheme:" (it may feed a client-side router).
func isSafePath(raw string) bool {
	if raw == "" || len(raw) > maxURLLen || raw[0] != '/' || !isPrintableASCII(raw) {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	ref, frag, hasFrag := strings.Cut(raw, "#")
	forms, ok := decodings(ref)
	if !ok {
		return false
	}
	for _, d := range forms {
		path, _, _ := strings.Cut(d, "?")
		if !cleanText(d) || networkPath(d) || networkPath(removeDotSegments(path)) {
			return false
		}
	}
	if !hasFrag {
		return true
	}
	forms, ok = decodings(frag)
	if !ok {
		return false
	}
	for _, d := range forms {
		if !cleanText(d) || networkPath(d) || hasScheme(d) {
			return false
		}
	}
	return true
}

// decodings returns s followed by each successive percent-decoding of it,
// and false when decoding has not settled after maxDecodings rounds.
func decodings(s string) ([]string, bool) {
	forms := []string{s}
	for range maxDecodings {
		d := percentDecode(s)
		if d == s {
			return forms, true
		}
		forms = append(forms, d)
		s = d
	}
	return forms, percentDecode(s) == s
}

// percentDecode decodes every valid %XX in s and keeps invalid ones as they
// are, the way lenient servers do ("%%32%46" becomes "%2F").
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// cleanText reports whether s is valid UTF-8 free of backslashes, slash
// lookalikes and of control, format, whitespace (a space aside, as in
// "%20") and default-ignorable characters: all things that some browser,
// proxy or framework strips, folds into "/" or treats as a line break.
func cleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == ' ' {
			continue
		}
		if r == '\\' || unicode.IsSpace(r) || isSlashLookalike(r) ||
			unicode.In(r, unicode.Cc, unicode.Cf, unicode.Z, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) {
			return false
		}
	}
	return true
}

// isSlashLookalike reports whether r is a solidus or reverse solidus in all
// but code point: NFKC folds some into "/" or "\", fonts draw the others alike.
func isSlashLookalike(r rune) bool {
	switch r {
	case '\u2044', // FRACTION SLASH
		'\u2215', // DIVISION SLASH
		'\u2216', // SET MINUS
		'\u2571', // BOX DRAWINGS LIGHT DIAGONAL UPPER RIGHT TO LOWER LEFT
		'\u2572', // BOX DRAWINGS LIGHT DIAGONAL UPPER LEFT TO LOWER RIGHT
		'\u29F5', // REVERSE SOLIDUS OPERATOR
		'\u29F8', // BIG SOLIDUS
		'\u29F9', // BIG REVERSE SOLIDUS
		'\u3033', // VERTICAL KANA REPEAT MARK UPPER HALF
		'\uFE68', // SMALL REVERSE SOLIDUS
		'\uFF0F', // FULLWIDTH SOLIDUS
		'\uFF3C': // FULLWIDTH REVERSE SOLIDUS
		return true
	}
	return false
}

// networkPath reports whether s, spaces removed, starts with "//": the start
// of a URL on another host for a browser or for code that trims spaces.
func networkPath(s string) bool {
	return strings.HasPrefix(strings.ReplaceAll(s, " ", ""), "//")
}

// hasScheme reports whether s, spaces removed, starts with "scheme:".
func hasScheme(s string) bool {
	scheme, _, ok := strings.Cut(strings.ReplaceAll(s, " ", ""), ":")
	return ok && validScheme(scheme)
}

// removeDotSegments resolves "." and ".." segments of an absolute path the
// way browsers do (RFC 3986 §5.2.4, with "%2e" read as "." as in the WHATWG
// URL standard): "/.//evil.com" becomes "//evil.com".
func removeDotSegments(path string) string {
	segs := strings.Split(path, "/")[1:]
	out := make([]string, 0, len(segs))
	for i, seg := range segs {
		last := i == len(segs)-1
		switch strings.ReplaceAll(strings.ToLower(seg), "%2e", ".") {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, seg)
		}
	}
	return "/" + strings.Join(out, "/")
}
