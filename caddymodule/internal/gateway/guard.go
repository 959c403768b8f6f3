package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
)

// Pass is a request that Guard lets through, and who it is from.
type Pass struct {
	// Request is the request to send on: cleaned of the gateway's
	// credentials (its cookies, its session tokens), and carrying the
	// session for a socialgate handler nested in the route.
	Request *http.Request
	// Session is the signed-in session; nil for an anonymous request on a
	// public route.
	Session *store.Session
	// Identity is the session's signed identity token (X-Auth-Jwt).
	Identity string
	// Tokens are the fresh access tokens the route forwards.
	Tokens []Token
}

// Token is a provider access token that goes upstream.
type Token struct {
	Provider string // the provider's name
	Header   string // the header that carries it
	Value    string
}

// SetHeaders sets on h what the upstream learns of the pass: the identity
// headers and the forwarded tokens (in Authorization as "Bearer <token>").
// An anonymous pass sets nothing.
func (p *Pass) SetHeaders(h http.Header) { p.setHeaders(h, false) }

// setHeaders is SetHeaders; with every, each identity header is set, empty
// when it has no value (verify's answer: see setIdentityHeaders).
func (p *Pass) setHeaders(h http.Header, every bool) {
	if p.Session == nil {
		return
	}
	setIdentityHeaders(h, p.Session, p.Identity, every)
	for _, t := range p.Tokens {
		v := t.Value
		if t.Header == "Authorization" {
			v = "Bearer " + v
		}
		h[t.Header] = []string{v}
	}
}

// errSigning wraps a failure to sign the identity token.
var errSigning = errors.New("signing the identity token")

// Status is the HTTP status of a failure Guard returned: 500 when the
// identity token could not be signed, 503 when the store could not be
// read or a provider could not refresh a token for a reason other than
// being down.
func Status(err error) int {
	if errors.Is(err, errSigning) {
		return http.StatusInternalServerError
	}
	return http.StatusServiceUnavailable
}

// Guard decides whether r may go on under p, r being the request as it
// goes upstream and uri the request's URI as the client sent it (where a
// browser comes back to after signing in). It reads the decision in this
// order, each step refusing what it must:
//
//  1. smuggling: a Connection header or a trailer naming one of the
//     gateway's headers, or an Upgrade to another HTTP version (h2c), which
//     would carry later requests past it (400);
//  2. a public route: an ambiguous path (400), else the request passes,
//     with its session when it has one the app admits;
//  3. the session: the one an outer socialgate handler authenticated, or
//     the request's cookie or session token; none is a sign-in redirect
//     for a browser, 401 for anything else;
//  4. the user: the app's and the route's allow rules (403), and any other
//     check of the user on every request;
//  5. the route's requirements and forwarded tokens: unmet is a reauthorize
//     redirect or 403, a token its provider cannot refresh now 503.
//
// A request that may go on gets its Pass and ok; one Guard answered gets ok
// false. err reports a failure to decide (the store or the signer failed),
// which the caller answers with Status(err).
func (g *Gateway) Guard(w http.ResponseWriter, r *http.Request, uri string, p *Policy) (pass Pass, ok bool, err error) {
	// Nothing may remove or add the gateway's headers after it has set or
	// checked them: not a proxy obeying Connection, nor a late trailer.
	if p.owned.smuggled(r) {
		g.fail(w, r, http.StatusBadRequest, "header_not_allowed",
			i18n.M("error.header_not_allowed"))
		return Pass{}, false, nil
	}
	if upgradesHTTP(r.Header) {
		g.fail(w, r, http.StatusBadRequest, "upgrade_not_allowed", i18n.M("error.upgrade_not_allowed"))
		return Pass{}, false, nil
	}
	p.owned.guardTrailers(r)
	if p.public {
		return g.guardPublic(w, r, p)
	}
	sess, r, err := g.session(r)
	if errors.Is(err, session.ErrNoSession) {
		// Two live sessions' cookies: both end, so a planted one locks no
		// one out for longer than this request.
		if err := g.sessions.EndAmbiguous(r.Context(), err); err != nil {
			return Pass{}, false, fmt.Errorf("ending the sessions of two cookies: %w", err)
		}
		g.challenge(w, r, uri)
		return Pass{}, false, nil
	}
	if err != nil {
		return Pass{}, false, fmt.Errorf("reading session: %w", err)
	}
	admitted, err := g.admitted(r.Context(), sess, p.allow)
	if err != nil {
		return Pass{}, false, fmt.Errorf("reading linked accounts: %w", err)
	}
	if !admitted {
		g.denyNotAdmitted(w, r, sess)
		return Pass{}, false, nil
	}
	toks, unmet, err := g.resolve(r.Context(), sess, p)
	switch {
	case errors.Is(err, tokens.ErrUnavailable):
		g.tokenUnavailable(w, r, err)
		return Pass{}, false, nil
	case err != nil:
		return Pass{}, false, fmt.Errorf("reading linked accounts: %w", err)
	case unmet != nil:
		g.denyUnmet(w, r, uri, *unmet)
		return Pass{}, false, nil
	}
	return g.pass(r, sess, toks, p)
}

