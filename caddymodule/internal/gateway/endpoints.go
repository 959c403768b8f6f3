package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/flow"
	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// signInNotices are the sign-in page's fixed notices, selected by ?notice=:
// the page never reflects text from the URL.
var signInNotices = map[string]i18n.Message{
	"signed_out": i18n.M("common.signed_out"),
}

// signedOutURL is where a browser goes after signing out: the sign-in
// page, saying so.
func (g *Gateway) signedOutURL() string { return g.prefix + "/sign-in?notice=signed_out" }

// signInPage lists the sign-in providers. A signed-in visitor goes straight
// to where they were heading.
func (g *Gateway) signInPage(w http.ResponseWriter, r *http.Request) {
	returnTo := g.flow.Sanitize(r.URL.Query().Get("return_to"))
	if _, err := g.authenticate(r); err == nil {
		http.Redirect(w, r, returnTo, http.StatusFound)
		return
	}
	page := ui.Page{Title: i18n.M("sign_in.title"), ReturnTo: returnTo, Notice: signInNotices[r.URL.Query().Get("notice")]}
	for _, p := range g.providers {
		if p.SignIn() {
			page.Providers = append(page.Providers, ui.ProviderButton{
				DisplayName: p.DisplayName(), Kind: p.Kind(),
				StartURL: g.prefix + "/oauth/" + url.PathEscape(p.Name()) + "/start",
			})
		}
	}
	g.ui.Render(w, r, http.StatusOK, "sign-in", page)
}

// start sends the browser to the provider.
func (g *Gateway) start(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	p, ok := g.byName[name]
	if !ok {
		g.flowError(w, r, flow.UnknownProvider(name))
		return
	}
	if err := r.ParseForm(); err != nil {
		g.fail(w, r, http.StatusBadRequest, "invalid_request", i18n.M("error.unreadable_request"))
		return
	}
	if r.Method == http.MethodPost && crossSite(r) {
		// A form posted from another site comes without the SameSite=Lax
		// flow cookie: a binding set in the answer would replace the
		// browser's and break a sign-in under way in another tab. The
		// browser comes back with a GET, a top-level navigation that
		// carries the cookie.
		q := url.Values{}
		for _, k := range []string{"return_to", "redirect_url", "code_challenge"} {
			if v := r.Form.Get(k); v != "" {
				q.Set(k, v)
			}
		}
		http.Redirect(w, r, g.prefix+"/oauth/"+url.PathEscape(name)+"/start?"+q.Encode(), http.StatusSeeOther)
		return
	}
	req := flow.Request{Provider: p, Mode: flow.ModeSignIn, ReturnTo: r.Form.Get("return_to")}
	if native := r.Form.Get("redirect_url"); native != "" {
		req.Native = &flow.Native{RedirectURL: native, Challenge: r.Form.Get("code_challenge")}
	}
	g.startFlow(w, r, req)
}

// callback completes the flow and sends the browser back where it was going.
func (g *Gateway) callback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	p, ok := g.byName[name]
	if !ok {
		g.flowError(w, r, flow.UnknownProvider(name))
		return
	}
	out, err := g.flow.Callback(w, r, p)
	if fe := (*flow.Error)(nil); errors.As(err, &fe) {
		metrics.SignIns.WithLabelValues(name, fe.Reason).Inc()
	}
	if err != nil {
		g.flowError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	if out.Linked != nil && out.Session != nil {
		// A link by email: the person sees what their account holds now
		// (and can disconnect what is not theirs) before going on.
		http.Redirect(w, r, g.prefix+"/account?notice=linked_by_email&return_to="+url.QueryEscape(out.ReturnTo), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, out.ReturnTo, http.StatusSeeOther)
}

// flowError shows a flow failure on a page; anything unexpected is logged
// and shown as a generic failure.
func (g *Gateway) flowError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *flow.Error
	if !errors.As(err, &fe) {
		g.logger.Error("sign-in failed", zap.Error(err))
		g.fail(w, r, http.StatusInternalServerError, "internal_error", i18n.M("error.internal"))
		return
	}
	metrics.FlowErrors.WithLabelValues(fe.Reason).Inc()
	if c := g.logger.Check(zap.WarnLevel, "sign-in refused"); c != nil {
		c.Write(zap.String("reason", fe.Reason), zap.NamedError("detail", fe.Err))
	}
	g.fail(w, r, fe.Status, fe.Reason, fe.Message)
}

