// Package provider talks to OAuth 2.0 and OpenID Connect providers: it builds
// authorization URLs, redeems codes, validates ID tokens beyond what go-oidc
// checks, maps a provider's profile to a Profile, refreshes and revokes
// tokens. One Provider type serves every kind: a generic OIDC issuer found by
// discovery, a generic OAuth 2.0 server with explicit endpoints and a field
// mapping, or a preset (google, github, ...) that fills all of that in from
// the table in presets.go.
package provider

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/socialgate/socialgate/caddymodule/internal/confcheck"
)

// Generic kinds of provider; Kinds lists the presets too.
const (
	KindOIDC   = "oidc"
	KindOAuth2 = "oauth2"
)

// Errors a caller can tell apart.
var (
	// ErrUnavailable means the provider could not be reached or answered
	// something unusable (discovery, token, userinfo or revocation endpoint).
	ErrUnavailable = errors.New("provider unavailable")
	// ErrRejected means what the provider sent failed validation, or the
	// provider refused the request: an ID token, an issuer, a profile, a code.
	// The flow must stop.
	ErrRejected = errors.New("provider response rejected")
	// ErrInvalidGrant means the token endpoint refused the grant: the refresh
	// token is revoked or expired. The user must authorize again; retrying
	// cannot help. It comes wrapped together with ErrRejected.
	ErrInvalidGrant = errors.New("grant revoked or expired")
	// ErrRefused means the token endpoint refused the gateway's request
	// for another reason than a dead grant: an HTTP 4xx or an OAuth error
	// answer (invalid_client, unauthorized_client, invalid_request…), most
	// often a client id or secret the provider does not take. Retrying the
	// same request cannot help. It comes as a *RefusedError, wrapped
	// together with ErrRejected.
	ErrRefused = errors.New("the provider refused the request")
)

// Config describes one provider. Kind oidc needs Issuer; kind oauth2 needs
// AuthURL, TokenURL and UserinfoURL; a preset needs only the client
// credentials (and Apple its key). Any URL given here replaces the preset's
// or discovery's, which is how self-hosted instances and tests are pointed.
type Config struct {
	Name         string
	Kind         string // oidc, oauth2, or a preset: see Kinds
	DisplayName  string // default: the preset's name, else Name
	ClientID     string
	ClientSecret string // required but for apple (signed with PrivateKey) and public clients of oidc, oauth2
	// Issuer is the OIDC issuer, or for OAuth2 the namespace of its subjects
	// (default: the preset's, but the authorization URL's scheme and host
	// when AuthURL is set or the kind is oauth2).
	Issuer      string
	AuthURL     string
	TokenURL    string
	UserinfoURL string
	// RevokeURL is the token revocation endpoint. Default: the preset's, or
	// for OIDC discovery's revocation_endpoint; none means Revoke does nothing.
	RevokeURL string
	// EmailsURL is the email list endpoint of github and bitbucket.
	EmailsURL string
	// JWKSURL is where ID token keys are published. With AuthURL and
	// TokenURL it lets an OIDC provider skip discovery (apple always does).
	JWKSURL string
	// Tenant is the microsoft tenant: common (the default), organizations,
	// consumers, a tenant id or a verified domain.
	Tenant string
	// BaseURL is a self-hosted instance's root URL (gitlab, default
	// https://gitlab.com); the preset's endpoints derive from it.
	BaseURL string
	// TeamID, KeyID and PrivateKey (the PEM text of the .p8 key file, an
	// ECDSA P-256 key) sign apple's client secret. Required for apple.
	TeamID     string
	KeyID      string
	PrivateKey string
	// BundleIDs are the apple app ids (com.example.app) whose native Sign in
	// with Apple results the gateway accepts (ExchangeNative).
	BundleIDs []string
	// NativeClientIDs are the client ids of native apps (Google's iOS and
	// Android clients, …) whose ID tokens VerifyNativeIDToken accepts: these
	// exactly; the web ClientID only when listed here too.
	NativeClientIDs []string
	// Scopes are requested in addition to the kind's (see RequiredScopes).
	Scopes []string
	// Mapping names the userinfo JSON fields of an OAuth2 provider; for a
	// preset, the fields set here replace the preset's.
	Mapping Mapping
	// GroupsFrom names the preset's API lists that give the person's groups,
	// read at each sign-in: for github orgs (each organization's login) and
	// teams (org/team-slug), which add the read:org scope.
	GroupsFrom []string
	// AuthParams are extra authorization request parameters; they replace
	// the preset's of the same name.
	AuthParams map[string]string
	// DisablePKCE turns off PKCE for servers that refuse it. PKCE is on by
	// default, except for the presets whose servers break on it.
	DisablePKCE bool
	// SignIn reports whether the provider may be used to sign in (true) or only
	// to connect an account to a signed-in user (false).
	SignIn bool
	// LinkByEmail says whether this provider may vouch for linking by email:
	// whether an address it calls verified lets a first sign-in join the
	// user holding that address, and lets its vouching for a user's address
	// admit another provider's newcomer (see LinksByEmail). Nil takes the
	// default: true only for presets with reliable email rules at their own
	// endpoints. true for a provider that never reports a verified address
	// is a configuration error.
	LinkByEmail *bool
	// SignOutAtProvider: see Provider.SignOutAtProvider (OpenID providers
	// found by discovery only).
	SignOutAtProvider bool
	// HTTPClient makes every outbound call; default: NewHTTPClient().
	HTTPClient *http.Client
}