// guardPublic lets a request through a public route with or without a
// session: with one the app admits, it carries the identity as on a
// protected route; without, it goes on anonymous. A path that a server
// behind the gateway could read as another one is refused, so that no
// backend maps it onto a protected path.
func (g *Gateway) guardPublic(w http.ResponseWriter, r *http.Request, p *Policy) (Pass, bool, error) {
	if ambiguousPath(r.URL.Path) {
		g.fail(w, r, http.StatusBadRequest, "ambiguous_path", i18n.M("error.ambiguous_path"))
		return Pass{}, false, nil
	}
	// No session, or none readable now: the request goes on anonymous.
	sess, r, err := g.session(r)
	if err == nil {
		if admitted, err := g.admitted(r.Context(), sess, nil); admitted && err == nil {
			return g.pass(r, sess, nil, p)
		}
	}
	g.stripCredentials(r.Header)
	return Pass{Request: r}, true, nil
}

// pass lets a signed-in request through with its identity token and the
// route's tokens, cleaned of the gateway's credentials.
func (g *Gateway) pass(r *http.Request, sess *store.Session, toks []Token, p *Policy) (Pass, bool, error) {
	identity, err := g.identity.Token(sess, p.audience)
	if err != nil {
		return Pass{}, false, fmt.Errorf("%w: %w", errSigning, err)
	}
	g.stripCredentials(r.Header)
	return Pass{Request: r, Session: sess, Identity: identity, Tokens: toks}, true, nil
}

// sessionKey carries the session Guard authenticated to a socialgate
// handler nested in the route: it reuses the session, since the outer one
// has removed the credentials.
type sessionKey struct{}

// session returns the request's live session, or session.ErrNoSession,
// and the request carrying it for nested handlers.
func (g *Gateway) session(r *http.Request) (*store.Session, *http.Request, error) {
	if sess, ok := r.Context().Value(sessionKey{}).(*store.Session); ok {
		return sess, r, nil
	}
	sess, err := g.authenticate(r)
	if err != nil {
		return nil, r, err
	}
	return sess, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)), nil
}

// challenge answers a request that needs a session and has none: a browser
// navigating (GET or HEAD asking for HTML) is sent to the sign-in page and
// brought back to uri afterwards; anything else gets 401 JSON with
// sign_in_url.
func (g *Gateway) challenge(w http.ResponseWriter, r *http.Request, uri string) {
	base, _ := g.linkBase(w)
	signIn := base + g.signInURL(uri)
	if wantsHTML(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, signIn, http.StatusFound)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="socialgate"`)
	writeJSON(w, http.StatusUnauthorized, errorBody("unauthenticated", "Sign in to access this resource.", map[string]any{"sign_in_url": signIn}))
}

// signInURL is the sign-in page's address that comes back to uri.
func (g *Gateway) signInURL(uri string) string {
	return g.prefix + "/sign-in?return_to=" + url.QueryEscape(uri)
}
