// Package forwardauth reads what an external proxy (nginx auth_request,
// ingress-nginx, Traefik ForwardAuth, Envoy ext_authz over HTTP, Caddy's
// forward_auth) tells the gateway about the request it is asking about: the
// original method, scheme, host and URI. Only a trusted proxy's word counts,
// and only in one form per request, so that a client cannot slip its own
// URL past a proxy that forwards client headers to the auth server.
package forwardauth

import (
	"errors"
	"net/http"
	"strings"
)

// maxURILen bounds the original request URI, in bytes.
const maxURILen = 8192

// Errors that make a verify request a 400 (or, for ErrUntrusted, a 403).
var (
	ErrUntrusted = errors.New("the request does not come from a trusted proxy")
	ErrMissing   = errors.New("the proxy sent neither X-Original-URL nor X-Forwarded-Uri with X-Forwarded-Proto and X-Forwarded-Host")
	ErrAmbiguous = errors.New("the request carries both X-Original-URL and X-Forwarded-Uri, or one of them twice")
	ErrScheme    = errors.New("the original scheme is not http or https")
	ErrHost      = errors.New("the original host is not a valid host name")
	ErrURI       = errors.New("the original URI is not an origin-form path of printable ASCII")
	ErrMethod    = errors.New("the original method is not a valid method")
)

// Original is the request a proxy asks about.
type Original struct {
	// Method is the original method; GET when the proxy does not say.
	Method string
	// Scheme is http or https, lower case.
	Scheme string
	// Host is the host the client asked for, lower case, with its port if
	// it named one.
	Host string
	// URI is the path and query as the client sent them, starting with "/".
	URI string
	// Redirect reports that the proxy passes the gateway's answer on to the
	// client (Traefik, Caddy, Envoy: the X-Forwarded-Uri form), so a
	// browser navigation may be answered with a redirect to sign in. The
	// X-Original-URL form (nginx auth_request, ingress-nginx) accepts only
	// 2xx, 401 and 403: such a proxy gets 401 and redirects itself.
	Redirect bool
	// url is the absolute URL when the proxy sent it as such.
	url string
}

// URL returns the original request's absolute URL.
func (o Original) URL() string {
	if o.url != "" {
		return o.url
	}
	return o.Scheme + "://" + o.Host + o.URI
}

// Read returns the original request described by h, the headers of a
// verify request; trusted reports that the request came from a trusted
// proxy. It reads one of two forms, never a mix:
//
//   - X-Original-URL (an absolute URL) and X-Original-Method, which nginx
//     auth_request (as configured in docs/forward-auth.md) and
//     ingress-nginx send;
//   - X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Uri and
//     X-Forwarded-Method, which Traefik and Caddy's forward_auth send.
//
// A request with both X-Original-URL and X-Forwarded-Uri is refused: each
// proxy sets its own form and passes the client's other headers on, so
// whichever form the gateway preferred, a client could plant it through the
// proxy that sets the other. Repeated or comma-separated values are refused
// too, as is anything not a plain http(s) URL on a valid host.
func Read(h http.Header, trusted bool) (Original, error) {
	if !trusted {
		return Original{}, ErrUntrusted
	}
	ou, fu := h["X-Original-Url"], h["X-Forwarded-Uri"]
	switch {
	case len(ou) > 1 || len(fu) > 1 || len(ou) == 1 && len(fu) == 1:
		return Original{}, ErrAmbiguous
	case len(ou) == 1:
		return fromOriginalURL(ou[0], h)
	case len(fu) == 1:
		return fromForwarded(fu[0], h)
	}
	return Original{}, ErrMissing
}

// ReadEnvoy returns the original request of an Envoy ext_authz HTTP check,
// which goes to the configured path_prefix followed by the original path
// and query (uri), with the original method and Host, and carries
// X-Forwarded-Proto (Envoy sets it; the check passes it on when
// allowed_headers names it). trusted is as for Read. A check that also
// carries X-Original-URL or X-Forwarded-Uri is refused, as in Read.
func ReadEnvoy(h http.Header, trusted bool, method, host, uri string) (Original, error) {
	switch {
	case !trusted:
		return Original{}, ErrUntrusted
	case len(h["X-Original-Url"])+len(h["X-Forwarded-Uri"]) > 0:
		return Original{}, ErrAmbiguous
	}
	return build(method, one(h, "X-Forwarded-Proto"), host, uri, true)
}

