package provider

import (
	"context"
	"slices"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// AuthRequest is what an authorization URL carries.
type AuthRequest struct {
	RedirectURL   string
	State         string
	Nonce         string // OIDC only
	CodeChallenge string // S256 challenge; ignored unless UsesPKCE
	// Scopes are asked for in addition to RequiredScopes (incremental
	// authorization).
	Scopes []string
	// Prompt is the prompt parameter: "consent" to reauthorize (Google
	// re-issues a refresh token only then), "select_account", "login".
	Prompt string
	// Reauthenticate asks an OpenID provider to make the person sign in
	// again, whatever session they hold there: prompt=login and max_age=0
	// (OIDC Core 3.1.2.1), so the ID token carries a fresh auth_time. Plain
	// OAuth 2.0 has no such parameter; their providers decide for themselves.
	Reauthenticate bool
}

// AuthCodeURL returns the URL to send the browser to. For OIDC it needs
// discovery, so it can fail with ErrUnavailable.
func (p *Provider) AuthCodeURL(ctx context.Context, req AuthRequest) (string, error) {
	e, err := p.endpoints(ctx)
	if err != nil {
		return "", err
	}
	conf := &oauth2.Config{
		ClientID:    p.cfg.ClientID,
		RedirectURL: req.RedirectURL,
		Endpoint:    oauth2.Endpoint{AuthURL: e.auth},
		Scopes:      mergeScopes(p.requestScopes(e), req.Scopes),
	}
	var opts []oauth2.AuthCodeOption
	if req.Nonce != "" && p.pre.oidc {
		opts = append(opts, oidc.Nonce(req.Nonce))
	}
	if req.CodeChallenge != "" && p.UsesPKCE() {
		opts = append(opts,
			oauth2.SetAuthURLParam("code_challenge", req.CodeChallenge),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	}
	for k, v := range p.params {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	prompt := req.Prompt
	if req.Reauthenticate && p.pre.oidc {
		prompt = "login"
		opts = append(opts, oauth2.SetAuthURLParam("max_age", "0"))
	}
	if prompt != "" {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", prompt))
	}
	return conf.AuthCodeURL(req.State, opts...), nil
}

// requestScopes are the scopes of every authorization request.
func (p *Provider) requestScopes(e *endpoints) []string {
	scopes := p.RequiredScopes()
	if e.d != nil && e.d.offline {
		scopes = mergeScopes(scopes, []string{oidc.ScopeOfflineAccess})
	}
	return scopes
}

// mergeScopes returns a followed by the scopes of b it lacks.
func mergeScopes(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// MissingScopes returns the scopes of want that approved does not grant,
// reading approved the provider's way: Google grants "email" as
// https://www.googleapis.com/auth/userinfo.email, and an OpenID provider
// that signed the user in granted "openid" whether or not it lists it.
func (p *Provider) MissingScopes(approved, want []string) []string {
	var missing []string
	for _, s := range want {
		switch {
		case slices.Contains(approved, s):
		case p.pre.scopeAliases[s] != "" && slices.Contains(approved, p.pre.scopeAliases[s]):
		case s == "openid" && p.pre.oidc:
		default:
			missing = append(missing, s)
		}
	}
	return missing
}
