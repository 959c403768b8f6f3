package gateway

import (
	"context"
	"net/http"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// Admitted reports whether the session's user may use a route: the app's
// allow_emails (Config.AllowEmails) and the route's (nil for none) each need
// one of the user's verified addresses. It is asked on every request, so a
// reload that narrows the rules shuts out signed-in users at once. With no
// rule at all it reads nothing.
func (g *Gateway) Admitted(ctx context.Context, sess *store.Session, route *access.Emails) (bool, error) {
	if !g.AllowEmails.Restricts() && !route.Restricts() {
		return true, nil
	}
	accounts, err := g.accountsOf(ctx, sess.UserID)
	if err != nil {
		return false, err
	}
	return g.AllowEmails.AllowsAccounts(accounts) && route.AllowsAccounts(accounts), nil
}

// DenyNotAdmitted answers a signed-in request that allow_emails does not
// admit: 403, for a browser a page with a sign-out button (to sign in with
// another account), for the rest JSON.
func (g *Gateway) DenyNotAdmitted(w http.ResponseWriter, r *http.Request, sess *store.Session) {
	const msg = "Your account has no verified email address that this page admits. Sign out, then sign in with another account."
	w.Header().Set("Cache-Control", "no-store")
	if !wantsHTML(r) {
		writeJSON(w, http.StatusForbidden, errorBody("not_admitted", msg, nil))
		return
	}
	label := sess.Email
	if label == "" {
		label = sess.Name
	}
	g.UI.Render(w, http.StatusForbidden, "error", ui.Page{Title: "Not allowed here", Error: msg,
		SignInURL: g.Prefix + "/sign-in", SignOutURL: g.Prefix + "/sign-out",
		SignedIn: true, UserLabel: label, CSRFToken: g.Sessions.CSRFToken(sess.ID)})
}
