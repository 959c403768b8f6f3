// Package console is the operator console at /_auth/admin: server-rendered
// pages (the ui package's templates, no script) to find and manage users,
// their sessions and linked accounts, and to watch the gateway's providers,
// webhooks, native redirect URLs and sign-ins. Every action goes through the
// operations layer (ops) that the backend API, the admin API and the CLI
// use, under the operator's name in the audit log.
//
// Only the operators the admins rules admit get in (a verified address or a
// provider group, as allow_emails and allow_groups match); anyone else signed
// in gets a plain 403 page. Every change is a POST carrying the session's
// CSRF token, from an operator who signed in recently (the app's
// reauthenticate_after): the gateway's Guard checks both.
package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// Path is where the console lives under the gateway's prefix.
const Path = "/admin"

// Guard is what the console needs of the gateway's sessions.
type Guard interface {
	// SignedIn returns the request's session, or answers the request (a
	// sign-in redirect that comes back to here) and returns nil.
	SignedIn(w http.ResponseWriter, r *http.Request, here string) *store.Session
	// PostedRecently returns the session of a form POST whose CSRF token it
	// checked and whose sign-in is recent; otherwise it answers the request
	// (403, or a re-authentication at the provider that comes back to the
	// form's return_to) and returns nil.
	PostedRecently(w http.ResponseWriter, r *http.Request) *store.Session
	// CSRFToken is the token the session's forms carry.
	CSRFToken(sess *store.Session) string
	// ClientIP names the request's client, for the audit log.
	ClientIP(r *http.Request) string
}

// Config wires a Console.
type Config struct {
	// Prefix is the gateway's prefix (/_auth).
	Prefix string
	Ops    *ops.Service
	UI     *ui.Renderer
	// Admins admit the operators; nil admits nobody (the console is then
	// not served at all).
	Admins *access.Rules
	Logger *zap.Logger
}

// Console serves the console's pages. Safe for concurrent use.
type Console struct {
	Config
	base string
}

// New returns a Console, or nil when no admins are configured.
func New(cfg Config) *Console {
	if !cfg.Admins.Restricts() {
		return nil
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Console{Config: cfg, base: cfg.Prefix + Path}
}

// Owns reports whether rest (a path under the gateway's prefix) is the
// console's. A nil Console owns nothing.
func (c *Console) Owns(rest string) bool {
	return c != nil && (rest == Path || strings.HasPrefix(rest, Path+"/"))
}

// operator is the signed-in operator of a request.
type operator struct {
	sess *store.Session
	ctx  context.Context // carries the operator as the actor of operations
}

// ServeHTTP serves rest, a path under the gateway's prefix that Owns.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request, rest string, g Guard) {
	page := strings.TrimPrefix(rest, Path)
	here := c.base + page
	if r.URL.RawQuery != "" {
		here += "?" + r.URL.RawQuery
	}
	sess := g.SignedIn(w, r, here)
	if sess == nil {
		return
	}
	op, ok := c.admit(w, r, sess, g)
	if !ok {
		return
	}
	// The CSRF token and the recent sign-in after admission: anyone else
	// learns nothing more than the 403.
	if r.Method == http.MethodPost && g.PostedRecently(w, r) == nil {
		return
	}
	h, methods := c.route(page)
	if h == nil {
		c.fail(w, r, http.StatusNotFound, i18n.M("console.not_found"))
		return
	}
	if !slices.Contains(methods, r.Method) && !(r.Method == http.MethodHead && slices.Contains(methods, http.MethodGet)) {
		w.Header().Set("Allow", strings.Join(methods, ", "))
		c.fail(w, r, http.StatusMethodNotAllowed, i18n.M("console.method", "method", r.Method))
		return
	}
	h(w, r, page, op, g)
}

type handler func(w http.ResponseWriter, r *http.Request, page string, op operator, g Guard)

// route returns the handler of a console path and the methods it takes.
func (c *Console) route(page string) (handler, []string) {
	get, post := []string{http.MethodGet}, []string{http.MethodPost}
	switch {
	case page == "" || page == "/":
		return c.usersPage, get
	case page == "/gateway":
		return c.gatewayPage, get
	case strings.HasPrefix(page, "/gateway/"):
		return c.gatewayAction, post
	case strings.HasPrefix(page, "/users/"):
		if _, action, ok := strings.Cut(strings.TrimPrefix(page, "/users/"), "/"); ok && action != "" {
			return c.userAction, post
		}
		return c.userPage, get
	}
	return nil, nil
}

// admit lets in the operators that the admins rules admit; anyone else
// gets a plain 403 page.
func (c *Console) admit(w http.ResponseWriter, r *http.Request, sess *store.Session, g Guard) (operator, bool) {
	u, err := c.Ops.User(r.Context(), sess.UserID)
	if errors.Is(err, ops.ErrNotFound) {
		c.fail(w, r, http.StatusForbidden, i18n.M("console.forbidden"))
		return operator{}, false
	}
	if err != nil {
		c.internal(w, r, "reading the operator", err)
		return operator{}, false
	}
	if !c.Admins.Admits(u.User, u.Accounts) {
		c.forbidden(w, r, sess, g)
		return operator{}, false
	}
	ctx := ops.WithActor(r.Context(), ops.Actor{ID: "console:" + sess.UserID, ClientIP: g.ClientIP(r)})
	return operator{sess: sess, ctx: ctx}, true
}

// render renders a console page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p ui.Page) {
	c.UI.Render(w, r, status, name, p)
}

// view starts a page's data.
func (c *Console) view(r *http.Request, op operator, g Guard, title i18n.Message, section, here string) ui.Page {
	return ui.Page{Title: title, CSRFToken: g.CSRFToken(op.sess), Notice: notices[r.URL.Query().Get("notice")],
		Console: &ui.ConsoleView{Base: c.base, Here: here, Section: section}}
}

// fail answers with the error page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, message i18n.Message) {
	c.UI.Render(w, r, status, "error", ui.Page{Title: ui.ErrorTitle(status), Error: message, SignInURL: c.Prefix + "/sign-in"})
}

// forbidden answers a signed-in user who is no operator: the 403 page says
// who they are signed in as, with a sign-out button to sign in with another
// account.
func (c *Console) forbidden(w http.ResponseWriter, r *http.Request, sess *store.Session, g Guard) {
	label := sess.Email
	if label == "" {
		label = sess.Name
	}
	c.UI.Render(w, r, http.StatusForbidden, "error", ui.Page{Title: ui.ErrorTitle(http.StatusForbidden),
		Error: i18n.M("console.forbidden"), SignInURL: c.Prefix + "/sign-in", SignOutURL: c.Prefix + "/sign-out",
		SignedIn: true, UserLabel: label, CSRFToken: g.CSRFToken(sess)})
}

func (c *Console) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	c.Logger.Error(what, zap.Error(err))
	c.fail(w, r, http.StatusInternalServerError, i18n.M("console.internal"))
}
