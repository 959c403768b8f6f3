package session

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Signing out with several session cookies. A host under the cookie domain
// (or anyone answering one plain-HTTP request) can toss a session cookie of
// its own for a narrower path (/_auth/sign-out): the browser then sends two
// live sessions there. Lookup takes that for none, which is right for
// access, but a sign-out page must not say "signed out" to a person whose
// session lives on: it offers to end every live session presented, each
// under its own CSRF token.

// Presented returns the live sessions the request's session cookies name,
// in the order sent, at most maxSignOutCookies: what a sign-out ends. all
// is false when the cookies name more sessions not known to have ended
// than that: some were not read, and one of them may be live.
func (m *Manager) Presented(ctx context.Context, r *http.Request) (live []*store.Session, all bool, err error) {
	ids, all := m.signOutIDs(r, true)
	for _, id := range ids {
		s, err := m.session(ctx, id)
		if errors.Is(err, ErrNoSession) {
			m.ended.add(id)
			continue
		}
		if err != nil {
			return nil, false, err
		}
		live = append(live, s)
	}
	return live, all, nil
}

// EndVouched ends, of the sessions the request's cookies name (live or
// ended), each that one of tokens was issued for (CheckCSRF), and expires
// the session cookie under every name and place it may have been set
// (expireCookies). ok is false, and nothing is done, when no token names
// one of them: a form posted from another site ends nothing. It reads at
// most maxSignOutCookies of them; all is false when the cookies name more:
// a session among the others may live on.
func (m *Manager) EndVouched(ctx context.Context, w http.ResponseWriter, r *http.Request, tokens []string) (ended []string, all, ok bool, err error) {
	ids, all := m.signOutIDs(r, false)
	// A form may carry as many tokens as its body holds: each is decoded
	// once, and each session's MAC computed once (a token per cookie per
	// key cost 140 ms a request with 64 cookies and a 64 KiB form).
	vouchers := csrfTokens(tokens)
	for _, id := range ids {
		if m.vouchedFor(id, vouchers) {
			ended = append(ended, id)
		}
	}
	if len(ended) == 0 {
		return nil, all, false, nil
	}
	m.expireCookies(w, r)
	for _, id := range ended {
		if err := m.store.DeleteSession(ctx, id); err != nil {
			return nil, all, true, err
		}
		m.ended.add(id)
	}
	return ended, all, true, nil
}

// signOutIDs returns the session ids the request's cookies name (with
// skipEnded, not those known to have ended), at most maxSignOutCookies,
// and whether that is all of them.
func (m *Manager) signOutIDs(r *http.Request, skipEnded bool) ([]string, bool) {
	ids := m.cookieSessionIDs(r, nil, maxSignOutCookies+1, skipEnded)
	if len(ids) > maxSignOutCookies {
		return ids[:maxSignOutCookies], false
	}
	return ids, true
}

// expireCookies expires the session cookie wherever a cookie this request
// carries can have been set: the name read here (first, as End always
// did) and, over HTTPS, the plain and __Secure- names; for every path this
// request's cookies can have (each prefix of its path: a tossed cookie's
// path is one, or the browser would not have sent it here), host-only and
// for each parent domain of the host and the cookie domain (where a
// sibling can set one). The
// __Host- name exists only host-only at Path=/. A cookie tossed for a path
// this request does not lie under is neither sent here nor reachable: it
// stays until it expires, and is ignored once its session has ended.
func (m *Manager) expireCookies(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, m.cookie(r, "", -1))
	m.clearPlainCookie(w, r)
	secure := r.TLS != nil
	names := []string{CookieName}
	if secure {
		names = append(names, DomainCookieName)
	}
	domains := append([]string{""}, parentDomains(r.Host)...)
	if m.domain != "" && !slices.Contains(domains, m.domain) {
		domains = append(domains, m.domain)
	}
	for _, name := range names {
		for _, path := range cookiePaths(r.URL.Path) {
			for _, d := range domains {
				http.SetCookie(w, &http.Cookie{Name: name, Path: path, Domain: d, MaxAge: -1, HttpOnly: true, Secure: secure})
			}
		}
	}
}

// cookiePaths returns the cookie paths that path-match path (RFC 6265
// 5.1.4): for /_auth/sign-out, /, /_auth, /_auth/ and /_auth/sign-out.
func cookiePaths(path string) []string {
	out := []string{"/"}
	for i := 1; i < len(path); i++ {
		if path[i] == '/' {
			out = append(out, path[:i], path[:i+1])
		}
	}
	if len(path) > 1 && !strings.HasSuffix(path, "/") {
		out = append(out, path)
	}
	return out
}

// maxParentDomains bounds the domains a sign-out expires cookies for: the
// Host is the client's, and each domain costs a Set-Cookie per name and
// path, so a Host of a hundred labels on a catch-all site would otherwise
// make a sign-out answer with thousands.
const maxParentDomains = 8

// parentDomains returns host (without its port) and each domain above it
// of two labels or more, as a Domain attribute may name them, at most the
// maxParentDomains shortest (a sibling tosses its cookie on a parent both
// share, nearer the root than any real host is deep); none for an IP
// address.
func parentDomains(hostport string) []string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" || net.ParseIP(host) != nil || !strings.Contains(host, ".") {
		return nil
	}
	var out []string
	for d := host; strings.Contains(d, "."); {
		out = append(out, d)
		_, d, _ = strings.Cut(d, ".")
	}
	return out[max(0, len(out)-maxParentDomains):]
}
