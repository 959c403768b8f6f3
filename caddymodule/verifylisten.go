package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/config"
)

// The verify listener's limits. Its callers are proxies on the operator's
// network: a header block fits the largest cookies a browser sends (64
// KiB; more is 431), a slow or idle connection is closed.
const (
	verifyMaxHeaderBytes    = 64 << 10
	verifyReadHeaderTimeout = 10 * time.Second
	verifyIdleTimeout       = 2 * time.Minute
	verifyShutdownTimeout   = 5 * time.Second
)

// verifyServer is the running verify listener (config.VerifyListener).
type verifyServer struct {
	srv  *http.Server
	done chan struct{} // closed when Serve returns
}

// startVerifyListener starts forward_auth's own listener when the config
// has one: a plain net/http server whose handler is the gateway's verify
// alone. The socket comes from Caddy's listener pool, so a reload that
// keeps the address binds it again beside the old config's until that one
// stops.
func (a *App) startVerifyListener() error {
	fa := a.ForwardAuth
	if fa == nil || fa.Listen == nil {
		return nil
	}
	addr, trusted, err := fa.Listen.Parse()
	if err != nil {
		return err
	}
	lnAny, err := addr.Listen(a.ctx, 0, net.ListenConfig{})
	if err != nil {
		return fmt.Errorf("forward_auth listen %s: %w", fa.Listen.Address, err)
	}
	ln, ok := lnAny.(net.Listener)
	if !ok {
		if c, ok := lnAny.(interface{ Close() error }); ok {
			c.Close()
		}
		return fmt.Errorf("forward_auth listen %s: not a stream listener", fa.Listen.Address)
	}
	logger := a.logger.Named("verify_listener")
	var protocols http.Protocols
	protocols.SetHTTP1(true) // no h2c: nothing but HTTP/1.1 (and 1.0)
	vs := &verifyServer{done: make(chan struct{}), srv: &http.Server{
		Handler:           a.gateway.VerifyHandler(peerIn(trusted)),
		ReadHeaderTimeout: verifyReadHeaderTimeout,
		IdleTimeout:       verifyIdleTimeout,
		MaxHeaderBytes:    verifyMaxHeaderBytes,
		// OPTIONS * goes to the handler (trust check, then 404), not to
		// net/http's own 200 for any peer.
		DisableGeneralOptionsHandler: true,
		Protocols:                    &protocols,
		// net/http's own complaints (a panic, a bad request line); they
		// never hold a request's headers.
		ErrorLog: zap.NewStdLog(logger),
	}}
	go func() {
		defer close(vs.done)
		if err := vs.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serving", zap.Error(err))
		}
	}()
	a.verify = vs
	logger.Info("verify listener", zap.String("address", ln.Addr().String()), zap.Stringers("trusted", trusted))
	return nil
}

// stop closes the listener and waits, up to verifyShutdownTimeout, for the
// answers in progress; then it closes every connection.
func (vs *verifyServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), verifyShutdownTimeout)
	defer cancel()
	if err := vs.srv.Shutdown(ctx); err != nil {
		vs.srv.Close()
	}
	<-vs.done
}

// peerIn tells a request whose TCP peer (RemoteAddr, which net/http sets
// from the connection, never from a header) is in one of ranges.
func peerIn(ranges []netip.Prefix) func(*http.Request) bool {
	return func(r *http.Request) bool {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			return false
		}
		ip := ap.Addr().WithZone("")
		for _, p := range ranges {
			if p.Contains(ip) || p.Contains(ip.Unmap()) {
				return true
			}
		}
		return false
	}
}

// parseVerifyListen parses forward_auth's listen option:
//
//	listen <host:port> [{
//		trusted <cidr|ip>...
//	}]
func parseVerifyListen(d *caddyfile.Dispenser) (*config.VerifyListener, error) {
	l := &config.VerifyListener{}
	if err := oneArg(d, &l.Address); err != nil {
		return nil, err
	}
	if _, _, err := l.Parse(); err != nil {
		return nil, d.Err(err.Error())
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if d.Val() != "trusted" {
			return nil, unknownOption(d, verifyListenOptions, "unrecognized forward_auth listen option %q", d.Val())
		}
		args := d.RemainingArgs()
		if len(args) == 0 {
			return nil, d.Errf("trusted: want one or more IP ranges, like 10.0.0.0/8")
		}
		l.Trusted = append(l.Trusted, args...)
		if _, _, err := l.Parse(); err != nil {
			return nil, d.Err(err.Error())
		}
	}
	return l, nil
}
