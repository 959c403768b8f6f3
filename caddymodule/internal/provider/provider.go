// Package provider talks to OAuth 2.0 and OpenID Connect providers: it builds
// authorization URLs, redeems codes, validates ID tokens beyond what go-oidc
// checks, and maps a provider's profile to a Profile. One Provider type serves
// every kind: an OIDC issuer found by discovery, or a plain OAuth 2.0 server
// with explicit endpoints and a userinfo field mapping.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Kinds of provider.
const (
	KindOIDC   = "oidc"
	KindOAuth2 = "oauth2"
)

// Errors a caller can tell apart.
var (
	// ErrUnavailable means the provider could not be reached or answered
	// something unusable (discovery, token or userinfo endpoint).
	ErrUnavailable = errors.New("provider unavailable")
	// ErrRejected means what the provider sent failed validation: an ID token,
	// an issuer, a profile. The flow must stop.
	ErrRejected = errors.New("provider response rejected")
)

// Config describes one provider. Kind OIDC needs Issuer; kind OAuth2 needs
// AuthURL, TokenURL and UserinfoURL. Endpoint URLs given for an OIDC provider
// override what discovery says.
type Config struct {
	Name         string
	Kind         string
	DisplayName  string
	ClientID     string
	ClientSecret string
	// Issuer is the OIDC issuer, or for OAuth2 the namespace of its subjects
	// (default: the authorization URL's scheme and host).
	Issuer      string
	AuthURL     string
	TokenURL    string
	UserinfoURL string
	// Scopes are requested in addition to the kind's defaults
	// (OIDC: openid email profile, and offline_access when advertised).
	Scopes []string
	// Mapping names the userinfo JSON fields (dotted paths) of an OAuth2 provider.
	Mapping Mapping
	// AuthParams are extra authorization request parameters.
	AuthParams map[string]string
	// DisablePKCE turns off PKCE for servers that refuse it. PKCE is on by default.
	DisablePKCE bool
	// SignIn reports whether the provider may be used to sign in (true) or only
	// to connect an account to a signed-in user (false).
	SignIn bool
	// HTTPClient makes every outbound call; default: NewHTTPClient().
	HTTPClient *http.Client
}

