package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/socialgate/socialgate/caddymodule/internal/confcheck"
	"github.com/socialgate/socialgate/caddymodule/internal/devprovider"
	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
)

// DevProvider configures the built-in development OpenID provider. It
// listens on its own address, so the gateway talks to it over real HTTP like
// to any other provider. For local use only.
type DevProvider struct {
	// Listen is the address the dev provider listens on; it is also its
	// issuer, http://LISTEN. Default: localhost:9999.
	Listen string `json:"listen,omitempty"`
	// AccessTokenLifetime is how long its access tokens last. Default: 1h.
	AccessTokenLifetime caddy.Duration `json:"access_token_lifetime,omitempty"`
	// LinkByEmail makes the dev provider trusted to vouch for linking by
	// email, as a provider's link_by_email. Default: false: anyone can
	// type any address there and tick "verified".
	LinkByEmail *bool `json:"link_by_email,omitempty"`
	// Providers are more providers that the dev provider plays besides
	// dev, on the same address: each at the issuer http://LISTEN/NAME, with
	// its own client, keys and subjects (the same test users sign in there
	// as other identities). They make connecting a second account, and
	// scopes granted only when asked for, work offline. Default: none.
	Providers []DevIdentity `json:"providers,omitempty"`
	// AllowRemote lets Listen be an address that other machines reach
	// (0.0.0.0:9999, :9999, a LAN address, a container's): then anyone who
	// reaches it signs in to the gateway as anyone. Default: false, and
	// Listen must be localhost or a loopback address.
	AllowRemote bool `json:"allow_remote,omitempty"`
}

// DevIdentity is one more provider played by the dev provider.
type DevIdentity struct {
	// Name is the provider's name in the gateway (its buttons, URLs and
	// require) and the path of its issuer: lowercase letters, digits and
	// '-', not dev. Required.
	Name string `json:"name"`
	// DisplayName is shown on buttons. Default: the name.
	DisplayName string `json:"display_name,omitempty"`
	// SignIn allows signing in with it; false makes it connect-only: it
	// can only be connected, from the account page, to a signed-in user.
	// Default: true.
	SignIn *bool `json:"sign_in,omitempty"`
	// LinkByEmail makes it trusted to vouch for linking by email, as a
	// provider's link_by_email. Default: false.
	LinkByEmail *bool `json:"link_by_email,omitempty"`
	// Grants are the scopes it grants when asked for, besides openid,
	// profile, email and offline_access. The gateway asks for them only
	// where a route requires them (require NAME scopes …), so they show
	// incremental authorization. Default: none.
	Grants []string `json:"grants,omitempty"`
}

// DevProviderName is the provider name of the dev provider.
const DevProviderName = "dev"

// Address is the address the dev provider listens on, Listen or its
// default.
func (d *DevProvider) Address() string {
	if d.Listen == "" {
		return "localhost:9999"
	}
	return d.Listen
}

// Identities are the providers the dev provider plays, dev first, at the
// root of its address.
func (d *DevProvider) Identities() []DevIdentity {
	dev := DevIdentity{Name: DevProviderName, DisplayName: "Dev provider", LinkByEmail: d.LinkByEmail}
	return append([]DevIdentity{dev}, d.Providers...)
}

// Issuer is the issuer URL of the identity id.
func (d *DevProvider) Issuer(id DevIdentity) string {
	if id.Name == DevProviderName {
		return "http://" + d.Address()
	}
	return "http://" + d.Address() + "/" + id.Name
}

// devClientID is the gateway's client id at the identity named name:
// socialgate-dev at dev.
func devClientID(name string) string { return "socialgate-" + name }

// devClientSecret is derived from the cookie secret, so it is stable across
// restarts and reloads without being configured.
func devClientSecret(secret []byte, name string) string {
	return base64.RawURLEncoding.EncodeToString(keyring.Derive(secret, "dev provider client "+name, 32))
}

// CheckDevName reports a name that cannot be a dev identity's: it is a path
// segment of the issuer and a provider name.
func CheckDevName(name string) error {
	switch {
	case name == DevProviderName:
		return fmt.Errorf("the name %s is the dev provider's own; choose another, like corp", name)
	case name == "" || len(name) > 40 || name[0] == '-' ||
		strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "":
		return fmt.Errorf("the name %q is not lowercase letters, digits and '-' (at most 40, like corp)", name)
	}
	return nil
}

// Check validates the options, as at load. A listen address that other
// machines reach needs AllowRemote: an operator who copied the quick
// start's dev_provider into a server must not open it to the world.
func (d *DevProvider) Check() error {
	host, _, err := net.SplitHostPort(d.Address())
	switch {
	case err != nil:
		return fmt.Errorf("dev_provider: listen %q is not host:port", d.Listen)
	case !confcheck.Loopback(host) && !d.AllowRemote:
		return fmt.Errorf("dev_provider: %s is reachable from other machines, and the dev provider signs anyone in as anyone: "+
			"listen on localhost:PORT, or add allow_remote to the dev_provider block if that is what you want", d.Address())
	}
	seen := map[string]bool{}
	for _, id := range d.Providers {
		if err := CheckDevName(id.Name); err != nil {
			return fmt.Errorf("dev_provider: provider: %w", err)
		}
		if seen[id.Name] {
			return fmt.Errorf("dev_provider: provider %s is defined twice", id.Name)
		}
		seen[id.Name] = true
		for _, sc := range id.Grants {
			if err := devprovider.CheckScope(sc); err != nil {
				return fmt.Errorf("dev_provider: provider %s: grants: %w", id.Name, err)
			}
		}
	}
	return nil
}

// providerConfigs are the gateway's side of the dev provider: a plain oidc
// provider per identity, dev first.
func (d *DevProvider) providerConfigs(secret []byte) ([]ProviderConfig, error) {
	if err := d.Check(); err != nil {
		return nil, err
	}
	var out []ProviderConfig
	for _, id := range d.Identities() {
		out = append(out, ProviderConfig{
			Name:         id.Name,
			Type:         provider.KindOIDC,
			DisplayName:  id.DisplayName,
			ClientID:     devClientID(id.Name),
			ClientSecret: devClientSecret(secret, id.Name),
			Issuer:       d.Issuer(id),
			SignIn:       id.SignIn,
			LinkByEmail:  id.LinkByEmail,
		})
	}
	return out, nil
}

// Servers are the dev provider's side of its identities, by name: each
// with the gateway as its client, whose secret derives from secret.
func (d *DevProvider) Servers(secret []byte) map[string]devprovider.Options {
	out := map[string]devprovider.Options{}
	for _, id := range d.Identities() {
		out[id.Name] = devprovider.Options{
			Issuer:              d.Issuer(id),
			Clients:             []devprovider.Client{{ID: devClientID(id.Name), Secret: devClientSecret(secret, id.Name)}},
			AccessTokenLifetime: time.Duration(d.AccessTokenLifetime),
			Scopes:              id.Grants,
			SubjectPrefix:       id.Name + "-",
		}
	}
	return out
}