// Mapping names where a JSON document keeps each profile field, as dotted
// paths ("data.user.id", "images.0.url": numbers index arrays). Numbers
// become strings. A value with braces is a template: each {path} is replaced
// by that field, and the whole is empty when any of them is
// ("https://cdn.example/{id}/{avatar}.png").
type Mapping struct {
	ID            string `json:"id,omitempty"`
	Email         string `json:"email,omitempty"`
	EmailVerified string `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
	Picture       string `json:"picture,omitempty"`
	Username      string `json:"username,omitempty"`
	// Groups is where the person's groups are: a list of strings, or one
	// string. For an OIDC provider it names a claim of the ID token, else
	// of userinfo ("groups" at Keycloak, Authentik, Okta). No default: the
	// groups are read only when it is set.
	Groups string `json:"groups,omitempty"`
}

// Provider is a configured, ready-to-use provider. Safe for concurrent use.
// For OIDC, discovery happens on first use and is cached (discoveryCache),
// so a provider that is down never fails a config load.
type Provider struct {
	cfg    Config // URLs resolved from the preset
	pre    preset
	params map[string]string // authorization parameters: preset's, then cfg's
	client *http.Client
	secret *clientSecretJWT // apple only
	// linkByEmail is the effective Config.LinkByEmail.
	linkByEmail bool
	// native signs the client secret of each bundle id (apple, native apps).
	native map[string]*clientSecretJWT
	// probedStyle remembers which client authentication a server without
	// a declared style accepted (an oauth2.AuthStyle).
	probedStyle atomic.Int32

	// static is an OIDC provider's configured endpoints and keys, when the
	// configuration names them all; else discovery finds them.
	static    *discovered
	discovery *cached[*discovered]
}

// reservedParams carry the flow's own values; a configured parameter must
// not replace them (a fixed state would undo the CSRF defence).
var reservedParams = []string{"client_id", "redirect_uri", "response_type", "state", "nonce",
	"code_challenge", "code_challenge_method", "scope"}

// tenantPattern keeps the tenant a single path segment.
var tenantPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,254}$`)

// New validates cfg and returns a Provider. It makes no network call.
func New(cfg Config) (*Provider, error) { return newProvider(cfg, true) }

