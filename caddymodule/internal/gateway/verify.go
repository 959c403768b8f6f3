package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/forwardauth"
	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
)

// VerifyPath is, under the prefix, where an external proxy asks whether a
// request may pass: VerifyPath for the default policy, VerifyPath/<name>
// for a named one, and VerifyPath/<name>/<original path> for Envoy's
// ext_authz, which appends the original path to its path_prefix.
const VerifyPath = "/verify"

// DefaultPolicy is the name of VerifyPath's own policy.
const DefaultPolicy = "default"

// ForwardAuth is the verify endpoint's configuration.
type ForwardAuth struct {
	// URL is the gateway's origin as browsers reach it
	// (https://auth.example.com): verify's sign-in and reauthorize
	// addresses point there, since the browser is on another host.
	URL string
	// Policies are what each verify address asks of a request, by name:
	// DefaultPolicy is VerifyPath's (every signed-in user the app admits,
	// unless given), any other VerifyPath/<name>'s. A name that is not
	// here is 404.
	Policies map[string]Route
	// Trusted reports whether r comes from a trusted proxy: only such a
	// proxy may name the original request; any other caller gets 403.
	Trusted func(r *http.Request) bool
}

// verifier is the compiled ForwardAuth.
type verifier struct {
	origin   string
	policies map[string]*Policy
	trusted  func(r *http.Request) bool
}

// newVerifier checks and compiles fa; the error names the setting.
func (g *Gateway) newVerifier(fa *ForwardAuth) (*verifier, error) {
	u, err := url.Parse(fa.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("forward_auth: the gateway's URL %q is not an origin like https://auth.example.com", fa.URL)
	}
	if fa.Trusted == nil {
		return nil, errors.New("forward_auth: no way to tell trusted proxies")
	}
	v := &verifier{origin: u.Scheme + "://" + u.Host, policies: map[string]*Policy{}, trusted: fa.Trusted}
	if _, ok := fa.Policies[DefaultPolicy]; !ok {
		v.policies[DefaultPolicy], _ = g.Policy(Route{})
	}
	for name, rt := range fa.Policies {
		if !validPolicyName(name) {
			return nil, fmt.Errorf("forward_auth: policy name %q: want letters, digits, - and _", name)
		}
		if v.policies[name], err = g.Policy(rt); err != nil {
			return nil, fmt.Errorf("forward_auth: policy %q: %w", name, err)
		}
	}
	return v, nil
}

func validPolicyName(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != "" && len(s) <= 64
}

// verifyRest returns what follows VerifyPath in r's path, escapes kept,
// when r addresses verify in its one clean spelling: the escaped path is
// the prefix, VerifyPath, and optionally /<name>[/<Envoy's original
// path>], with no percent-escape before the original path. A proxy's
// router compares the path as sent (Traefik: /_auth%2fverify is not under
// PathPrefix(`/_auth/verify`)), while the decoded path would name verify:
// a public route that keeps verify out by its path must not reach it by
// another spelling (%2f, %2F, %5f, %76...), which is no endpoint (404).
func (g *Gateway) verifyRest(r *http.Request) (string, bool) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), g.prefix)
	if !ok {
		return "", false
	}
	rest, ok = underVerify(rest)
	name, _, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	return rest, ok && !strings.Contains(name, "%")
}

// underVerify returns what follows VerifyPath in rest (a path under the
// prefix), and whether rest is VerifyPath or under it.
func underVerify(rest string) (string, bool) {
	policy, ok := strings.CutPrefix(rest, VerifyPath)
	return policy, ok && (policy == "" || policy[0] == '/')
}

// forwardedTLS marks a request that reached the trusted proxy over HTTPS:
// the session cookie's name, and what Guard reads as the request's scheme,
// follow the browser's connection, not the proxy's.
var forwardedTLS = &tls.ConnectionState{}

