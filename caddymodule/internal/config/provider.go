package config

import (
	"fmt"
	"slices"

	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
)

// ProviderConfig configures one provider.
type ProviderConfig struct {
	// Name identifies the provider in URLs (/_auth/oauth/NAME/start) and
	// records. Required and unique.
	Name string `json:"name"`

	// Type is oidc (an OpenID Connect issuer, found by discovery), oauth2 (a
	// plain OAuth 2.0 server with explicit endpoints and field mapping), or a
	// preset: google, github, microsoft, apple, facebook, x, discord, gitlab,
	// linkedin, slack, notion, bitbucket, twitch, spotify. A preset knows its
	// endpoints, scopes, profile mapping and email rules; every endpoint can
	// still be overridden.
	Type string `json:"type"`

	// DisplayName is shown on buttons. Default: the name.
	DisplayName string `json:"display_name,omitempty"`

	// ClientID is the client id registered at the provider. Required.
	ClientID string `json:"client_id"`

	// ClientSecret is the client secret; {env.*} and {file.*} are expanded at
	// load, so the secret never sits in the JSON config. Required for every
	// preset but apple (which signs its own from PrivateKey); without one,
	// an oidc or oauth2 client is a public client and needs PKCE.
	ClientSecret string `json:"client_secret,omitempty"`

	// Issuer is the OIDC issuer URL (required for oidc). For oauth2 it names
	// the namespace of the provider's user ids. Default for oauth2: the
	// authorize URL's scheme and host.
	Issuer string `json:"issuer,omitempty"`

	// AuthorizeURL, TokenURL and UserinfoURL are the provider's endpoints:
	// required for oauth2; for oidc they override discovery. Every URL of a
	// provider is https, or plain http to a host that cannot be on the
	// internet (localhost, a loopback or private address, a single-label
	// name such as a container's).
	AuthorizeURL string `json:"authorize_url,omitempty"`
	TokenURL     string `json:"token_url,omitempty"`
	UserinfoURL  string `json:"userinfo_url,omitempty"`

	// RevokeURL is the token revocation endpoint, used when an account is
	// disconnected. Default: the preset's, or for oidc the discovery
	// document's revocation_endpoint.
	RevokeURL string `json:"revoke_url,omitempty"`

	// EmailsURL is the email list endpoint of github and bitbucket
	// (overridable for self-hosted instances).
	EmailsURL string `json:"emails_url,omitempty"`

	// JWKSURL is where an oidc provider publishes its ID token keys; with
	// authorize_url and token_url it lets the provider skip discovery.
	JWKSURL string `json:"jwks_url,omitempty"`

	// Tenant is the microsoft tenant: common (the default), organizations,
	// consumers, a tenant id or a verified domain.
	Tenant string `json:"tenant,omitempty"`

	// BaseURL is the root of a self-hosted instance (gitlab; default
	// https://gitlab.com); the endpoints derive from it.
	BaseURL string `json:"base_url,omitempty"`

	// TeamID, KeyID and PrivateKey sign apple's client secret: the Apple
	// developer team id, the key id, and the .p8 key's PEM text (use
	// {file./path/AuthKey_XXXX.p8}). Required for apple.
	TeamID     string `json:"team_id,omitempty"`
	KeyID      string `json:"key_id,omitempty"`
	PrivateKey string `json:"private_key,omitempty"`

	// BundleIDs are the apple app ids (com.example.app) whose native Sign in
	// with Apple results POST /_auth/native/apple accepts. Default: none.
	BundleIDs []string `json:"bundle_ids,omitempty"`

	// NativeClientIDs are the client ids of native apps (Google's iOS and
	// Android clients, …) whose ID tokens POST /_auth/native/id_token
	// accepts: exactly these as the token's audience (and azp, when it has
	// one). The web client_id is not accepted unless listed here (Google's
	// Android SDK needs it: its tokens are for the server client id, with
	// the Android client as azp). Not for apple, whose native sign-ins go
	// through bundle_ids. Default: none.
	NativeClientIDs []string `json:"native_client_ids,omitempty"`

	// Scopes are requested in addition to the defaults (oidc: openid email
	// profile, plus offline_access when the provider advertises it).
	Scopes []string `json:"scopes,omitempty"`

	// Fields map an oauth2 provider's userinfo JSON to the profile, as dotted
	// paths. Default: id for the user id; the others are unset. Groups names
	// where any provider keeps the person's groups (for OIDC a claim of the
	// ID token, else of userinfo), for allow_groups; unset, none are read.
	Fields *provider.Mapping `json:"fields,omitempty"`

	// GroupsFrom reads the person's groups, for allow_groups, from the
	// provider's API at each sign-in: for github orgs (each organization's
	// login, acme) and teams (acme/platform); either adds the read:org
	// scope. Default: none.
	GroupsFrom []string `json:"groups_from,omitempty"`

	// AuthParams are extra authorization request parameters.
	AuthParams map[string]string `json:"auth_params,omitempty"`

	// PKCE sends a PKCE S256 challenge with every authorization request.
	// Default: true; turn it off only for servers that refuse it.
	PKCE *bool `json:"pkce,omitempty"`

	// SignIn allows signing in with this provider. false makes it
	// connect-only. Default: true.
	SignIn *bool `json:"sign_in,omitempty"`

	// SignOutAtProvider sends a person who signs out of the gateway after
	// signing in with this provider on to sign out at the provider too
	// (OpenID Connect RP-Initiated Logout): the gateway's session ends
	// first, then the browser goes to the discovery document's
	// end_session_endpoint and comes back to /_auth/signed-out, which must
	// be registered at the provider as a post-logout redirect URI. Only for
	// OpenID providers found by discovery; one without an
	// end_session_endpoint is skipped. Default: false, since signing out of
	// an app rarely means to sign out of Google or the company's SSO.
	SignOutAtProvider bool `json:"sign_out_at_provider,omitempty"`

	// LinkByEmail makes this provider trusted to vouch for linking by email:
	// a first sign-in through it may join the existing user holding the same
	// verified address (as the provider's own rules decide it: Google's
	// email_verified, GitHub's primary verified address, …; never Apple
	// relay addresses), provided a trusted provider vouched for that user's
	// address too. A first sign-in through an untrusted provider whose
	// verified address a trusted one vouched for elsewhere is refused with
	// a page that tells the person to sign in to that account and connect
	// this provider from there. Default: true for apple, bitbucket,
	// discord, github, gitlab, google, linkedin, microsoft, slack and twitch
	// at their own endpoints; false for oidc, oauth2, the dev provider, and
	// a preset pointed at other endpoints (issuer, URLs, base_url, or email
	// fields of its own). true for a provider that never reports a verified
	// address (oauth2 without an email_verified field) fails the load.
	LinkByEmail *bool `json:"link_by_email,omitempty"`
}

