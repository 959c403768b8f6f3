package gateway

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/flow"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Identity headers set on requests that go upstream. HeaderUserEmail
// carries only an address a provider verified (the "nOAuth" class: an
// address anyone can set must not look like one that was proven), and
// HeaderUserEmailVerified says so explicitly: "true" with an address,
// "false" when the user has no verified one.
const (
	HeaderUserID            = "X-Auth-User-Id"
	HeaderUserEmail         = "X-Auth-User-Email"
	HeaderUserEmailVerified = "X-Auth-User-Email-Verified"
	HeaderUserName          = "X-Auth-User-Name"
	HeaderSessionID         = "X-Auth-Session-Id"
	// HeaderUserGroups lists the user's groups when the session began,
	// provider:group, comma-separated (corp:admins,github:acme).
	HeaderUserGroups = "X-Auth-User-Groups"
	// HeaderIdentity carries the signed identity token (a JWT; keys at
	// /_auth/.well-known/jwks.json).
	HeaderIdentity = "X-Auth-Jwt"
)

// TokenHeader is the header that carries a provider's access token upstream:
// X-Auth-Token-Github for github.
func TokenHeader(provider string) string {
	return http.CanonicalHeaderKey("X-Auth-Token-" + provider)
}

// identityPrefix is the namespace of every header the gateway sets.
const identityPrefix = "x-auth-"

// StripIdentityHeaders deletes every client-sent header in the gateway's
// namespace, whatever its case and with "_" or "." for "-": upstreams behind
// CGI, PHP, WSGI or Rack read X_Auth_User_Id and X.Auth.User.Id as
// X-Auth-User-Id (oauth2-proxy CVE-2025-64484, Caddy GHSA-7r4p-vjf4-gxv4).
func StripIdentityHeaders(h http.Header) {
	for k := range h {
		if isIdentityHeader(k) {
			delete(h, k)
		}
	}
}

// isIdentityHeader is the one rule for a header name in the gateway's
// namespace (X-Auth-*), in every spelling an upstream reads as one.
func isIdentityHeader(k string) bool {
	return len(k) >= len(identityPrefix) && sameHeaderName(k[:len(identityPrefix)], identityPrefix)
}

// sameHeaderName reports whether the header name k is, to an upstream, the
// name lower (lower case, "-" between words): letters of any case, and "_"
// or "." for "-", which CGI, PHP, WSGI and Rack map to the same variable.
func sameHeaderName(k, lower string) bool {
	if len(k) != len(lower) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' || c == '.' {
			c = '-'
		} else if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// ingressRedirectHint is the header ingress-nginx's generated auth location
// always sets on its question (proxy_set_header X-Auth-Request-Redirect
// $request_uri, or the auth-request-redirect annotation's value): its own
// hint to oauth2-proxy of where to come back to. It is in the gateway's
// namespace, so refusing it would refuse every request through ingress-nginx
// (400, which ingress-nginx shows as 500). The gateway never sets it and
// never reads its value (the original request is X-Original-URL), so a
// client's copy smuggles nothing past verify. Only this name is exempt: the
// other X-Auth-Request-* names (X-Auth-Request-User, -Email, the headers
// oauth2-proxy answers) stay refused, since apps moved from oauth2-proxy may
// still trust them. The in-Caddy handler strips it from requests upstream
// (StripIdentityHeaders); behind an external proxy a client's copy reaches
// the app unless the recipe blanks it (docs/forward-auth.md).
const ingressRedirectHint = "x-auth-request-redirect"

// carriesGatewayHeader reports whether a verify request carries, from the
// client, a header the gateway's answer sets: one in its namespace, or one
// of the policy's forward_token headers (but Authorization, which carries
// the client's own credentials). Every proxy copies the client's headers
// into its verify request, so whatever the proxy copies back, such a
// request is a client smuggling an identity past it.
//
// One name of the namespace is exempt: X-Auth-Request-Redirect
// (ingressRedirectHint), in every spelling sameHeaderName accepts.
func (o owned) carriesGatewayHeader(h http.Header) bool {
	for k := range h {
		if isIdentityHeader(k) && !sameHeaderName(k, ingressRedirectHint) {
			return true
		}
		for _, x := range o.extra {
			if x != "authorization" && sameHeaderName(k, x) {
				return true
			}
		}
	}
	return false
}

// setIdentityHeaders sets the identity headers of a signed-in request,
// identity being its signed identity token (HeaderIdentity). With every,
// a header without a value (no verified address, no name, no group) is
// set empty rather than left out: a proxy that copies a fixed list of
// names from verify's answer then overwrites a client's copy of each. The
// values share one allocation; each header's slice is capped at its one
// value, so a later handler that appends to a header gets a copy and
// touches no other.
func setIdentityHeaders(h http.Header, s *store.Session, identity string, every bool) {
	v := make([]string, 0, 7)
	set := func(name, value string) {
		if value != "" || every {
			v = append(v, value)
			h[name] = v[len(v)-1 : len(v) : len(v)]
		}
	}
	set(HeaderUserID, s.UserID)
	set(HeaderSessionID, s.ID)
	email := s.VerifiedEmail()
	set(HeaderUserEmail, email)
	set(HeaderUserEmailVerified, strconv.FormatBool(email != ""))
	set(HeaderUserName, s.Name)
	set(HeaderIdentity, identity)
	groups := ""
	if len(s.Groups) > 0 {
		groups = strings.Join(s.Groups, ",")
	}
	set(HeaderUserGroups, groups)
}