// verify answers an external proxy: 200 with the identity headers (those
// that Guard's Pass sets upstream, each present, empty when it has no
// value) when the original request may pass under the policy of rest
// (what follows VerifyPath); else what Guard
// answers, with the sign-in address made absolute on the gateway's URL. A
// proxy that takes only 2xx, 401 and 403 (the X-Original-URL form: nginx
// auth_request, ingress-nginx) gets 401 where a browser would have been
// redirected, with the address in Location for its error_page to follow.
// Only a trusted proxy is answered (403 for any other peer, whatever the
// policy name), and a request that carries a header the answer sets (the
// gateway's namespace in any spelling, the policy's forward_token headers)
// is 400: the client sent it, and a proxy copies back only what it lists.
// It writes nothing to the store, except that a request carrying two live
// sessions' cookies ends both (session.Ambiguous). trusted, when not nil, tells a trusted
// proxy instead of ForwardAuth.Trusted (VerifyHandler's listener).
func (g *Gateway) verify(w http.ResponseWriter, r *http.Request, rest string, trusted func(*http.Request) bool) {
	v := g.verifier
	if v == nil {
		g.notFound(w, r)
		return
	}
	if trusted == nil {
		trusted = v.trusted
	}
	// Its refusals may be shown on the app's host: links on the gateway.
	fail := func(status int, code string, msg i18n.Message) {
		g.fail(&verifyWriter{ResponseWriter: w, origin: v.origin, redirect: true, g: g}, r, status, code, msg)
	}
	// Trust first: whoever is not a trusted proxy learns nothing, not even
	// which policy names exist (403 for every name).
	if !trusted(r) {
		fail(http.StatusForbidden, "untrusted_proxy", i18n.M("error.untrusted_proxy"))
		return
	}
	name, _, envoy := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	if name == "" {
		name = DefaultPolicy
	}
	p, ok := v.policies[name]
	if !ok {
		fail(http.StatusNotFound, "no_such_policy", i18n.M("error.no_forward_auth_policy"))
		return
	}
	// The client's own X-Auth-* headers reach here through every proxy:
	// whichever of them the proxy does not overwrite from the answer would
	// reach the app beside the real identity.
	if p.owned.carriesGatewayHeader(r.Header) {
		fail(http.StatusBadRequest, "header_not_allowed", i18n.M("error.gateway_header_sent"))
		return
	}
	var o forwardauth.Original
	var err error
	if envoy {
		// The path as Envoy sent it, percent-escapes kept.
		uri := strings.TrimPrefix(r.URL.EscapedPath(), g.prefix+VerifyPath+"/"+name)
		if r.URL.RawQuery != "" {
			uri += "?" + r.URL.RawQuery
		}
		o, err = forwardauth.ReadEnvoy(r.Header, true, r.Method, r.Host, uri)
	} else {
		o, err = forwardauth.Read(r.Header, true)
	}
	if err != nil {
		fail(http.StatusBadRequest, "invalid_forwarded_request", i18n.M("error.forwarded_request_invalid", "reason", err.Error()))
		return
	}
	// The original request as the browser made it: Guard reads its method,
	// scheme, path and Accept, and its cookies (the proxy sent them on).
	// One allocation holds it, its URL and the writer.
	c := &verifyCall{req: *r, w: verifyWriter{ResponseWriter: w, origin: v.origin, redirect: o.Redirect, original: o, g: g}}
	if !c.setURL(o.URI) {
		fail(http.StatusBadRequest, "invalid_forwarded_request", i18n.M("error.forwarded_request_invalid", "reason", "its path does not decode"))
		return
	}
	orig, vw := &c.req, &c.w
	orig.Method, orig.Host, orig.URL, orig.RequestURI, orig.TLS = o.Method, o.Host, &c.url, o.URI, nil
	if o.Scheme == "https" {
		orig.TLS = forwardedTLS
	}
	pass, ok, err := g.Guard(vw, orig, o.URL(), p)
	if err != nil {
		g.logger.Error("verify: deciding", zap.Error(err))
		g.fail(vw, orig, Status(err), "unavailable", i18n.M("error.cannot_decide"))
		return
	}
	if !ok {
		return
	}
	pass.setHeaders(w.Header(), true)
	setAppCredentials(w.Header(), pass.Request.Header)
	w.WriteHeader(http.StatusOK)
}

// VerifyHandler serves the verify endpoint alone, for a listener of its own
// outside Caddy (config.VerifyListener): VerifyPath and VerifyPath/<rest>
// under the prefix, in their one clean spelling (verifyRest), are verify's
// answers, with trusted telling a trusted proxy; every other path is a bare
// 404, nothing else of the gateway. It never reads a request's body.
func (g *Gateway) VerifyHandler(trusted func(r *http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := g.verifyRest(r)
		if !ok {
			http.NotFound(w, r)
			return
		}
		g.verify(w, r, rest, trusted)
	})
}

// setAppCredentials sets on verify's answer h the Cookie and Authorization
// headers the app is to get, from the request's (req) as Guard's pass left
// them: cleaned of every gateway cookie and session token
// (stripCredentials). A proxy replaces the request's with the answer's
// (nginx's auth_request_set, Traefik's authResponseHeaders, Caddy's
// copy_headers), or removes a header the answer lacks; Envoy, which keeps a
// header the answer lacks, is told to remove it (envoyHeadersToRemove, one
// comma-separated value, which Envoy splits on commas).
func setAppCredentials(h, req http.Header) {
	cookie := setAppCookies(h, req)
	authorization := setAppAuthorization(h, req)
	switch {
	case !cookie && !authorization:
		h[envoyHeadersToRemove] = envoyRemoveBoth
	case !cookie:
		h[envoyHeadersToRemove] = envoyRemoveCookie
	case !authorization:
		h[envoyHeadersToRemove] = envoyRemoveAuthorization
	}
}

