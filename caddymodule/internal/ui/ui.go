// Package ui renders the gateway's own pages (sign-in, sign-out, account,
// reauthorize, errors) from embedded html/template files, in the reader's
// language (package i18n). Operators can set the app's name, logo and
// accent colour, replace any template with their own file of the same
// name, and override or add messages and languages.
package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
)

//go:embed templates/*.html
var embedded embed.FS

// pages are the templates a Renderer serves; each is rendered inside layout.html.
var pages = []string{"sign-in", "sign-out", "error", "account", "reauthorize", "console-users", "console-user", "console-gateway"}

// Options brand the pages.
type Options struct {
	// AppName is shown in titles and headings; default "socialgate".
	AppName string
	// LogoURL, when set, is shown above every page's heading.
	LogoURL string
	// Accent is the hex colour of primary buttons, like #4f46e5 or 4f46e5;
	// default DefaultAccent. One that white text does not contrast with
	// enough (WCAG AA, 4.5:1) gets dark text, or is darkened; a warning
	// says which.
	Accent string
	// TemplateDir, when set, may hold files named like the embedded ones
	// (layout.html, sign-in.html, sign-out.html, error.html, account.html,
	// reauthorize.html, console-users.html, console-user.html,
	// console-gateway.html) that replace them.
	TemplateDir string
	// MessageDir and Locale are i18n.Options' Dir and Locale: the
	// operator's message files, and the language that every page is pinned
	// to (default: each browser's Accept-Language).
	MessageDir, Locale string
	Logger             *zap.Logger
}

// Renderer renders pages. Safe for concurrent use.
type Renderer struct {
	opts  Options
	theme theme
	cat   *i18n.Catalog
	// pages are each language's templates, by page name: parsed once,
	// cloned for each language with its t, text and list functions.
	pages map[*i18n.Locale]map[string]*template.Template
}

