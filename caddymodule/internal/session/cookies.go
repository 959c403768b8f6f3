package session

import (
	"net/http"
	"slices"
	"strings"
)

// HostPrefix marks the cookies a browser accepts only from the host itself,
// over HTTPS, with Path=/ and no Domain: neither a sibling subdomain nor a
// plain-HTTP answer can set or shadow one (cookie tossing).
const HostPrefix = "__Host-"

// maxCookieValues bounds how many values of one cookie name a request is
// searched for: enough for every cookie a browser keeps for a host, little
// work for a forged header.
const maxCookieValues = 64

// Name is the name the gateway gives its cookie base on r: over HTTPS the
// __Host- name, the only one read there, so a tossed unprefixed copy is
// ignored; over plain HTTP, where browsers refuse __Host- cookies, base.
func Name(r *http.Request, base string) string {
	if r.TLS != nil {
		return HostPrefix + base
	}
	return base
}

// Values returns the distinct values of the cookie name in r, in the order
// sent, at most maxCookieValues of them. A browser sends several when a
// cookie of the same name was set for a narrower path or a parent domain:
// no gateway cookie is ever read as "the first one wins".
func Values(r *http.Request, name string) []string {
	var out []string
	sc := scanner{headers: r.Header["Cookie"], name: name}
	for v, ok := sc.next(); ok; v, ok = sc.next() {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// scanner walks the values of one cookie name through Cookie headers
// without allocating (r.Cookie parses and allocates every cookie).
type scanner struct {
	headers []string
	rest    string
	name    string
	seen    int
}

// next returns the next value of the cookie, spaces trimmed.
func (s *scanner) next() (string, bool) {
	for s.seen < maxCookieValues {
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
			s.seen++
			return strings.TrimSpace(part[n+1:]), true
		}
	}
	return "", false
}
