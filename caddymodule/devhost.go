package caddymodule

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

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

func (d *DevProvider) listen() string {
	if d.Listen == "" {
		return "localhost:9999"
	}
	return d.Listen
}

// identities are the providers the dev provider plays, dev first, at the
// root of its address.
func (d *DevProvider) identities() []DevIdentity {
	dev := DevIdentity{Name: DevProviderName, DisplayName: "Dev provider", LinkByEmail: d.LinkByEmail}
	return append([]DevIdentity{dev}, d.Providers...)
}

func (d *DevProvider) issuer(id DevIdentity) string {
	if id.Name == DevProviderName {
		return "http://" + d.listen()
	}
	return "http://" + d.listen() + "/" + id.Name
}

// devClientID is the gateway's client id at the identity named name:
// socialgate-dev at dev.
func devClientID(name string) string { return "socialgate-" + name }

// devClientSecret is derived from the cookie secret, so it is stable across
// restarts and reloads without being configured.
func devClientSecret(secret []byte, name string) string {
	return base64.RawURLEncoding.EncodeToString(keyring.Derive(secret, "dev provider client "+name, 32))
}

// checkDevName reports a name that cannot be a dev identity's: it is a path
// segment of the issuer and a provider name.
func checkDevName(name string) error {
	switch {
	case name == DevProviderName:
		return fmt.Errorf("the name %s is the dev provider's own; choose another, like corp", name)
	case name == "" || len(name) > 40 || name[0] == '-' ||
		strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "":
		return fmt.Errorf("the name %q is not lowercase letters, digits and '-' (at most 40, like corp)", name)
	}
	return nil
}

// check validates the options, as at load. A listen address that other
// machines reach needs AllowRemote: an operator who copied the quick
// start's dev_provider into a server must not open it to the world.
func (d *DevProvider) check() error {
	host, _, err := net.SplitHostPort(d.listen())
	switch {
	case err != nil:
		return fmt.Errorf("dev_provider: listen %q is not host:port", d.Listen)
	case !confcheck.Loopback(host) && !d.AllowRemote:
		return fmt.Errorf("dev_provider: %s is reachable from other machines, and the dev provider signs anyone in as anyone: "+
			"listen on localhost:PORT, or add allow_remote to the dev_provider block if that is what you want", d.listen())
	}
	seen := map[string]bool{}
	for _, id := range d.Providers {
		if err := checkDevName(id.Name); err != nil {
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
	if err := d.check(); err != nil {
		return nil, err
	}
	var out []ProviderConfig
	for _, id := range d.identities() {
		out = append(out, ProviderConfig{
			Name:         id.Name,
			Type:         provider.KindOIDC,
			DisplayName:  id.DisplayName,
			ClientID:     devClientID(id.Name),
			ClientSecret: devClientSecret(secret, id.Name),
			Issuer:       d.issuer(id),
			SignIn:       id.SignIn,
			LinkByEmail:  id.LinkByEmail,
		})
	}
	return out, nil
}

// devHosts keeps one dev provider server per listen address across reloads,
// so a reload neither fights over the port nor forgets issued tokens.
var devHosts = caddy.NewUsagePool()

// devHost is a running dev provider: a listener and a server whose handler a
// newer config may replace.
type devHost struct {
	addr    string
	server  *http.Server
	handler atomic.Pointer[devHandler]
}

// devRef is one config's reference to a devHost; release drops it once.
type devRef struct {
	*devHost
	once sync.Once
}

// devHandler serves the identities of one config.
type devHandler struct {
	mux        *devprovider.Mux
	identities map[string]devServer
}

// devServer is a running identity and what it was made from: a newer config
// that asks for the same keeps it, with its keys and live tokens.
type devServer struct {
	spec devSpec
	srv  *devprovider.Server
}

type devSpec struct {
	issuer, clientSecret, grants string
	lifetime                     time.Duration
}

func (h *devHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.handler.Load().mux.ServeHTTP(w, r)
}

func (h *devHost) Destruct() error { return h.server.Close() }

// startDevHost starts the dev provider, or joins the one already serving its
// address (keeping the state of every identity whose options are unchanged).
func startDevHost(d *DevProvider, secret []byte, logger *zap.Logger) (*devRef, error) {
	addr := d.listen()
	v, loaded, err := devHosts.LoadOrNew(addr, func() (caddy.Destructor, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("dev_provider: %w", err)
		}
		h := &devHost{addr: addr}
		h.server = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		if err := h.swap(d, secret); err != nil {
			ln.Close()
			return nil, err
		}
		go func() {
			if err := h.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("dev provider stopped", zap.Error(err))
			}
		}()
		return h, nil
	})
	if err != nil {
		return nil, err
	}
	h := &devRef{devHost: v.(*devHost)}
	if loaded {
		if err := h.swap(d, secret); err != nil {
			h.release()
			return nil, err
		}
	}
	var issuers []string
	for _, id := range d.identities() {
		issuers = append(issuers, d.issuer(id))
	}
	logger.Warn("the dev provider is running: anyone can sign in as anyone; never use it in production",
		zap.Strings("issuers", issuers))
	return h, nil
}

// swap serves d's identities, reusing the running ones that d leaves as
// they are.
func (h *devHost) swap(d *DevProvider, secret []byte) error {
	var running map[string]devServer
	if old := h.handler.Load(); old != nil {
		running = old.identities
	}
	next := &devHandler{identities: map[string]devServer{}}
	var servers []*devprovider.Server
	for _, id := range d.identities() {
		spec := devSpec{issuer: d.issuer(id), clientSecret: devClientSecret(secret, id.Name),
			grants: strings.Join(id.Grants, " "), lifetime: time.Duration(d.AccessTokenLifetime)}
		s, ok := running[id.Name]
		if !ok || s.spec != spec {
			srv, err := devprovider.New(devprovider.Options{
				Issuer:              spec.issuer,
				Clients:             []devprovider.Client{{ID: devClientID(id.Name), Secret: spec.clientSecret}},
				AccessTokenLifetime: spec.lifetime,
				Scopes:              id.Grants,
				SubjectPrefix:       id.Name + "-",
			})
			if err != nil {
				return fmt.Errorf("dev_provider: provider %s: %w", id.Name, err)
			}
			s = devServer{spec: spec, srv: srv}
		}
		next.identities[id.Name] = s
		servers = append(servers, s.srv)
	}
	mux, err := devprovider.NewMux(servers...)
	if err != nil {
		return fmt.Errorf("dev_provider: %w", err)
	}
	next.mux = mux
	h.handler.Store(next)
	return nil
}

func (h *devRef) release() {
	h.once.Do(func() { devHosts.Delete(h.addr) })
}
