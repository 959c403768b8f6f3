package session

import (
	"net/http"
	"strings"
)

// HostPrefix marks the cookies a browser accepts only from the host itself,
// over HTTPS, with Path=/ and no Domain: neither a sibling subdomain nor a
// plain-HTTP answer can set or shadow one (cookie tossing).
const HostPrefix = "__Host-"

// Name is the name the gateway gives its cookie base on r: over HTTPS the
// __Host- name, the only one read there, so a tossed unprefixed copy is
// ignored; over plain HTTP, where browsers refuse __Host- cookies, base.
func Name(r *http.Request, base string) string {
	if r.TLS != nil {
		return HostPrefix + base
	}
	return base
}

// Names returns every name the gateway gives a cookie of these bases, in
// any mode: the bare name (plain HTTP), HostPrefix (HTTPS) and SecurePrefix
// (HTTPS with a cookie domain). Whatever takes the gateway's cookies off a
// request takes them all.
func Names(bases ...string) []string {
	out := make([]string, 0, 3*len(bases))
	for _, b := range bases {
		out = append(out, b, HostPrefix+b, SecurePrefix+b)
	}
	return out
}

// Values returns the values of the cookie name in r, in the order sent,
// duplicates included. A browser sends several when a cookie of the same
// name was set for a narrower path or a parent domain: no gateway cookie is
// ever read as "the first one wins". Every value is returned, however many
// precede the gateway's own (the request's header size, which the server
// bounds, bounds the work): planted values that do not verify must not hide
// the one that does.
func Values(r *http.Request, name string) []string {
	var out []string
	sc := scanner{headers: r.Header["Cookie"], name: name}
	for v, ok := sc.next(); ok; v, ok = sc.next() {
		out = append(out, v)
	}
	return out
}

// scanner walks the values of one cookie name through Cookie headers
// without allocating (r.Cookie parses and allocates every cookie). It sees
// every value: a count bound would let planted values crowd out the real
// one (the header's size bounds the walk).
type scanner struct {
	headers []string
	rest    string
	name    string
}

// next returns the next value of the cookie, spaces trimmed.
func (s *scanner) next() (string, bool) {
	for {
		for s.rest == "" {
			if len(s.headers) == 0 {
				return "", false
			}
			s.rest, s.headers = s.headers[0], s.headers[1:]
		}
		var part string
		part, s.rest, _ = strings.Cut(s.rest, ";")
		part = strings.TrimLeft(part, " ")
		if n := len(s.name); len(part) > n && part[n] == '=' && part[:n] == s.name {
			return strings.TrimSpace(part[n+1:]), true
		}
	}
}
