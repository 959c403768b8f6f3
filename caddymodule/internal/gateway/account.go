package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/flow"
	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// errLastIdentity refuses to unlink the only account a user can sign in with.
var errLastIdentity = errors.New("last sign-in identity")

// notices are the account page's fixed messages, selected by ?notice= and
// ?error=: the page never reflects text from the URL.
var notices = map[string]i18n.Message{
	"connected":        i18n.M("account.notice_connected"),
	"reauthorized":     i18n.M("account.notice_reauthorized"),
	"disconnected":     i18n.M("account.notice_disconnected"),
	"signed_out_other": i18n.M("account.notice_signed_out_other"),
	"reauthenticated":  i18n.M("account.notice_reauthenticated"),
	"last_identity":    i18n.M("account.notice_last_identity"),
	"linked_by_email":  i18n.M("account.notice_linked_by_email"),
}

// signedIn returns the request's session or answers the request (sign-in
// redirect, 401) and returns nil.
func (g *Gateway) signedIn(w http.ResponseWriter, r *http.Request, here string) *store.Session {
	sess, err := g.authenticate(r)
	if isNoSession(err) {
		g.challenge(w, r, here)
		return nil
	}
	if err != nil {
		g.internal(w, r, "reading session", err)
		return nil
	}
	return sess
}

// postedBySession checks a form POST's CSRF token against its session.
func (g *Gateway) postedBySession(w http.ResponseWriter, r *http.Request) *store.Session {
	sess := g.signedIn(w, r, g.prefix+"/account")
	if sess == nil {
		return nil
	}
	if !g.sessions.CheckCSRF(sess.ID, r.PostFormValue("csrf_token")) {
		g.fail(w, r, http.StatusForbidden, "invalid_csrf_token", i18n.M("error.form_expired"))
		return nil
	}
	return sess
}

// postedRecently is postedBySession for a sensitive account action
// (connecting, disconnecting, signing out other sessions): when the
// session's person last authenticated longer ago than the app allows, it
// sends them through their provider again first (the form was checked, so
// that flow is bound to this session, like connect) and returns nil. They
// come back to return_to, or to the account page, and click again.
func (g *Gateway) postedRecently(w http.ResponseWriter, r *http.Request) *store.Session {
	sess := g.postedBySession(w, r)
	if sess == nil || !g.flow.NeedsReauthentication(sess) {
		return sess
	}
	a, p, err := g.reauthAccount(r.Context(), sess)
	if err != nil {
		g.internal(w, r, "reading accounts", err)
		return nil
	}
	if a == nil {
		g.fail(w, r, http.StatusForbidden, "reauthentication_unavailable", i18n.M("error.reauthentication_unavailable"))
		return nil
	}
	g.startFlow(w, r, flow.Request{Provider: p, Mode: flow.ModeReauthenticate, Session: sess, Account: a,
		ReturnTo: orDefault(r.PostFormValue("return_to"), g.prefix+"/account?notice=reauthenticated")})
	return nil
}

// reauthAccount is the account a session's person authenticates again
// with: the one the session signed in with while it is linked and its
// provider signs in, else the user's first account whose provider does;
// nil when there is none.
func (g *Gateway) reauthAccount(ctx context.Context, sess *store.Session) (*store.ExternalAccount, *provider.Provider, error) {
	accounts, err := g.store.ExternalAccounts(ctx, sess.UserID)
	if err != nil {
		return nil, nil, err
	}
	var first *store.ExternalAccount
	for _, a := range accounts {
		if p, ok := g.byName[a.Provider]; ok && p.SignIn() {
			if a.ID == sess.AccountID {
				return a, p, nil
			}
			if first == nil {
				first = a
			}
		}
	}
	if first == nil {
		return nil, nil, nil
	}
	return first, g.byName[first.Provider], nil
}

