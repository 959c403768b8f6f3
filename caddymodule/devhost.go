package caddymodule

import (
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

	"github.com/socialgate/socialgate/caddymodule/internal/config"
	"github.com/socialgate/socialgate/caddymodule/internal/devprovider"
)

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
func startDevHost(d *config.DevProvider, secret []byte, logger *zap.Logger) (*devRef, error) {
	addr := d.Address()
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
	for _, id := range d.Identities() {
		issuers = append(issuers, d.Issuer(id))
	}
	logger.Warn("the dev provider is running: anyone can sign in as anyone; never use it in production",
		zap.Strings("issuers", issuers))
	return h, nil
}

// swap serves d's identities, reusing the running ones that d leaves as
// they are.
func (h *devHost) swap(d *config.DevProvider, secret []byte) error {
	var running map[string]devServer
	if old := h.handler.Load(); old != nil {
		running = old.identities
	}
	next := &devHandler{identities: map[string]devServer{}}
	var servers []*devprovider.Server
	for _, id := range d.Identities() {
		spec := devSpec{issuer: d.Issuer(id), clientSecret: config.DevClientSecret(secret, id.Name),
			grants: strings.Join(id.Grants, " "), lifetime: time.Duration(d.AccessTokenLifetime)}
		s, ok := running[id.Name]
		if !ok || s.spec != spec {
			srv, err := devprovider.New(devprovider.Options{
				Issuer:              spec.issuer,
				Clients:             []devprovider.Client{{ID: config.DevClientID(id.Name), Secret: spec.clientSecret}},
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
