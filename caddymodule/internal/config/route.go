package config

import (
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/gateway"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// Route is what a socialgate handler (the socialgate site directive)
// applies to the routes it matches, and what a forward_auth policy
// applies to the requests it verifies.
type Route struct {
	// Require lists what a request needs beyond a session: a linked account
	// of a provider, in good standing, with at least these scopes. A browser
	// missing one is asked to connect or grant access and comes back; an API
	// client gets 403 JSON with a reauthorize_url. Default: nothing.
	Require []Requirement `json:"require,omitempty"`

	// ForwardTokens are providers whose access token goes upstream in
	// X-Auth-Token-<Provider> (X-Auth-Token-Github), always fresh: the
	// gateway refreshes it before it expires. Each is also a requirement.
	// Default: none.
	ForwardTokens []ForwardToken `json:"forward_tokens,omitempty"`

	// AllowEmails admits to this route only users with a verified email
	// address among these: ada@example.com, or a whole domain,
	// *@example.com (any case). Others get 403: a page with a sign-out
	// button, or JSON. It narrows the app's allow_emails, which every route
	// applies as well. Default: every signed-in user.
	AllowEmails []string `json:"allow_emails,omitempty"`

	// AllowGroups admits to this route only users with a linked account
	// in one of these groups, each provider:group (corp:admins): the group
	// as that provider asserted it at the account's last sign-in (the
	// provider's fields groups, or github's groups_from). With AllowEmails,
	// matching either admits.
	// Default: every signed-in user.
	AllowGroups []string `json:"allow_groups,omitempty"`

	// IdentityAudience is the aud claim of the identity token (X-Auth-Jwt)
	// on this route, in place of the app's identity_audience. Sites that
	// share one gateway are signed for by the same keys: give each upstream
	// an audience of its own (its origin, https://app.example.com) and have
	// it check aud, so that a token captured from one verifies at no other.
	// Default: the app's identity_audience.
	IdentityAudience []string `json:"identity_audience,omitempty"`

	// Public lets requests through without a session: an exception in a
	// site the gateway protects (socialgate public). They still lose
	// client-sent X-Auth-* headers and the gateway's cookies and session
	// tokens; with a session, they carry the user's identity as on a
	// protected route. A path that a server behind Caddy could read as
	// another one (a ";", a "\", a "%" once decoded, a control character,
	// a segment of dots and spaces, invalid UTF-8) gets 400, so that a
	// backend such as Tomcat or IIS cannot map a public path onto a
	// protected one. It excludes Require, ForwardTokens, AllowEmails and
	// AllowGroups. Default: off, every request needs a session.
	Public bool `json:"public,omitempty"`
}

// ForwardToken sends a provider's fresh access token upstream.
type ForwardToken struct {
	// Provider is the name of a configured provider.
	Provider string `json:"provider"`
	// Header carries the token. Default: X-Auth-Token-<Provider>. In
	// Authorization it goes as "Bearer <token>", which Caddy's logs redact.
	// The token is also the placeholder {http.auth.token.<provider>}.
	Header string `json:"header,omitempty"`
}

// Requirement is one route requirement.
type Requirement struct {
	// Provider is the name of a configured provider.
	Provider string `json:"provider"`
	// Scopes the linked account must have approved. Default: none.
	Scopes []string `json:"scopes,omitempty"`
}

// Gateway is the route's settings as the gateway reads them.
func (rt *Route) Gateway() gateway.Route {
	out := gateway.Route{Public: rt.Public, AllowEmails: rt.AllowEmails, AllowGroups: rt.AllowGroups, Audience: rt.IdentityAudience}
	for _, r := range rt.Require {
		out.Require = append(out.Require, gateway.Requirement{Provider: r.Provider, Scopes: r.Scopes})
	}
	for _, ft := range rt.ForwardTokens {
		out.Forward = append(out.Forward, gateway.Forward{Provider: ft.Provider, Header: ft.Header})
	}
	return out
}

// Check validates the route against the names of the configured
// providers (gateway.CheckRoute).
func (rt *Route) Check(providers []string) error {
	return gateway.CheckRoute(rt.Gateway(), providers)
}

// ForwardAuth turns on the verify endpoint, <prefix>/verify, which external
// proxies (nginx auth_request, ingress-nginx, Traefik ForwardAuth, Envoy
// ext_authz, Caddy's forward_auth) ask for each request they pass: 200 with
// the identity headers for a signed-in request, else 401 (nginx) or a
// redirect to sign in (the others), or 403. Only a request from one of the
// server's trusted_proxies may ask; it names the original request in
// X-Original-URL or X-Forwarded-Proto/Host/Uri. See docs/forward-auth.md.
type ForwardAuth struct {
	// URL is the gateway's origin as browsers reach it
	// (https://auth.example.com): where browsers of the protected hosts are
	// sent to sign in. Required.
	URL string `json:"url"`

	// Policies are what each verify address asks, by name:
	// <prefix>/verify/<name> applies the policy <name>, with the settings
	// of a socialgate handler (require, forward_tokens, allow_emails,
	// allow_groups, identity_audience, public); <prefix>/verify applies
	// "default". A name not here is 404, which each proxy turns into a
	// refusal. Default: "default" admits every signed-in user that the
	// app's allow_emails and allow_groups admit.
	Policies map[string]Route `json:"policies,omitempty"`

	// Listen serves the verify endpoint on a listener of its own too,
	// outside Caddy's HTTP server (see VerifyListener). Default: none;
	// verify is served by the sites that have the socialgate directive.
	Listen *VerifyListener `json:"listen,omitempty"`
}

// gatewayConfig returns the gateway's forward-auth configuration; nil fa
// is nil. trusted tells a request from one of the server's
// trusted_proxies.
func (fa *ForwardAuth) gatewayConfig(trusted func(*http.Request) bool) *gateway.ForwardAuth {
	if fa == nil {
		return nil
	}
	cfg := &gateway.ForwardAuth{URL: fa.URL, Policies: map[string]gateway.Route{}, Trusted: trusted}
	for name, rt := range fa.Policies {
		cfg.Policies[name] = rt.Gateway()
	}
	return cfg
}

// UIConfig brands the gateway's pages.
type UIConfig struct {
	// AppName is shown in page titles and headings. Default: socialgate.
	AppName string `json:"app_name,omitempty"`
	// LogoURL is an image shown above each page's heading. Default: none.
	LogoURL string `json:"logo_url,omitempty"`
	// Accent is the hex colour of primary buttons. One that white text
	// does not contrast with at WCAG AA (4.5:1) gets dark text, or a darker
	// shade of it, with a warning at load. Default: #1f5ad1.
	Accent string `json:"accent,omitempty"`
	// Templates is a directory whose files replace the embedded templates of
	// the same name (layout.html, sign-in.html, sign-out.html, error.html,
	// account.html, reauthorize.html).
	Templates string `json:"templates,omitempty"`
	// Messages is a directory of message files named by language (de.json,
	// pt-BR.json) whose messages replace the shipped ones of the same ID, or
	// add a language; see docs/localization.md. Default: the shipped
	// English, German, French, Spanish, Japanese and Arabic.
	Messages string `json:"messages,omitempty"`
	// Locale pins every page to one language (a tag like de or pt-BR that
	// the messages have). Default: each browser's Accept-Language, else
	// English.
	Locale string `json:"locale,omitempty"`
}

// renderer returns the pages' renderer for c; a nil c is every default.
func (c *UIConfig) renderer(logger *zap.Logger) (*ui.Renderer, error) {
	if c == nil {
		c = &UIConfig{}
	}
	r, err := ui.New(ui.Options{AppName: c.AppName, LogoURL: c.LogoURL, Accent: c.Accent,
		TemplateDir: c.Templates, MessageDir: c.Messages, Locale: c.Locale, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	return r, nil
}