func newProvider(cfg Config, readKey bool) (*Provider, error) {
	if cfg.Name == "" {
		return nil, errors.New("provider name is required")
	}
	pre, ok := presets[cfg.Kind]
	if !ok {
		return nil, fmt.Errorf("provider %s: unknown kind %q (%s)", cfg.Name, cfg.Kind, confcheck.Hint(cfg.Kind, Kinds()))
	}
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("%s: client_id is required: write the client id the provider issued, like client_id {env.%s_CLIENT_ID}", label(cfg), envName(cfg.Name))
	}
	p := &Provider{pre: pre, client: cfg.HTTPClient}
	own := ownEndpoints(cfg, pre)
	if err := p.resolve(&cfg, readKey); err != nil {
		return nil, fmt.Errorf("%s: %w", label(cfg), err)
	}
	p.cfg = cfg
	if err := p.setLinkByEmail(own); err != nil {
		return nil, fmt.Errorf("%s: %w", label(cfg), err)
	}
	if err := checkClientSecret(cfg, pre); err != nil {
		return nil, fmt.Errorf("%s: %w", label(cfg), err)
	}
	if p.client == nil {
		p.client = NewHTTPClient()
	}
	if pre.oidc {
		p.initDiscovery()
	}
	p.params = make(map[string]string, len(pre.authParams)+len(cfg.AuthParams))
	for k, v := range pre.authParams {
		p.params[k] = v
	}
	for k, v := range cfg.AuthParams {
		p.params[k] = v
	}
	return p, nil
}

// resolve fills cfg from the preset and checks what the kind needs; with
// readKey it also reads Apple's private key.
func (p *Provider) resolve(cfg *Config, readKey bool) error {
	pre := p.pre
	uses := func(param string) bool {
		for _, u := range []string{pre.issuer, pre.authURL, pre.tokenURL, pre.userinfoURL, pre.emailsURL, pre.jwksURL, pre.revoke.url} {
			if strings.Contains(u, param) {
				return true
			}
		}
		return false
	}
	switch {
	case !uses("{tenant}") && cfg.Tenant != "":
		return errors.New("tenant applies only to microsoft")
	case uses("{tenant}") && cfg.Tenant == "":
		cfg.Tenant = "common"
	case uses("{tenant}") && !tenantPattern.MatchString(cfg.Tenant):
		return fmt.Errorf("tenant %q is not a tenant id, a domain, common, organizations or consumers", cfg.Tenant)
	}
	switch {
	case !uses("{base}") && cfg.BaseURL != "":
		return errors.New("base_url applies only to self-hosted presets (gitlab)")
	case uses("{base}"):
		if cfg.BaseURL == "" {
			cfg.BaseURL = pre.base
		}
		if err := checkURL("base_url", cfg.BaseURL); err != nil {
			return err
		}
		cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	}
	r := strings.NewReplacer("{tenant}", cfg.Tenant, "{base}", cfg.BaseURL, "{client_id}", url.PathEscape(cfg.ClientID))
	if pre.oidc || cfg.AuthURL == "" {
		// An OAuth 2.0 preset pointed at another server (GitHub Enterprise)
		// is another namespace of user ids: it gets the server's, below.
		cfg.Issuer = or(cfg.Issuer, r.Replace(pre.issuer))
	}
	for _, f := range []struct {
		dst *string
		def string
	}{
		{&cfg.AuthURL, pre.authURL}, {&cfg.TokenURL, pre.tokenURL},
		{&cfg.UserinfoURL, pre.userinfoURL}, {&cfg.EmailsURL, pre.emailsURL}, {&cfg.JWKSURL, pre.jwksURL},
		{&cfg.RevokeURL, pre.revoke.url},
	} {
		if *f.dst == "" {
			*f.dst = r.Replace(f.def)
		}
	}
	switch {
	case len(cfg.NativeClientIDs) > 0 && pre.clientSecretJWT:
		return errors.New("native_client_ids do not apply to apple: list the app's bundle id in bundle_ids")
	case len(cfg.NativeClientIDs) > 0 && !pre.oidc:
		return errors.New("native_client_ids apply only to OpenID providers: this one issues no ID tokens")
	}
	if err := CheckScopes(cfg.Scopes); err != nil {
		return err
	}
	for k := range cfg.AuthParams {
		if slices.Contains(reservedParams, k) {
			return fmt.Errorf("auth_params may not set %s: the gateway sets it", k)
		}
	}
	cfg.Mapping = pre.mapping.overriddenBy(cfg.Mapping)
	if err := checkURLs(cfg, pre); err != nil {
		return err
	}
	if err := checkSignOut(cfg, pre); err != nil {
		return err
	}
	if !pre.oidc && cfg.Issuer == "" {
		u, _ := url.Parse(cfg.AuthURL)
		cfg.Issuer = u.Scheme + "://" + u.Host
	}
	if !pre.oidc && cfg.Mapping.ID == "" {
		cfg.Mapping.ID = "id"
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = pre.display
	}
	if cfg.DisplayName == "" {
		cfg.DisplayName = cfg.Name
	}
	if !pre.clientSecretJWT {
		if cfg.TeamID != "" || cfg.KeyID != "" || cfg.PrivateKey != "" || len(cfg.BundleIDs) > 0 {
			return errors.New("team_id, key_id, private_key and bundle_ids apply only to apple")
		}
		return nil
	}
	for _, f := range []struct{ name, value string }{{"team_id", cfg.TeamID}, {"key_id", cfg.KeyID}, {"private_key", cfg.PrivateKey}} {
		if strings.TrimSpace(f.value) == "" {
			return fmt.Errorf("%s is required: apple signs its client secret with team_id, key_id and private_key", f.name)
		}
	}
	for _, id := range cfg.BundleIDs {
		if !bundleIDPattern.MatchString(id) {
			return fmt.Errorf("bundle_ids: %q is not a bundle id like com.example.app", id)
		}
	}
	if !readKey {
		return nil
	}
	var err error
	if p.secret, err = newClientSecretJWT(cfg.TeamID, cfg.KeyID, cfg.ClientID, cfg.PrivateKey); err != nil {
		return err
	}
	p.native = map[string]*clientSecretJWT{}
	for _, id := range cfg.BundleIDs {
		if p.native[id], err = newClientSecretJWT(cfg.TeamID, cfg.KeyID, id, cfg.PrivateKey); err != nil {
			return err
		}
	}
	return nil
}