// fromOriginalURL reads the nginx form.
func fromOriginalURL(raw string, h http.Header) (Original, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return Original{}, ErrScheme
	}
	host, uri := rest, "/"
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		host, uri = rest[:i], rest[i:]
		if uri[0] == '?' {
			uri = "/" + uri
		}
	}
	o, err := build(one(h, "X-Original-Method"), scheme, host, uri, false)
	// Most proxies send the URL as URL() would write it: keep it, which
	// spares building it again.
	if err == nil && len(raw) == len(o.Scheme)+3+len(o.Host)+len(o.URI) &&
		strings.HasPrefix(raw, o.Scheme) && strings.HasPrefix(rest, o.Host) && strings.HasSuffix(raw, o.URI) {
		o.url = raw
	}
	return o, err
}

// fromForwarded reads the Traefik and Caddy form.
func fromForwarded(uri string, h http.Header) (Original, error) {
	return build(one(h, "X-Forwarded-Method"), one(h, "X-Forwarded-Proto"), one(h, "X-Forwarded-Host"), uri, true)
}

// one returns the header's single value, or "\n" (invalid everywhere) when
// it is repeated.
func one(h http.Header, name string) string {
	switch v := h[name]; len(v) {
	case 0:
		return ""
	case 1:
		return v[0]
	}
	return "\n"
}

// build checks and assembles the parts.
func build(method, scheme, host, uri string, redirect bool) (Original, error) {
	switch {
	case strings.EqualFold(scheme, "https"):
		scheme = "https"
	case strings.EqualFold(scheme, "http"):
		scheme = "http"
	default:
		return Original{}, ErrScheme
	}
	if !validHost(host) {
		return Original{}, ErrHost
	}
	if !validURI(uri) {
		return Original{}, ErrURI
	}
	if method == "" {
		method = http.MethodGet
	} else if !validMethod(method) {
		return Original{}, ErrMethod
	}
	return Original{Method: method, Scheme: scheme, Host: strings.ToLower(host), URI: uri, Redirect: redirect}, nil
}

// validHost reports whether s is a DNS name or IPv4 address (letters,
// digits, "-" and "."), or a bracketed IPv6 address, with an optional port
// of 1 to 5 digits: no userinfo, no percent-encoding, nothing a browser
// could read as another host.
func validHost(s string) bool {
	if s == "" || len(s) > 262 {
		return false
	}
	name, port := s, ""
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		for _, c := range []byte(s[1:end]) {
			if !isHex(c) && c != ':' && c != '.' {
				return false
			}
		}
		if end == 1 {
			return false
		}
		name, port = "", s[end+1:]
		if port != "" {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
			if port == "" {
				return false
			}
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		name, port = s[:i], s[i+1:]
		if port == "" {
			return false
		}
	}
	if len(port) > 5 {
		return false
	}
	for _, c := range []byte(port) {
		if c < '0' || c > '9' {
			return false
		}
	}
	if s[0] == '[' {
		return true
	}
	if name == "" || name[0] == '.' || name[0] == '-' || strings.Contains(name, "..") {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validURI reports whether s is an origin-form request target: "/" then
// printable ASCII, without a fragment or an invalid percent-escape, at most
// maxURILen bytes.
func validURI(s string) bool {
	if s == "" || s[0] != '/' || len(s) > maxURILen {
		return false
	}
	for i := range len(s) {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '#' {
			return false
		}
		if s[i] == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			return false
		}
	}
	return true
}

// validMethod reports whether s is an upper-case method token of at most
// 20 letters.
func validMethod(s string) bool {
	if len(s) > 20 {
		return false
	}
	for i := range len(s) {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