// Mapping names where an OAuth2 userinfo document keeps each profile field,
// as dotted paths into the JSON ("data.user.id"). Numbers become strings.
type Mapping struct {
	ID            string `json:"id,omitempty"`
	Email         string `json:"email,omitempty"`
	EmailVerified string `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
	Picture       string `json:"picture,omitempty"`
	Username      string `json:"username,omitempty"`
}

// Provider is a configured, ready-to-use provider. Safe for concurrent use.
// For OIDC, discovery happens on first use and is cached, so a provider that
// is down never fails a config load.
type Provider struct {
	cfg    Config
	client *http.Client

	mu        sync.Mutex
	discovery *discovered
	lastTry   time.Time
	lastErr   error
}

// discovered is what OIDC discovery returned.
type discovered struct {
	oidc          *oidc.Provider
	endpoint      oauth2.Endpoint
	userinfoURL   string
	scopes        []string // scopes to request
	issParameter  bool     // authorization_response_iss_parameter_supported
	signingAlgs   []string
	revocationURL string
}

// New validates cfg and returns a Provider. It makes no network call.
func New(cfg Config) (*Provider, error) {
	if cfg.Name == "" {
		return nil, errors.New("provider name is required")
	}
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("provider %s: client_id is required", cfg.Name)
	}
	switch cfg.Kind {
	case KindOIDC:
		if err := checkURL("issuer", cfg.Issuer); err != nil {
			return nil, fmt.Errorf("provider %s: %w", cfg.Name, err)
		}
	case KindOAuth2:
		for _, u := range [][2]string{{"authorize_url", cfg.AuthURL}, {"token_url", cfg.TokenURL}, {"userinfo_url", cfg.UserinfoURL}} {
			if err := checkURL(u[0], u[1]); err != nil {
				return nil, fmt.Errorf("provider %s: %w", cfg.Name, err)
			}
		}
		if cfg.Mapping.ID == "" {
			cfg.Mapping.ID = "id"
		}
		if cfg.Issuer == "" {
			u, _ := url.Parse(cfg.AuthURL)
			cfg.Issuer = u.Scheme + "://" + u.Host
		}
	default:
		return nil, fmt.Errorf("provider %s: unknown kind %q (want oidc or oauth2)", cfg.Name, cfg.Kind)
	}
	for _, u := range [][2]string{{"authorize_url", cfg.AuthURL}, {"token_url", cfg.TokenURL}, {"userinfo_url", cfg.UserinfoURL}} {
		if u[1] != "" {
			if err := checkURL(u[0], u[1]); err != nil {
				return nil, fmt.Errorf("provider %s: %w", cfg.Name, err)
			}
		}
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = cfg.Name
	}
	client := cfg.HTTPClient
	if client == nil {
		client = NewHTTPClient()
	}
	return &Provider{cfg: cfg, client: client}, nil
}

func checkURL(field, raw string) error {
	if raw == "" {
		return fmt.Errorf("%s is required", field)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%s %q is not an absolute http(s) URL", field, raw)
	}
	return nil
}

// Name is the configured name, used in URLs and headers.
func (p *Provider) Name() string { return p.cfg.Name }

// DisplayName is the name shown on buttons.
func (p *Provider) DisplayName() string { return p.cfg.DisplayName }

// Issuer is the namespace of the provider's subjects: an identity is
// (Issuer, Subject).
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// SignIn reports whether the provider may be used to sign in.
func (p *Provider) SignIn() bool { return p.cfg.SignIn }

// AuthRequest is what an authorization URL carries.
type AuthRequest struct {
	RedirectURL   string
	State         string
	Nonce         string // OIDC only
	CodeChallenge string // S256 challenge; empty when PKCE is disabled
	Scopes        []string
}

// UsesPKCE reports whether authorization requests carry a PKCE challenge.
func (p *Provider) UsesPKCE() bool { return !p.cfg.DisablePKCE }

// AuthCodeURL returns the URL to send the browser to. For OIDC it needs
// discovery, so it can fail with ErrUnavailable.
func (p *Provider) AuthCodeURL(ctx context.Context, req AuthRequest) (string, error) {
	conf, _, err := p.oauth2Config(ctx, req.RedirectURL)
	if err != nil {
		return "", err
	}
	conf.Scopes = mergeScopes(conf.Scopes, req.Scopes)
	var opts []oauth2.AuthCodeOption
	if req.Nonce != "" && p.cfg.Kind == KindOIDC {
		opts = append(opts, oidc.Nonce(req.Nonce))
	}
	if req.CodeChallenge != "" {
		opts = append(opts,
			oauth2.SetAuthURLParam("code_challenge", req.CodeChallenge),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	}
	for k, v := range p.cfg.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return conf.AuthCodeURL(req.State, opts...), nil
}

// oauth2Config returns the client configuration, discovering OIDC endpoints on first use.
func (p *Provider) oauth2Config(ctx context.Context, redirectURL string) (*oauth2.Config, *discovered, error) {
	conf := &oauth2.Config{
		ClientID:     p.cfg.ClientID,
		ClientSecret: p.cfg.ClientSecret,
		RedirectURL:  redirectURL,
		Endpoint:     oauth2.Endpoint{AuthURL: p.cfg.AuthURL, TokenURL: p.cfg.TokenURL},
		Scopes:       slices.Clone(p.cfg.Scopes),
	}
	if p.cfg.Kind != KindOIDC {
		return conf, nil, nil
	}
	d, err := p.discover(ctx)
	if err != nil {
		return nil, nil, err
	}
	if conf.Endpoint.AuthURL == "" {
		conf.Endpoint.AuthURL = d.endpoint.AuthURL
	}
	if conf.Endpoint.TokenURL == "" {
		conf.Endpoint.TokenURL = d.endpoint.TokenURL
	}
	conf.Scopes = mergeScopes(d.scopes, conf.Scopes)
	return conf, d, nil
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

// splitScopes parses a space-separated scope string.
func splitScopes(s string) []string { return strings.Fields(s) }