// overriddenBy returns m with the fields that o sets replaced.
func (m Mapping) overriddenBy(o Mapping) Mapping {
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&m.ID, o.ID}, {&m.Email, o.Email}, {&m.EmailVerified, o.EmailVerified},
		{&m.Name, o.Name}, {&m.Picture, o.Picture}, {&m.Username, o.Username}, {&m.Groups, o.Groups},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	return m
}

// Name is the configured name, used in URLs and headers.
func (p *Provider) Name() string { return p.cfg.Name }

// DisplayName is the name shown on buttons.
func (p *Provider) DisplayName() string { return p.cfg.DisplayName }

// Kind is the provider's type: oidc, oauth2 or a preset (google, github…).
func (p *Provider) Kind() string { return p.cfg.Kind }

// Issuer is the provider's configured issuer. For most providers it is the
// namespace of subjects; a multi-tenant one (microsoft) has one namespace
// per tenant: use Result.Issuer for identities.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// SignIn reports whether the provider may be used to sign in.
func (p *Provider) SignIn() bool { return p.cfg.SignIn }

// UsesPKCE reports whether authorization requests carry a PKCE challenge.
func (p *Provider) UsesPKCE() bool { return !p.cfg.DisablePKCE && !p.pre.noPKCE }

// FormPost reports whether the provider returns to the callback with a
// cross-site POST (response_mode=form_post, as Apple does): SameSite=Lax
// cookies do not come with it.
func (p *Provider) FormPost() bool { return p.params["response_mode"] == "form_post" }

// RequiredScopes are the scopes every authorization of this provider asks
// for: the kind's (generic OIDC: openid email profile) and the configured
// ones. AuthCodeURL may add offline_access when discovery advertises it.
func (p *Provider) RequiredScopes() []string {
	base := p.pre.scopes
	if base == nil && p.pre.oidc {
		base = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	if len(p.cfg.GroupsFrom) > 0 {
		base = mergeScopes(base, []string{p.pre.groupsScope})
	}
	return mergeScopes(base, p.cfg.Scopes)
}
