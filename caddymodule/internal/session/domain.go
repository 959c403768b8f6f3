package session

import (
	"errors"
	"net/http"
	"strings"
)

// SecurePrefix marks cookies a browser accepts only with Secure, from an
// HTTPS answer: a plain-HTTP answer cannot set or shadow one.
const SecurePrefix = "__Secure-"

// DomainCookieName is the session cookie's name over HTTPS with a cookie
// domain (WithDomain): a __Host- cookie cannot carry a Domain.
const DomainCookieName = SecurePrefix + CookieName

// WithDomain shares the session cookie with every host under domain
// (example.com: auth.example.com, app1.example.com, a.b.example.com), for
// single sign-on across subdomains. Over HTTPS the cookie is then
// DomainCookieName, with Domain=domain, and only that name is read. What
// __Host- stopped, every host under domain can now do: set a session
// cookie of its own (cookie tossing) or receive the gateway's. Planted
// cookies still fail safe (see Lookup), but every host under domain must be
// one the operator trusts with sessions. "" (the default) keeps the
// host-only __Host- cookie.
func (m *Manager) WithDomain(domain string) *Manager {
	m.domain = domain
	return m
}

// cookieName is the session cookie's name for r: CookieName over plain
// HTTP, else DomainCookieName with a cookie domain, else HostCookieName.
func (m *Manager) cookieName(r *http.Request) string {
	switch {
	case r.TLS == nil:
		return CookieName
	case m.domain != "":
		return DomainCookieName
	}
	return HostCookieName
}

// CheckDomain reports why domain cannot be a cookie domain: it must be a
// host name of at least two labels (letters, digits, "-"), written without
// a leading dot, a port or a scheme.
func CheckDomain(domain string) error {
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return errors.New("want a domain of at least two labels, like example.com")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New("want a host name, like example.com, without a leading dot, a scheme or a port")
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return errors.New("want a host name, like example.com, without a leading dot, a scheme or a port")
			}
		}
	}
	return nil
}