// build expands secrets and validates the config; it makes no network call.
func (pc ProviderConfig) build(expand Expand) (*provider.Provider, error) {
	if pc.Name == "" {
		return nil, fmt.Errorf("a %s provider has no name", pc.Type)
	}
	cfg := pc.config()
	for _, f := range []struct {
		option string
		dst    *string
	}{{"client_id", &cfg.ClientID}, {"client_secret", &cfg.ClientSecret}, {"private_key", &cfg.PrivateKey}} {
		v, err := expandValue(expand, "provider "+pc.Name+": "+f.option, *f.dst)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	client := provider.NewHTTPClient()
	client.Transport = metrics.Transport(client.Transport, pc.Name)
	cfg.HTTPClient = client
	return provider.New(cfg)
}

// Check checks the provider as Options.Prepare will, but for what its
// placeholders expand to; it makes no network call.
func (pc ProviderConfig) Check() error { return provider.Check(pc.config()) }

// config is the provider's configuration as written, secrets unexpanded.
func (pc ProviderConfig) config() provider.Config {
	cfg := provider.Config{
		Name:              pc.Name,
		Kind:              pc.Type,
		DisplayName:       pc.DisplayName,
		ClientID:          pc.ClientID,
		ClientSecret:      pc.ClientSecret,
		Issuer:            pc.Issuer,
		AuthURL:           pc.AuthorizeURL,
		TokenURL:          pc.TokenURL,
		UserinfoURL:       pc.UserinfoURL,
		RevokeURL:         pc.RevokeURL,
		EmailsURL:         pc.EmailsURL,
		JWKSURL:           pc.JWKSURL,
		Tenant:            pc.Tenant,
		BaseURL:           pc.BaseURL,
		TeamID:            pc.TeamID,
		KeyID:             pc.KeyID,
		PrivateKey:        pc.PrivateKey,
		BundleIDs:         pc.BundleIDs,
		NativeClientIDs:   pc.NativeClientIDs,
		GroupsFrom:        pc.GroupsFrom,
		Scopes:            pc.Scopes,
		AuthParams:        pc.AuthParams,
		DisablePKCE:       pc.PKCE != nil && !*pc.PKCE,
		SignIn:            pc.SignIn == nil || *pc.SignIn,
		LinkByEmail:       pc.LinkByEmail,
		SignOutAtProvider: pc.SignOutAtProvider,
	}
	if pc.Fields != nil {
		cfg.Mapping = *pc.Fields
	}
	return cfg
}

// opsProviders lists the providers for the operations.
func opsProviders(providers []*provider.Provider) []ops.Provider {
	out := make([]ops.Provider, len(providers))
	for i, p := range providers {
		out[i] = p
	}
	return out
}

// buildProviders turns the config into providers, the dev provider's
// first; their client secret derives from devSecret. Each needs a name and
// an issuer of its own: an identity is (issuer, subject), so two providers
// of one issuer would take each other's identities for their own.
func (o *Options) buildProviders(expand Expand, devSecret []byte) ([]*provider.Provider, error) {
	var out []*provider.Provider
	configs := o.Providers
	if o.DevProvider != nil {
		devs, err := o.DevProvider.providerConfigs(devSecret)
		if err != nil {
			return nil, err
		}
		configs = append(devs, configs...)
	}
	for _, pc := range configs {
		p, err := pc.build(expand)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if _, err := DuplicateName(o.ProviderNames()); err != nil {
		return nil, err
	}
	issuers := map[string]string{}
	for _, p := range out {
		if other, ok := issuers[p.Issuer()]; ok {
			return nil, fmt.Errorf("provider %s: its issuer %s is provider %s's too, so each would take the other's identities for its own; "+
				"give one an issuer of its own (an oauth2 provider's defaults to its authorize_url's scheme and host)", p.Name(), p.Issuer(), other)
		}
		issuers[p.Issuer()] = p.Name()
	}
	return out, nil
}

// ProviderNames lists the names of the configured providers, the dev
// provider's first.
func (o *Options) ProviderNames() []string {
	var names []string
	if o.DevProvider != nil {
		for _, id := range o.DevProvider.Identities() {
			names = append(names, id.Name)
		}
	}
	for _, pc := range o.Providers {
		names = append(names, pc.Name)
	}
	return names
}

// DuplicateName returns the index of the first name that repeats an
// earlier one, and the error that says so; -1 and nil when each is unique.
func DuplicateName(names []string) (int, error) {
	for i, n := range names {
		if slices.Contains(names[:i], n) {
			return i, fmt.Errorf("provider %s: the name is used twice; give each provider its own name (provider <type> <name>)", n)
		}
	}
	return -1, nil
}
