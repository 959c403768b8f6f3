package caddymodule

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

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
}

// DevProviderName is the provider name of the dev provider.
const DevProviderName = "dev"

const devClientID = "socialgate-dev"

func (d *DevProvider) listen() string {
	if d.Listen == "" {
		return "localhost:9999"
	}
	return d.Listen
}

func (d *DevProvider) issuer() string { return "http://" + d.listen() }

// clientSecret is derived from the cookie secret, so it is stable across
// restarts and reloads without being configured.
func devClientSecret(secret []byte) string {
	return base64.RawURLEncoding.EncodeToString(keyring.Derive(secret, "dev provider client", 32))
}

// providerConfig is the gateway's side of the dev provider: a plain oidc provider.
func (d *DevProvider) providerConfig(secret []byte) (ProviderConfig, error) {
	if _, _, err := net.SplitHostPort(d.listen()); err != nil {
		return ProviderConfig{}, fmt.Errorf("dev_provider: listen %q is not host:port", d.Listen)
	}
	return ProviderConfig{
		Name:         DevProviderName,
		Type:         provider.KindOIDC,
		DisplayName:  "Dev provider",
		ClientID:     devClientID,
		ClientSecret: devClientSecret(secret),
		Issuer:       d.issuer(),
		LinkByEmail:  d.LinkByEmail,
	}, nil
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

type devHandler struct {
	srv      *devprovider.Server
	lifetime time.Duration
}

func (h *devHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.handler.Load().srv.ServeHTTP(w, r)
}

func (h *devHost) Destruct() error { return h.server.Close() }

// startDevHost starts the dev provider, or joins the one already serving its
// address (keeping its state unless the options changed).
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
	if loaded && h.handler.Load().lifetime != time.Duration(d.AccessTokenLifetime) {
		if err := h.swap(d, secret); err != nil {
			h.release()
			return nil, err
		}
	}
	logger.Warn("the dev provider is running: anyone can sign in as anyone; never use it in production",
		zap.String("issuer", d.issuer()))
	return h, nil
}

func (h *devHost) swap(d *DevProvider, secret []byte) error {
	srv, err := devprovider.New(devprovider.Options{
		Issuer:              d.issuer(),
		Clients:             []devprovider.Client{{ID: devClientID, Secret: devClientSecret(secret)}},
		AccessTokenLifetime: time.Duration(d.AccessTokenLifetime),
	})
	if err != nil {
		return fmt.Errorf("dev_provider: %w", err)
	}
	h.handler.Store(&devHandler{srv: srv, lifetime: time.Duration(d.AccessTokenLifetime)})
	return nil
}

func (h *devRef) release() {
	h.once.Do(func() { devHosts.Delete(h.addr) })
}