// accountPage shows the profile, connected accounts and sessions.
func (g *Gateway) accountPage(w http.ResponseWriter, r *http.Request) {
	sess := g.signedIn(w, r, g.prefix+"/account")
	if sess == nil {
		return
	}
	ctx := r.Context()
	user, err := g.store.User(ctx, sess.UserID)
	if errors.Is(err, store.ErrNotFound) { // deleted a moment ago
		g.challenge(w, r, g.prefix+"/account")
		return
	}
	if err != nil {
		g.internal(w, r, "reading user", err)
		return
	}
	accounts, err := g.store.ExternalAccounts(ctx, user.ID)
	if err != nil {
		g.internal(w, r, "reading accounts", err)
		return
	}
	sessions, err := g.store.Sessions(ctx, user.ID)
	if err != nil {
		g.internal(w, r, "reading sessions", err)
		return
	}
	view := &ui.AccountView{
		Name: user.Name, ImageURL: user.ImageURL,
		AppURL:          "/",
		ConnectURL:      g.prefix + "/account/connect",
		DisconnectURL:   g.prefix + "/account/disconnect",
		ReauthorizeURL:  g.prefix + "/account/reauthorize",
		RevokeOthersURL: g.prefix + "/account/sessions/revoke-others",
	}
	for _, e := range user.Emails {
		view.Emails = append(view.Emails, ui.EmailView{Email: e.Email, Verified: e.Verified})
	}
	linked := map[string]bool{}
	for _, a := range accounts {
		linked[a.Provider] = true
		row := ui.AccountRow{ID: a.ID, Provider: a.Provider, ProviderName: a.Provider, Email: a.Email,
			Username: a.Username, Scopes: a.ApprovedScopes,
			NeedsReauthorization: a.Status == store.StatusNeedsReauthorization,
			CanDisconnect:        g.canSignInWithout(accounts, a.ID)}
		if p, ok := g.byName[a.Provider]; ok {
			row.ProviderName, row.Kind = p.DisplayName(), p.Kind()
			row.MissingScopes = missingScopes(p, a.ApprovedScopes, p.RequiredScopes())
		}
		view.Accounts = append(view.Accounts, row)
	}
	for _, p := range g.providers {
		if !linked[p.Name()] {
			view.Connect = append(view.Connect, ui.ProviderButton{Name: p.Name(), DisplayName: p.DisplayName(), Kind: p.Kind()})
		}
	}
	for _, s := range sessions {
		view.Sessions = append(view.Sessions, ui.SessionRow{Device: ui.Device(s.UserAgent), IP: s.IP,
			Created: s.CreatedAt.UTC().Format(time.DateTime + " UTC"), Current: s.ID == sess.ID})
	}
	q := r.URL.Query()
	g.ui.Render(w, r, http.StatusOK, "account", ui.Page{
		Title: i18n.M("account.title"), Account: view, CSRFToken: g.sessions.CSRFToken(sess.ID),
		SignOutURL: g.prefix + "/sign-out", Notice: notices[q.Get("notice")], Error: notices[q.Get("error")],
		ContinueURL: continueURL(g.flow.Sanitize, q.Get("return_to")),
	})
}

// continueURL is where the account page's Continue button leads: the
// sanitized return_to, when one was given.
func continueURL(sanitize func(string) string, returnTo string) string {
	if returnTo == "" {
		return ""
	}
	return sanitize(returnTo)
}

// canSignInWithout reports whether the user keeps a sign-in-capable account
// when the account without is gone.
func (g *Gateway) canSignInWithout(accounts []*store.ExternalAccount, without string) bool {
	for _, a := range accounts {
		if p, ok := g.byName[a.Provider]; ok && a.ID != without && p.SignIn() {
			return true
		}
	}
	return false
}

// accountConnect starts linking another provider to the signed-in user.
func (g *Gateway) accountConnect(w http.ResponseWriter, r *http.Request) {
	sess := g.postedRecently(w, r)
	if sess == nil {
		return
	}
	p, ok := g.byName[r.PostFormValue("provider")]
	if !ok {
		g.flowError(w, r, flow.UnknownProvider(r.PostFormValue("provider")))
		return
	}
	g.startFlow(w, r, flow.Request{Provider: p, Mode: flow.ModeConnect, Session: sess,
		ReturnTo: orDefault(r.PostFormValue("return_to"), g.prefix+"/account?notice=connected"),
		Scopes:   r.PostForm["scopes"]})
}

