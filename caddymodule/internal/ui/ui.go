// Package ui renders the gateway's own pages (sign-in, sign-out, errors) from
// embedded html/template files. Operators can set the app's name, logo and
// accent colour, and replace any template with their own file of the same name.
package ui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.uber.org/zap"
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
	// default #2f6feb.
	Accent string
	// TemplateDir, when set, may hold files named like the embedded ones
	// (layout.html, sign-in.html, sign-out.html, error.html, account.html,
	// reauthorize.html, console-users.html, console-user.html,
	// console-gateway.html) that replace them.
	TemplateDir string
	Logger      *zap.Logger
}

var accentPattern = regexp.MustCompile(`^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$`)

// Renderer renders pages. Safe for concurrent use.
type Renderer struct {
	opts  Options
	pages map[string]*template.Template
}

// New parses the templates; a template error is reported here, at config load.
func New(opts Options) (*Renderer, error) {
	if opts.AppName == "" {
		opts.AppName = "socialgate"
	}
	if opts.Accent == "" {
		opts.Accent = "#2f6feb"
	}
	accent := opts.Accent
	if !strings.HasPrefix(accent, "#") {
		accent = "#" + accent // "#" starts a Caddyfile comment unless quoted
	}
	if !accentPattern.MatchString(accent) {
		return nil, fmt.Errorf("accent colour %q is not a hex colour like #2f6feb", opts.Accent)
	}
	opts.Accent = accent
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	r := &Renderer{opts: opts, pages: map[string]*template.Template{}}
	for _, name := range pages {
		t := template.New(name)
		for _, file := range []string{"layout.html", name + ".html"} {
			src, err := r.source(file)
			if err != nil {
				return nil, err
			}
			if _, err := t.Parse(string(src)); err != nil {
				return nil, fmt.Errorf("parsing template %s: %w", file, err)
			}
		}
		r.pages[name] = t
	}
	return r, nil
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

// Page is the data every page gets; each page reads the fields it needs.
type Page struct {
	Title      string
	Error      string
	ReturnTo   string
	SignInURL  string
	SignOutURL string
	CSRFToken  string
	SignedIn   bool
	UserLabel  string
	Providers  []ProviderButton
	Notice     string
	// ContinueURL, when set, is where a Continue button on the account
	// page leads (after a notice the person had to see first).
	ContinueURL string

	// Account page
	Account *AccountView
	// Reauthorize page
	Reauthorize *ReauthorizeView
	// Console pages
	Console *ConsoleView

	AppName, LogoURL, Accent string
}

// AccountView is what the account page shows.
type AccountView struct {
	Name, ImageURL                                             string
	Emails                                                     []EmailView
	Accounts                                                   []AccountRow
	Connect                                                    []ProviderButton // providers the user may connect
	Sessions                                                   []SessionRow
	ConnectURL, DisconnectURL, ReauthorizeURL, RevokeOthersURL string
}

// EmailView is one email address.
type EmailView struct {
	Email    string
	Verified bool
}

// AccountRow is one connected account.
type AccountRow struct {
	ID, Provider, ProviderName, Email, Username string
	Scopes                                      []string
	MissingScopes                               []string
	NeedsReauthorization                        bool
	CanDisconnect                               bool
}

// SessionRow is one active session.
type SessionRow struct {
	// Device is a short description of the browser or app, like
	// "Chrome on Linux", from the session's user agent.
	Device, IP, Created string
	Current             bool
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
	StartURL    string
}

// Render writes page name with status. Pages are never cached and never framed.
func (r *Renderer) Render(w http.ResponseWriter, status int, name string, p Page) {
	p.AppName, p.LogoURL, p.Accent = r.opts.AppName, r.opts.LogoURL, r.opts.Accent
	var buf bytes.Buffer
	if err := r.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		r.opts.Logger.Error("rendering page", zap.String("page", name), zap.Error(err))
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
