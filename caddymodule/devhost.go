package caddymodule

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/config"
	"github.com/socialgate/socialgate/caddymodule/internal/devprovider"
)

// devHosts keeps one dev provider server per listen address across reloads,
// so a reload neither fights over the port nor forgets issued tokens.
var devHosts = caddy.NewUsagePool()

// devHost is a running dev provider: a listener and a server whose
// providers a newer config may replace.
type devHost struct {
	addr   string
	server *http.Server
	host   devprovider.Host
}

// devRef is one config's reference to a devHost; release drops it once.
type devRef struct {
	*devHost
	once sync.Once
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
		h.server = &http.Server{Handler: &h.host, ReadHeaderTimeout: 10 * time.Second}
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
	if err := h.host.Set(d.Servers(secret)); err != nil {
		return fmt.Errorf("dev_provider: %w", err)
	}
	return nil
}

func (h *devRef) release() {
	h.once.Do(func() { devHosts.Delete(h.addr) })
}
