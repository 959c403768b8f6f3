package gateway

import (
	"context"
	"net/http"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// Rules reads allow_emails and allow_groups rules; a group rule must name
// a configured provider.
func (g *Gateway) Rules(emails, groups []string) (*access.Rules, error) {
	return access.Parse(emails, groups, g.ProviderNames())
}

// ProviderNames lists the configured providers' names, in order.
func (g *Gateway) ProviderNames() []string {
	names := make([]string, 0, len(g.Providers))
	for _, p := range g.Providers {
		names = append(names, p.Name())
	}
	return names
}

// Admitted reports whether the session's user may use a route: the app's
// rules (Config.Admit) and the route's (nil for none) each need one of the
// user's verified addresses or linked accounts to match. It is asked on every request, so a reload
// that narrows the rules shuts out signed-in users at once. With no rule at
// all it reads nothing.
func (g *Gateway) Admitted(ctx context.Context, sess *store.Session, route *access.Rules) (bool, error) {
	if !g.Admit.Restricts() && !route.Restricts() {
		return true, nil
	}
	u, err := g.Store.User(ctx, sess.UserID)
	if err != nil {
		return false, err
	}
	accounts, err := g.Store.ExternalAccounts(ctx, sess.UserID)
	if err != nil {
		return false, err
	}
	return g.Admit.Admits(u, accounts) && route.Admits(u, accounts), nil
}

// DenyNotAdmitted answers a signed-in request that allow_emails and
// allow_groups do not admit: 403, for a browser a page with a sign-out button
// (to sign in with another account), for the rest JSON.
func (g *Gateway) DenyNotAdmitted(w http.ResponseWriter, r *http.Request, sess *store.Session) {
	msg := i18n.M("error.not_admitted")
	metrics.NotAdmitted.Inc()
	w.Header().Set("Cache-Control", "no-store")
	if !wantsHTML(r) {
		writeJSON(w, http.StatusForbidden, errorBody("not_admitted", msg.String(), nil))
		return
	}
	label := sess.Email
	if label == "" {
		label = sess.Name
	}
	g.UI.Render(w, r, http.StatusForbidden, "error", ui.Page{Title: ui.ErrorTitle(http.StatusForbidden), Error: msg,
		SignInURL: g.Prefix + "/sign-in", SignOutURL: g.Prefix + "/sign-out",
		SignedIn: true, UserLabel: label, CSRFToken: g.Sessions.CSRFToken(sess.ID)})
}
