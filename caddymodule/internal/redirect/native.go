package redirect

import (
	"fmt"
	"net/url"
)

// forbiddenSchemes run code or read local data in the browser: never a redirect target.
var forbiddenSchemes = map[string]bool{
	"javascript": true, "vbscript": true, "data": true, "blob": true,
	"file": true, "filesystem": true, "about": true,
}

// Allowlist matches native redirect URLs.
//
// The zero value and a nil *Allowlist match nothing.
type Allowlist struct {
	targets map[target]struct{}
}

// ParseNativeRedirect validates a native app's redirect URL as an operator
// adds it (RFC 8252 §7): absolute, printable ASCII, with scheme http, https
// or a custom scheme ("myapp", "com.example.app"); no userinfo, query or
// fragment. http and https need a host; a custom scheme takes either form
// "myapp://oauth-callback" or "com.example.app:/callback", not the opaque
// "myapp:callback". Schemes that run code or read local files (javascript,
// data, file, …) are refused.
func ParseNativeRedirect(raw string) (*url.URL, error) {
	u, _, err := parseNative(raw)
	if err != nil {
		return nil, err
	}
	return u, nil
}

func parseNative(raw string) (*url.URL, target, error) {
	u, t, err := parseTarget(raw)
	switch {
	case err != nil:
	case forbiddenSchemes[u.Scheme]:
		err = fmt.Errorf("has scheme %q, which is never a redirect target", u.Scheme)
	case u.RawQuery != "" || u.ForceQuery:
		err = errQuery
	case t.host == "" && t.path == "":
		err = fmt.Errorf("has neither host nor path after %q", u.Scheme+":")
	}
	if err != nil {
		return nil, target{}, fmt.Errorf("native redirect URL %q: %w", raw, err)
	}
	return u, loopbackAnyPort(t), nil
}

// NewAllowlist returns the allowlist of the given native redirect URLs, each
// validated by ParseNativeRedirect; the error names the first invalid one.
func NewAllowlist(urls []string) (*Allowlist, error) {
	a := &Allowlist{targets: make(map[target]struct{}, len(urls))}
	for _, raw := range urls {
		_, t, err := parseNative(raw)
		if err != nil {
			return nil, err
		}
		a.targets[t] = struct{}{}
	}
	return a, nil
}

// Match reports whether raw may receive a redirect: exact on scheme
// (case-insensitive), host (case-insensitive) and path (exact, as written);
// for loopback redirects (http with host 127.0.0.1, [::1] or localhost) only
// the port may differ (RFC 8252 §7.3); the query may differ. Userinfo, a
// fragment, a backslash, whitespace, control or non-ASCII characters, or more
// than 2048 bytes → no match. No prefix matching: /cb does not match /cb/evil
// or /cbx.
//
// Default ports of http and https are normalised ("https://h:443/cb" is
// "https://h/cb"), an empty http(s) path is "/", and "myapp:/cb" differs from
// "myapp:///cb".
func (a *Allowlist) Match(raw string) bool {
	if a == nil || len(a.targets) == 0 {
		return false
	}
	_, t, err := parseTarget(raw)
	if err != nil {
		return false
	}
	_, ok := a.targets[loopbackAnyPort(t)]
	return ok
}

// loopbackAnyPort lets a loopback redirect match on any port: a native app
// listens on whichever port the OS gives it (RFC 8252 §7.3).
func loopbackAnyPort(t target) target {
	if t.scheme == "http" && (t.host == "127.0.0.1" || t.host == "::1" || t.host == "localhost") {
		t.port = anyPort
	}
	return t
}