// gatewayCookies is every name of every cookie the gateway sets or reads:
// the session's and the flow binding's, bare, __Host- and __Secure- (see
// session.Names). None of them goes upstream.
var gatewayCookies = session.Names(session.CookieName, flow.BindingCookie)

// stripGatewayCookies removes the gateway's own cookies (gatewayCookies)
// from the request, so no session or binding cookie, under any of its
// names, reaches an upstream. Requests without them cost a substring
// search per base name.
func stripGatewayCookies(h http.Header) {
	values := h["Cookie"]
	found := false
	for _, v := range values {
		if strings.Contains(v, session.CookieName) || strings.Contains(v, flow.BindingCookie) {
			found = true // every name in gatewayCookies contains one of them
			break
		}
	}
	if !found {
		return
	}
	var kept strings.Builder
	size := 0
	for _, v := range values {
		size += len(v)
	}
	kept.Grow(size)
	for _, v := range values {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ";")
			part = strings.TrimSpace(part)
			name, _, _ := strings.Cut(part, "=")
			// "socialgate_session =v" is no cookie to Go, but some upstream
			// parsers read it as one: strip every spelling of the name.
			if part == "" || slices.Contains(gatewayCookies, strings.TrimSpace(name)) {
				continue
			}
			if kept.Len() > 0 {
				kept.WriteString("; ")
			}
			kept.WriteString(part)
		}
	}
	if kept.Len() == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = []string{kept.String()}
}

// owned is the set of request headers the gateway sets or reads on a route:
// its namespace (X-Auth-*, any case, "_" for "-"), Authorization and
// Cookie, and the route's own forward_token headers.
type owned struct {
	extra []string
}

// newOwned returns the set with the route's forward_token headers.
func newOwned(tokenHeaders ...string) owned {
	extra := make([]string, len(tokenHeaders))
	for i, x := range tokenHeaders {
		extra[i] = strings.ToLower(x)
	}
	return owned{extra: extra}
}

// has reports whether name, in any spelling sameHeaderName accepts, is in
// the set.
func (o owned) has(name string) bool {
	if isIdentityHeader(name) || sameHeaderName(name, "authorization") || sameHeaderName(name, "cookie") {
		return true
	}
	for _, x := range o.extra {
		if sameHeaderName(name, x) {
			return true
		}
	}
	return false
}

// smuggled reports whether the request names a header of the set as
// hop-by-hop (Connection: X-Auth-User-Id makes a proxy drop the header
// after the gateway set it, and forward the request without it) or
// declares one as a trailer (it would arrive after the gateway checked the
// headers). HTTP/2 and HTTP/3 servers refuse Connection; trailers come
// with every protocol.
func (o owned) smuggled(r *http.Request) bool {
	for _, v := range r.Header["Connection"] {
		// Split as proxies do (Caddy's removeConnectionHeaders).
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			if o.has(strings.Trim(name, " \t")) {
				return true
			}
		}
	}
	for name := range r.Trailer {
		if o.has(name) {
			return true
		}
	}
	return false
}

// guardTrailers removes the set's headers from the request's trailers as
// its body ends. An HTTP/1.1 request that declares one trailer gets every
// trailer it sends, declared or not, merged into r.Trailer at the end of the
// body, where a proxy copies them upstream; without a declared trailer, Go
// keeps them off the Request handlers see.
func (o owned) guardTrailers(r *http.Request) {
	if r.Trailer == nil || r.Body == nil || r.Body == http.NoBody {
		return
	}
	r.Body = &trailerGuard{ReadCloser: r.Body, trailer: r.Trailer, owned: o}
}

type trailerGuard struct {
	io.ReadCloser
	trailer http.Header
	owned   owned
}

func (b *trailerGuard) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		for name := range b.trailer {
			if b.owned.has(name) {
				delete(b.trailer, name)
			}
		}
	}
	return n, err
}

// stripCredentials removes the gateway's credentials from a request that
// goes upstream: its cookies, and its session tokens whichever credential
// authenticated the request.
func (g *Gateway) stripCredentials(h http.Header) {
	stripGatewayCookies(h)
	g.stripSessionTokens(h)
}

// stripSessionTokens removes every Authorization value that carries one of
// the gateway's session tokens (after any scheme, or alone), whichever
// credential authenticated the request: a cookie next to a token must not
// carry the token upstream.
func (g *Gateway) stripSessionTokens(h http.Header) {
	values := h["Authorization"]
	if !slices.ContainsFunc(values, g.carriesSessionToken) {
		return
	}
	if values = slices.DeleteFunc(values, g.carriesSessionToken); len(values) == 0 {
		delete(h, "Authorization")
		return
	}
	h["Authorization"] = values
}

func (g *Gateway) carriesSessionToken(authorization string) bool {
	_, credentials, _ := strings.Cut(authorization, " ")
	return g.sessions.IsToken(strings.TrimSpace(authorization)) || g.sessions.IsToken(strings.TrimSpace(credentials))
}