// setAppCookies sets on h the request's cookies (req), as one line, and
// reports whether any is left. Never logged: Caddy's logs redact a
// response's Cookie as a request's.
func setAppCookies(h, req http.Header) bool {
	c := req["Cookie"]
	if len(c) == 1 && !noCookie(c[0]) {
		h["Cookie"] = c[:1:1]
		return true
	}
	// Several lines (HTTP/2 sends one per cookie) and no gateway cookie
	// among them, or the strip would have joined them: one line, as a proxy
	// that reads one value of the answer (nginx) expects.
	var b strings.Builder
	for _, v := range c {
		if noCookie(v) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v)
	}
	if b.Len() > 0 {
		h["Cookie"] = []string{b.String()}
		return true
	}
	return false
}

// setAppAuthorization sets on h the request's Authorization (req), which
// the pass has cleaned of the gateway's session tokens (stripSessionTokens:
// a native app's Bearer token must not reach the app, which could replay
// it at the gateway and every other app), and reports whether one is left.
// Only the first value left is answered: Authorization holds one
// credential (RFC 9110 11.6.2, not a list), nginx reads one value of the
// answer, and joining credentials with commas would hand the app one that
// no client sent. Never logged: Caddy's logs redact Authorization.
func setAppAuthorization(h, req http.Header) bool {
	a := req["Authorization"]
	if len(a) == 0 {
		return false
	}
	h["Authorization"] = a[:1:1]
	return true
}

// envoyHeadersToRemove lists, in an ext_authz HTTP service's 200, the
// request headers Envoy removes before it sends the request on; its
// allowed_upstream_headers only overwrite those the answer has.
const envoyHeadersToRemove = "X-Envoy-Auth-Headers-To-Remove"

// Its values for an answer without Cookie, Authorization or both; each
// one's capacity is its length, so a handler that appends to it gets a
// copy.
var (
	envoyRemoveCookie        = []string{"cookie"}[:1:1]
	envoyRemoveAuthorization = []string{"authorization"}[:1:1]
	envoyRemoveBoth          = []string{"cookie, authorization"}[:1:1]
)

// noCookie reports whether a Cookie line holds no cookie at all.
func noCookie(v string) bool { return strings.Trim(v, "; \t") == "" }

// verifyCall is one verify request's original request and writer.
type verifyCall struct {
	req http.Request
	url url.URL
	w   verifyWriter
}

// setURL sets c.url to the origin-form uri (which forwardauth.Read
// checked), decoding the path only when it holds a percent-escape.
func (c *verifyCall) setURL(uri string) bool {
	path, query, _ := strings.Cut(uri, "?")
	c.url.Path, c.url.RawQuery = path, query
	if strings.Contains(path, "%") {
		decoded, err := url.PathUnescape(path)
		if err != nil {
			return false
		}
		c.url.Path, c.url.RawPath = decoded, path
	}
	return true
}

// verifyWriter turns Guard's answers into a proxy's: addresses on the
// gateway made absolute, and, for a proxy that does not pass redirects on,
// a redirect turned into 401.
type verifyWriter struct {
	http.ResponseWriter
	origin   string
	redirect bool
	original forwardauth.Original
	g        *Gateway // for its sign-in URL (a method value would allocate)
}

func (w *verifyWriter) WriteHeader(code int) {
	h := w.Header()
	if loc := h.Get("Location"); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
		h.Set("Location", w.origin+loc)
	}
	if code == http.StatusUnauthorized && h.Get("Location") == "" {
		h.Set("Location", w.origin+w.g.signInURL(w.original.URL()))
	}
	if !w.redirect && code >= 300 && code < 400 {
		code = http.StatusUnauthorized
	}
	w.ResponseWriter.WriteHeader(code)
}

// linkBase is what the gateway's links on a page or in JSON start with, and
// whether the answer may be shown on another host than the gateway's: for
// verify's answers, which a proxy may hand to the browser on the app's host,
// the gateway's origin, and true; else "" (links relative to the gateway's
// own host) and false. Such an answer carries no session-bound token
// (a CSRF token there would be readable by the app's origin).
func (g *Gateway) linkBase(w http.ResponseWriter) (string, bool) {
	if vw, ok := w.(*verifyWriter); ok {
		return vw.origin, true
	}
	return "", false
}