// New parses the templates and the message files, and checks that every
// message a template names exists with the placeholders it passes: a
// mistake in an operator's files is reported here, at config load.
func New(opts Options) (*Renderer, error) {
	if opts.AppName == "" {
		opts.AppName = "socialgate"
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	th, err := newTheme(opts.Accent, opts.Logger)
	if err != nil {
		return nil, err
	}
	cat, err := i18n.Load(i18n.Options{Dir: opts.MessageDir, Locale: opts.Locale, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	r := &Renderer{opts: opts, theme: th, cat: cat, pages: map[*i18n.Locale]map[string]*template.Template{}}
	for _, l := range cat.Locales() {
		r.pages[l] = map[string]*template.Template{}
	}
	for _, name := range pages {
		t := template.New(name).Funcs(funcs(cat.English()))
		for _, file := range []string{"layout.html", name + ".html"} {
			src, err := r.source(file)
			if err != nil {
				return nil, err
			}
			before := definedNames(t)
			if _, err := t.Parse(string(src)); err != nil {
				return nil, fmt.Errorf("parsing template %s: %w", file, err)
			}
			if err := checkMessages(t, before, cat); err != nil {
				return nil, fmt.Errorf("template %s: %w", file, err)
			}
		}
		for l, byName := range r.pages {
			clone, err := t.Clone()
			if err != nil {
				return nil, err
			}
			fixMessages(clone, l)
			byName[name] = clone.Funcs(funcs(l))
		}
	}
	return r, nil
}

// funcs are the templates' words in l's language: t "id" "name" value…
// says a message, text says an i18n.Message that the page carries, list
// joins items as the language lists them ("a, b"; "a、b"); lang and dir
// are the page's language tag and writing direction (ltr, rtl).
func funcs(l *i18n.Locale) template.FuncMap {
	return template.FuncMap{
		"t":    l.T,
		"text": l.Text,
		"list": func(items []string) string { return strings.Join(items, l.Text(i18n.M("common.list_separator"))) },
		"lang": l.Lang,
		"dir":  l.Dir,
	}
}

func (r *Renderer) source(file string) ([]byte, error) {
	if r.opts.TemplateDir != "" {
		src, err := os.ReadFile(filepath.Join(r.opts.TemplateDir, file))
		if err == nil {
			return src, nil
		}
		if !os.IsNotExist(err) {
			return nil, fmt.Errorf("reading template %s: %w", file, err)
		}
	}
	return fs.ReadFile(embedded, "templates/"+file)
}

// Render writes page name with status, in the language the request's
// Accept-Language asks for (or the pinned locale). Pages are never cached
// and never framed; their answer varies with Accept-Language unless the
// locale is pinned.
func (r *Renderer) Render(w http.ResponseWriter, req *http.Request, status int, name string, p Page) {
	loc := r.cat.Negotiate(req.Header.Get("Accept-Language"))
	p.AppName, p.LogoURL = r.opts.AppName, r.opts.LogoURL
	p.Accent, p.OnAccent, p.AccentText = r.theme.accent, r.theme.onAccent, r.theme.accentText
	buf := buffers.Get().(*bytes.Buffer)
	defer buffers.Put(buf)
	buf.Reset()
	if err := r.pages[loc][name].ExecuteTemplate(buf, "layout", p); err != nil {
		r.opts.Logger.Error("rendering page", zap.String("page", name), zap.Error(err))
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", loc.Lang())
	if !r.cat.Pinned() {
		h.Add("Vary", "Accept-Language")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src "+r.imgSrc(name)+"; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// imgSrc is the CSP img-src of page name. The person's own pages (the
// account page shows their own provider's picture) load https images; the
// operator console loads none but its own and the logo: a user's picture
// URL is their provider's to choose, and would tell that server which
// operator looked at whom (a custom console template included).
func (r *Renderer) imgSrc(name string) string {
	if !strings.HasPrefix(name, "console") {
		return "https: data:"
	}
	src := "'self' data:"
	if u, err := url.Parse(r.opts.LogoURL); err == nil && u.Scheme == "https" && u.Host != "" {
		src += " https://" + u.Host
	}
	return src
}

// buffers hold pages as they render: a page is some 10–20 KB, which a
// fresh buffer would reach by growing several times.
var buffers = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 32<<10)) }}

// Page is the data every page gets; each page reads the fields it needs.
// Its words are messages, put into the reader's language as it renders.
type Page struct {
	Title      i18n.Message
	Error      i18n.Message
	Notice     i18n.Message
	ReturnTo   string
	SignInURL  string
	SignOutURL string
	CSRFToken  string
	// CSRFTokens are more tokens the sign-out form posts: one for each
	// other live session the request's cookies present (a cookie tossed
	// beside the person's), so that signing out ends every one.
	CSRFTokens []string
	SignedIn   bool
	UserLabel  string
	Providers  []ProviderButton
	// ContinueURL, when set, is where a Continue button on the account
	// page leads (after a notice the person had to see first).
	ContinueURL string

	// Account page
	Account *AccountView
	// Reauthorize page
	Reauthorize *ReauthorizeView
	// Console pages
	Console *ConsoleView

	AppName, LogoURL string
	// Accent is the primary buttons' colour, OnAccent their text's, and
	// AccentText the accent for text and focus rings on white: each pair
	// contrasts at least 4.5:1 (see Options.Accent).
	Accent, OnAccent, AccentText string
}

// AccountView is what the account page shows.
type AccountView struct {
	Name, ImageURL string
	Emails         []EmailView
	Accounts       []AccountRow
	Connect        []ProviderButton // providers the user may connect
	Sessions       []SessionRow
	// AppURL is where the page's "Back to the app" link leads.
	AppURL                                                     string
	ConnectURL, DisconnectURL, ReauthorizeURL, RevokeOthersURL string
}

// OtherSessions is how many of the sessions are not this one.
func (a *AccountView) OtherSessions() int {
	n := 0
	for _, s := range a.Sessions {
		if !s.Current {
			n++
		}
	}
	return n
}

// EmailView is one email address.
type EmailView struct {
	Email    string
	Verified bool
}

// AccountRow is one connected account.
type AccountRow struct {
	ID, Provider, ProviderName, Email, Username string
	// Kind is the provider's type (google, github, oidc…), which picks its icon.
	Kind                 string
	Scopes               []string
	MissingScopes        []string
	NeedsReauthorization bool
	CanDisconnect        bool
}

// Icon is the provider's mark, an inline SVG.
func (a AccountRow) Icon() template.HTML { return icon(a.Kind) }

// SessionRow is one active session.
type SessionRow struct {
	// Device is a short description of the browser or app, like
	// "Chrome on Linux", from the session's user agent (see Device).
	Device      i18n.Message
	IP, Created string
	Current     bool
}

// ReauthorizeView asks to grant a provider more access.
type ReauthorizeView struct {
	ProviderName string
	Provider     string
	AccountID    string
	Scopes       []string
	ActionURL    string
	Connect      bool // no account yet: connecting, not renewing
}

// ProviderButton is one provider on the sign-in page.
type ProviderButton struct {
	Name        string
	DisplayName string
	// Kind is the provider's type (google, github, oidc…), which picks its icon.
	Kind     string
	StartURL string
}

// Icon is the provider's mark, an inline SVG.
func (b ProviderButton) Icon() template.HTML { return icon(b.Kind) }

// ErrorTitle names an error page by its status in words ("Page not
// found"), not as the raw status text; a status without words of its own
// is "Something went wrong".
func ErrorTitle(status int) i18n.Message {
	if m, ok := errorTitles[status]; ok {
		return m
	}
	return i18n.M("error.title_internal")
}

var errorTitles = map[int]i18n.Message{
	http.StatusBadRequest:          i18n.M("error.title_bad_request"),
	http.StatusUnauthorized:        i18n.M("error.title_unauthorized"),
	http.StatusForbidden:           i18n.M("error.title_forbidden"),
	http.StatusNotFound:            i18n.M("error.title_not_found"),
	http.StatusMethodNotAllowed:    i18n.M("error.title_method_not_allowed"),
	http.StatusConflict:            i18n.M("error.title_conflict"),
	http.StatusUnprocessableEntity: i18n.M("error.title_unprocessable"),
	http.StatusTooManyRequests:     i18n.M("error.title_too_many_requests"),
	http.StatusBadGateway:          i18n.M("error.title_bad_gateway"),
	http.StatusServiceUnavailable:  i18n.M("error.title_unavailable"),
}