// signOut shows a confirmation page (GET) or ends the session (POST with
// the session's CSRF token). The record is deleted, so a replayed cookie is
// dead. When the cookies present several live sessions (one tossed beside
// the person's for the sign-out path), the page never says "signed out":
// its form carries each one's token, and the POST ends each session whose
// token it carries. Cookies naming more sessions than the sign-out reads
// (session.maxSignOutCookies, not the access path's four) never get
// "signed out" either: the page and the POST say some sessions could not
// be read, and the POST ends what it can and expires the cookies. A POST without a live session clears the cookie only
// with the CSRF token of a session it names (live or ended), else answers
// 403 and sets nothing. The browser then goes to
// return_to (sanitized; default the sign-in page, saying "You are signed
// out"), by way of the provider's own sign-out when the session's sign-in
// provider has sign_out_at_provider. A native app signs out with its
// session token (Authorization: Bearer, no CSRF token: nothing sends it on
// its own) and gets JSON: the ended session, or 401 when the token names no
// live session.
func (g *Gateway) signOut(w http.ResponseWriter, r *http.Request) {
	sess, bearer, err := g.sessions.Lookup(r)
	if err != nil && !isNoSession(err) {
		g.internal(w, r, "reading session", err)
		return
	}
	returnTo := g.signedOutURL()
	if rt := r.FormValue("return_to"); rt != "" {
		returnTo = g.flow.Sanitize(rt)
	}
	if r.Method != http.MethodPost {
		page := ui.Page{Title: i18n.M("sign_out.title"), SignInURL: g.prefix + "/sign-in", SignOutURL: g.prefix + "/sign-out"}
		if r.URL.Query().Has("return_to") {
			page.SignOutURL += "?return_to=" + url.QueryEscape(returnTo)
		}
		live, all := []*store.Session{sess}, true
		if sess == nil {
			if live, all, err = g.sessions.Presented(r.Context(), r); err != nil {
				g.internal(w, r, "reading sessions", err)
				return
			}
		}
		if !all {
			page.Error = i18n.M("error.sign_out_unread")
		}
		var labels []string
		for i, s := range live {
			token := g.sessions.CSRFToken(s.ID)
			if i == 0 {
				page.SignedIn, page.CSRFToken = true, token
			} else {
				page.CSRFTokens = append(page.CSRFTokens, token)
			}
			labels = append(labels, cmp.Or(s.Email, s.Name))
		}
		page.UserLabel = strings.Join(labels, ", ")
		g.ui.Render(w, r, http.StatusOK, "sign-out", page)
		return
	}
	native := sess == nil && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ")
	if native {
		g.challenge(w, r, g.prefix+"/sign-out") // a token that names no live session
		return
	}
	// Without a live session the token must be that of the session the
	// request's cookie names: a cross-site form (which SameSite keeps the
	// cookie from) would otherwise clear the browser's cookie unseen.
	r.PostFormValue("csrf_token") // parses the form
	if sess == nil {
		g.signOutPresented(w, r, returnTo)
		return
	}
	// The form may carry tokens of other sessions too (see signOutPresented).
	if !bearer && !g.sessions.CheckCSRFAny(sess.ID, r.PostForm["csrf_token"]) {
		g.fail(w, r, http.StatusForbidden, "invalid_csrf_token", i18n.M("error.sign_out_form_expired"))
		return
	}
	if err := g.sessions.End(r.Context(), w, r, sess); err != nil {
		g.internal(w, r, "ending session", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	metrics.Sessions.WithLabelValues("ended").Inc()
	g.logger.Info("signed out", zap.String("user_id", sess.UserID), zap.String("session_id", sess.ID), zap.Bool("session_token", bearer))
	if bearer {
		writeJSON(w, http.StatusOK, api.Session(sess, "ended"))
		return
	}
	if to := g.signOutAtProvider(r, sess, returnTo); to != "" {
		returnTo = to
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// signOutPresented signs out a request whose cookies name no single live
// session: it ends each session they name whose CSRF token the form
// carries (several live ones, when a cookie was tossed beside the
// person's; or an ended one, whose cookie it clears), and refuses a form
// that carries none (a cross-site form, which SameSite keeps the cookie
// from, must not clear it unseen).
func (g *Gateway) signOutPresented(w http.ResponseWriter, r *http.Request, returnTo string) {
	ended, all, ok, err := g.sessions.EndVouched(r.Context(), w, r, r.PostForm["csrf_token"])
	if !ok {
		g.fail(w, r, http.StatusForbidden, "invalid_csrf_token", i18n.M("error.sign_out_form_expired"))
		return
	}
	if err != nil {
		g.internal(w, r, "ending session", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	g.logger.Info("signed out the sessions the cookies presented", zap.Strings("session_ids", ended), zap.Bool("all_read", all))
	if !all {
		g.fail(w, r, http.StatusConflict, "sessions_unread", i18n.M("error.sign_out_unread"))
		return
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// me returns the signed-in user as JSON, for custom front ends.
func (g *Gateway) me(w http.ResponseWriter, r *http.Request) {
	sess, err := g.authenticate(r)
	if isNoSession(err) {
		g.challenge(w, r, g.prefix+"/me")
		return
	}
	if err != nil {
		g.internal(w, r, "reading session", err)
		return
	}
	user, err := g.store.User(r.Context(), sess.UserID)
	if errors.Is(err, store.ErrNotFound) { // deleted a moment ago
		g.challenge(w, r, g.prefix+"/me")
		return
	}
	if err != nil {
		g.internal(w, r, "reading user", err)
		return
	}
	accounts, err := g.store.ExternalAccounts(r.Context(), sess.UserID)
	if err != nil {
		g.internal(w, r, "reading accounts", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	body := api.FrontendUser(user, accounts)
	body["session_id"] = sess.ID
	writeJSON(w, http.StatusOK, body)
}

// health tells load balancers whether the store is usable: 200
// {"status":"ok"} or 503 {"status":"unavailable"}. It needs no session and
// reveals nothing else.
func (g *Gateway) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	if _, err := g.store.Session(ctx, "sess_health_probe"); err != nil && !errors.Is(err, store.ErrNotFound) {
		g.logger.Error("health: the store is unusable", zap.Error(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// jwks publishes the keys that verify identity tokens, cacheable for less
// than the time a new key waits before it signs.
func (g *Gateway) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(g.identity.JWKSMaxAge()/time.Second)))
	w.Write(g.identity.JWKS())
}

func (g *Gateway) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	g.logger.Error(what, zap.Error(err))
	g.fail(w, r, http.StatusInternalServerError, "internal_error", i18n.M("error.internal"))
}

// fail answers an error as a page for browsers, titled in words and in
// their language, and as JSON otherwise: the stable code with the message
// in English.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, status int, code string, message i18n.Message) {
	if wantsHTML(r) || r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
		base, _ := g.linkBase(w)
		g.ui.Render(w, r, status, "error", ui.Page{Title: ui.ErrorTitle(status), Error: message, SignInURL: base + g.prefix + "/sign-in"})
		return
	}
	writeJSON(w, status, errorBody(code, message.String(), nil))
}

// errorBody is the Clerk-shaped error document: {"errors":[{code, message}], …extra}.
func errorBody(code, message string, extra map[string]any) map[string]any {
	body := map[string]any{"errors": []map[string]string{{"code": code, "message": message}}}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
