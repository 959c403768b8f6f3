// Package redirect decides where the gateway may send a browser or a native
// app. ReturnTo sanitises the address a browser goes back to after sign-in or
// sign-out; Allowlist matches the redirect URLs of native apps (RFC 8252).
// Both fail closed: what they cannot show to be safe is refused.
//
// Both only accept printable ASCII (0x21–0x7e). Anything else (spaces, tabs,
// CR/LF, NUL, non-ASCII letters, Unicode lookalikes) is either a header
// injection, something a browser strips or folds before parsing, or a form
// that a browser would have percent-encoded itself; refusing it keeps the
// gateway's reading of a URL and the browser's reading the same.
package redirect

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// maxURLLen bounds every URL this package accepts, in bytes.
const maxURLLen = 2048

// anyPort stands for every port in a target of a loopback redirect.
const anyPort = -1

// Errors for URLs an operator configures, wrapped with the URL they concern.
var (
	errEmpty        = errors.New("is empty")
	errNotPrintable = errors.New("contains whitespace, control or non-ASCII characters")
	errBackslash    = errors.New("contains a backslash")
	errNoScheme     = errors.New("is not absolute: it has no scheme")
	errOpaque       = errors.New("has no authority or absolute path after the scheme")
	errUserinfo     = errors.New("has userinfo")
	errFragment     = errors.New("has a fragment")
	errQuery        = errors.New("has a query: only scheme, host and path are compared, so it would be ignored")
	errNoHost       = errors.New("has no host")
	errBadHost      = errors.New("has a host with percent-encoding or non-ASCII characters (write IDN hosts in punycode, xn--)")
	errBadPort      = errors.New("has a port outside 1-65535")
	errTooLong      = fmt.Errorf("is longer than %d bytes", maxURLLen)
)

// target is what two URLs must share to be the same redirect target.
type target struct {
	scheme    string // lower case
	host      string // lower case, without brackets or port
	port      int    // 0 for none or the scheme's default; anyPort for loopback
	path      string // as written, still percent-encoded
	authority bool   // "scheme://…" rather than "scheme:/…"
}

// parseTarget parses raw and returns its target. It rejects what no
// configured URL and no redirect may carry: non-printable characters,
// backslashes, userinfo, a fragment, an opaque form, an invalid host or port.
func parseTarget(raw string) (*url.URL, target, error) {
	switch {
	case raw == "":
		return nil, target{}, errEmpty
	case len(raw) > maxURLLen:
		return nil, target{}, errTooLong
	case !isPrintableASCII(raw):
		return nil, target{}, errNotPrintable
	// Browsers read "\" as "/" in http(s) URLs; Go does not.
	case strings.Contains(raw, `\`):
		return nil, target{}, errBackslash
	// An empty fragment ("…#") leaves url.URL.Fragment empty.
	case strings.Contains(raw, "#"):
		return nil, target{}, errFragment
	}
	if scheme, _, ok := strings.Cut(raw, ":"); ok && !strings.ContainsAny(scheme, "/?") && !validScheme(scheme) {
		return nil, target{}, fmt.Errorf("has an invalid scheme %q: want a letter, then letters, digits, +, - or .", scheme)
	}
	u, err := url.Parse(raw)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err // the caller names the URL
	}
	switch {
	case err != nil:
		return nil, target{}, err
	case u.Scheme == "":
		return nil, target{}, errNoScheme
	case u.Opaque != "":
		return nil, target{}, errOpaque
	case u.User != nil:
		return nil, target{}, errUserinfo
	}
	host := strings.ToLower(u.Hostname())
	// url.Parse decodes %XX in hosts: "%C3%A9" would compare as "é".
	if !isPrintableASCII(host) || strings.Contains(host, "%") {
		return nil, target{}, errBadHost
	}
	port, err := portNumber(u)
	if err != nil {
		return nil, target{}, err
	}
	t := target{scheme: u.Scheme, host: host, port: port, path: rawPath(u), authority: !u.OmitHost}
	if isWeb(u.Scheme) {
		if host == "" {
			return nil, target{}, errNoHost
		}
		// Browsers send "/" for an empty http(s) path.
		if t.path == "" {
			t.path = "/"
		}
	}
	return u, t, nil
}

// portNumber returns u's port as a number, 0 when absent or the default port of http or https.
func portNumber(u *url.URL) (int, error) {
	p := u.Port()
	if p == "" {
		return 0, nil
	}
	// url.Parse has checked that p is all digits; browsers ignore leading zeros.
	p = strings.TrimLeft(p, "0")
	n, err := strconv.Atoi(p)
	if err != nil || len(p) > 5 || n < 1 || n > 65535 {
		return 0, errBadPort
	}
	if u.Scheme == "http" && n == 80 || u.Scheme == "https" && n == 443 {
		return 0, nil
	}
	return n, nil
}

// rawPath returns u's path as written in the URL, percent-encoding untouched,
// so that "/c%62" and "/cb" stay different paths.
func rawPath(u *url.URL) string {
	if u.RawPath != "" {
		return u.RawPath
	}
	return u.EscapedPath()
}

// validScheme reports whether s has the syntax of RFC 3986 §3.1:
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func validScheme(s string) bool {
	for i := range len(s) {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

func isWeb(scheme string) bool { return scheme == "http" || scheme == "https" }

// isPrintableASCII reports whether s holds only the bytes 0x21 to 0x7e.
func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
