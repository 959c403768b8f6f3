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

// admitted reports whether the session's user may use a route: the app's
// rules (Config.Admit) and the route's (nil for none) each need one of the
// user's verified addresses or linked accounts to match. It is asked on
// every request, so a reload that narrows the rules shuts out signed-in
// users at once; it is the place for any other check of the user on every
// request (the user and its accounts come from the store's cache). With no
// rule at all it reads nothing.
func (g *Gateway) admitted(ctx context.Context, sess *store.Session, route *access.Rules) (bool, error) {
	if !g.admit.Restricts() && !route.Restricts() {
		return true, nil
	}
	u, err := g.store.User(ctx, sess.UserID)
	if err != nil {
		return false, err
	}
	accounts, err := g.store.ExternalAccounts(ctx, sess.UserID)
	if err != nil {
		return false, err
	}
	return g.admit.Admits(u, accounts) && route.Admits(u, accounts), nil
}

// denyNotAdmitted answers a signed-in request that allow_emails and
// allow_groups do not admit: 403, for a browser a page with a sign-out button
// (to sign in with another account), for the rest JSON. Through verify the
// page may be shown on the app's host (Caddy's forward_auth and Traefik pass
// it on): it carries no session-bound token there, and links to the
// gateway's own sign-out page instead of holding its form.
func (g *Gateway) denyNotAdmitted(w http.ResponseWriter, r *http.Request, sess *store.Session) {
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
	base, elsewhere := g.linkBase(w)
	page := ui.Page{Title: ui.ErrorTitle(http.StatusForbidden), Error: msg,
		SignInURL: base + g.prefix + "/sign-in", SignOutURL: base + g.prefix + "/sign-out",
		SignedIn: true, UserLabel: label}
	if !elsewhere {
		page.CSRFToken = g.sessions.CSRFToken(sess.ID)
	}
	g.ui.Render(w, r, http.StatusForbidden, "error", page)
}
