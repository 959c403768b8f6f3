package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/confcheck"
	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// Requirement is a route's need: a linked account of Provider, in good
// standing, whose approved scopes cover Scopes.
type Requirement struct {
	Provider string
	Scopes   []string
}

// checkRequirement validates a requirement against the names of the
// configured providers: the error names an unknown provider and what it may
// have meant, or a scope that is several.
func checkRequirement(req Requirement, providers []string) error {
	if !slices.Contains(providers, req.Provider) {
		return fmt.Errorf("no provider named %s is configured (%s)", req.Provider, confcheck.Hint(req.Provider, providers))
	}
	return provider.CheckScopes(req.Scopes)
}

// resolve checks a route's requirements for a session and fetches the
// fresh access tokens it forwards (each forwarded provider is also
// required). It returns the tokens, or the first unmet requirement; an
// expired token its provider cannot refresh now is tokens.ErrUnavailable.
// One read of the linked accounts serves both, and a route that asks for
// neither reads nothing.
func (g *Gateway) resolve(ctx context.Context, sess *store.Session, p *Policy) ([]Token, *Requirement, error) {
	if len(p.require) == 0 && len(p.forward) == 0 {
		return nil, nil, nil
	}
	accounts, err := g.store.ExternalAccounts(ctx, sess.UserID)
	if err != nil {
		return nil, nil, err
	}
	for i, req := range p.require {
		if matching(g, accounts, req) == nil {
			return nil, &p.require[i], nil
		}
	}
	var out []Token
	for _, f := range p.forward {
		req := Requirement{Provider: f.Provider}
		a := matching(g, accounts, req)
		if a == nil {
			return nil, &req, nil
		}
		fresh, err := g.tokens.Fresh(ctx, a)
		if errors.Is(err, tokens.ErrNeedsReauthorization) {
			return nil, &req, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if out == nil {
			out = make([]Token, 0, len(p.forward))
		}
		out = append(out, Token{Provider: f.Provider, Header: f.Header, Value: fresh.Tokens.AccessToken})
	}
	return out, nil, nil
}

// matching returns the user's first account of req.Provider in good
// standing whose approved scopes cover req.Scopes.
func matching(g *Gateway, accounts []*store.ExternalAccount, req Requirement) *store.ExternalAccount {
	p := g.byName[req.Provider]
	for _, a := range accounts {
		if a.Provider == req.Provider && a.Status != store.StatusNeedsReauthorization &&
			len(missingScopes(p, a.ApprovedScopes, req.Scopes)) == 0 {
			return a
		}
	}
	return nil
}

// reauthorizeURL is the page that asks the user to grant what req needs and
// then returns to returnTo.
func (g *Gateway) reauthorizeURL(req Requirement, returnTo string) string {
	q := url.Values{"provider": {req.Provider}, "return_to": {returnTo}}
	if len(req.Scopes) > 0 {
		q.Set("scopes", strings.Join(req.Scopes, " "))
	}
	return g.prefix + "/reauthorize?" + q.Encode()
}

// denyUnmet answers a request whose route requirement is unmet: a browser is
// sent to the reauthorize page (one click, a POST with a CSRF token, starts
// the provider round trip and comes back); an API client gets 403 JSON with
// the reauthorize_url to open in a browser.
func (g *Gateway) denyUnmet(w http.ResponseWriter, r *http.Request, originalURI string, req Requirement) {
	base, _ := g.linkBase(w)
	target := base + g.reauthorizeURL(req, originalURI)
	if wantsHTML(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	msg := fmt.Sprintf("This resource needs a connected %s account.", req.Provider)
	if len(req.Scopes) > 0 {
		msg = fmt.Sprintf("This resource needs a connected %s account with access: %s.", req.Provider, strings.Join(req.Scopes, " "))
	}
	writeJSON(w, http.StatusForbidden, errorBody("reauthorization_required", msg,
		// connect_url and reauthorize_url are the same page: it connects a
		// missing account or renews an existing one, whichever is needed.
		map[string]any{"reauthorize_url": target, "connect_url": target, "provider": "oauth_" + req.Provider, "scopes": req.Scopes}))
}

// tokenUnavailable answers a request whose forwarded token could not be
// refreshed (err): 502 oauth_provider_refused when the provider refused the
// refresh (provider.ErrRefused: the client's settings, not an outage), else
// 503 with Retry-After; the session itself is unaffected.
func (g *Gateway) tokenUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, provider.ErrRefused) {
		g.fail(w, r, http.StatusBadGateway, "oauth_provider_refused", i18n.M("error.provider_refused"))
		return
	}
	w.Header().Set("Retry-After", "30")
	g.fail(w, r, http.StatusServiceUnavailable, "oauth_provider_unavailable", i18n.M("error.provider_unavailable"))
}

// reauthorizePage asks the signed-in user to connect a provider or grant it
// more scopes. Starting the flow takes a POST with a CSRF token, so another
// site cannot start it for the user.
func (g *Gateway) reauthorizePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	returnTo := g.flow.Sanitize(q.Get("return_to"))
	sess := g.signedIn(w, r, r.URL.RequestURI())
	if sess == nil {
		return
	}
	p, ok := g.byName[q.Get("provider")]
	if !ok {
		g.fail(w, r, http.StatusNotFound, "unknown_provider", i18n.M("error.unknown_provider"))
		return
	}
	scopes := strings.Fields(q.Get("scopes"))
	view := &ui.ReauthorizeView{ProviderName: p.DisplayName(), Provider: p.Name(), Scopes: scopes,
		ActionURL: g.prefix + "/account/reauthorize", Connect: true}
	accounts, err := g.store.ExternalAccounts(r.Context(), sess.UserID)
	if err != nil {
		g.internal(w, r, "reading accounts", err)
		return
	}
	for _, a := range accounts {
		if a.Provider == p.Name() {
			view.AccountID, view.Connect = a.ID, false
			break
		}
	}
	g.ui.Render(w, r, http.StatusOK, "reauthorize", ui.Page{Title: i18n.M("reauthorize.title"), Reauthorize: view,
		ReturnTo: returnTo, CSRFToken: g.sessions.CSRFToken(sess.ID)})
}