// accountReauthorize renews a linked account's grant, adding scopes; with a
// provider and no account it connects instead.
func (g *Gateway) accountReauthorize(w http.ResponseWriter, r *http.Request) {
	sess := g.postedBySession(w, r)
	if sess == nil {
		return
	}
	returnTo := orDefault(r.PostFormValue("return_to"), g.prefix+"/account?notice=reauthorized")
	id := r.PostFormValue("account_id")
	if id == "" {
		g.accountConnect(w, r)
		return
	}
	a, err := g.store.ExternalAccount(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.UserID != sess.UserID) {
		g.fail(w, r, http.StatusNotFound, "not_found", i18n.M("error.no_such_account"))
		return
	}
	if err != nil {
		g.internal(w, r, "reading account", err)
		return
	}
	p, ok := g.byName[a.Provider]
	if !ok {
		g.flowError(w, r, flow.UnknownProvider(a.Provider))
		return
	}
	scopes := append(p.RequiredScopes(), r.PostForm["scopes"]...)
	g.startFlow(w, r, flow.Request{Provider: p, Mode: flow.ModeReauthorize, Session: sess, Account: a,
		ReturnTo: returnTo, Scopes: scopes})
}

// startFlow starts a flow and sends the browser to the provider.
func (g *Gateway) startFlow(w http.ResponseWriter, r *http.Request, req flow.Request) {
	req.CallbackURL = origin(r) + g.prefix + "/oauth/" + url.PathEscape(req.Provider.Name()) + "/callback"
	authURL, err := g.flow.Start(w, r, req)
	if err != nil {
		g.flowError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// accountDisconnect unlinks an account and revokes its tokens at the
// provider where the provider supports it. The sessions signed in through
// the account end with it, this one too when it was (the browser then
// meets the sign-in page).
func (g *Gateway) accountDisconnect(w http.ResponseWriter, r *http.Request) {
	sess := g.postedRecently(w, r)
	if sess == nil {
		return
	}
	gone, revoked, err := g.store.DeleteExternalAccount(r.Context(), sess.UserID, r.PostFormValue("account_id"),
		func(remaining []*store.ExternalAccount) error {
			if !g.canSignInWithout(remaining, "") {
				return errLastIdentity
			}
			return nil
		})
	switch {
	case errors.Is(err, errLastIdentity):
		http.Redirect(w, r, g.prefix+"/account?error=last_identity", http.StatusSeeOther)
		return
	case errors.Is(err, store.ErrNotFound):
		g.fail(w, r, http.StatusNotFound, "not_found", i18n.M("error.no_such_account"))
		return
	case err != nil:
		g.internal(w, r, "unlinking account", err)
		return
	}
	g.logger.Info("unlinked", zap.String("user_id", sess.UserID), zap.String("external_account_id", gone.ID),
		zap.String("provider", gone.Provider), zap.Int("revoked_sessions", len(revoked)))
	metrics.Unlinks.WithLabelValues(gone.Provider).Inc()
	metrics.Sessions.WithLabelValues("revoked").Add(float64(len(revoked)))
	if p, ok := g.byName[gone.Provider]; ok && p.CanRevoke() {
		if err := p.Revoke(r.Context(), gone.Tokens.ClientID, gone.Tokens.AccessToken, gone.Tokens.RefreshToken); err != nil {
			g.logger.Warn("revoking tokens at the provider failed; the account is unlinked all the same",
				zap.String("provider", gone.Provider), zap.Error(err))
		}
	}
	http.Redirect(w, r, g.prefix+"/account?notice=disconnected", http.StatusSeeOther)
}

// revokeOtherSessions signs out every other session of the user.
func (g *Gateway) revokeOtherSessions(w http.ResponseWriter, r *http.Request) {
	sess := g.postedRecently(w, r)
	if sess == nil {
		return
	}
	sessions, err := g.store.Sessions(r.Context(), sess.UserID)
	if err != nil {
		g.internal(w, r, "reading sessions", err)
		return
	}
	for _, s := range sessions {
		if s.ID != sess.ID {
			if err := g.store.RevokeSession(r.Context(), s.ID); err != nil {
				g.internal(w, r, "revoking session", err)
				return
			}
			metrics.Sessions.WithLabelValues("revoked").Inc()
			g.logger.Info("session revoked", zap.String("user_id", sess.UserID), zap.String("session_id", s.ID))
		}
	}
	http.Redirect(w, r, g.prefix+"/account?notice=signed_out_other", http.StatusSeeOther)
}

// missingScopes returns the scopes of want that approved does not cover, in
// the provider's spelling when the provider is configured.
func missingScopes(p *provider.Provider, approved, want []string) []string {
	if p != nil {
		return p.MissingScopes(approved, want)
	}
	var missing []string
	for _, s := range want {
		if !slices.Contains(approved, s) {
			missing = append(missing, s)
		}
	}
	return missing
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
