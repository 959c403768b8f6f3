package devprovider

import (
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
)

// Host serves the providers of its latest Set side by side, on one
// listener (see Mux). A later Set keeps each provider whose options it
// repeats, with its keys, codes and live tokens, so that reconfiguring the
// host signs no one out of a provider it leaves as it was. The zero Host
// serves nothing (404) until the first Set; it is safe for concurrent use.
type Host struct {
	current atomic.Pointer[hosted]
}

// hosted is what one Set serves.
type hosted struct {
	mux     *Mux
	servers map[string]hostedServer // by name
}

// hostedServer is a running provider and the options it was made from.
type hostedServer struct {
	opts Options
	srv  *Server
}

// Set serves providers, each by a name of the caller's (which the errors
// name), from now on. On an error the host keeps serving what it served.
func (h *Host) Set(providers map[string]Options) error {
	var running map[string]hostedServer
	if old := h.current.Load(); old != nil {
		running = old.servers
	}
	next := &hosted{servers: map[string]hostedServer{}}
	var servers []*Server
	for name, opts := range providers {
		s, ok := running[name]
		if !ok || !sameOptions(s.opts, opts) {
			srv, err := New(opts)
			if err != nil {
				return fmt.Errorf("provider %s: %w", name, err)
			}
			s = hostedServer{opts: opts, srv: srv}
		}
		next.servers[name] = s
		servers = append(servers, s.srv)
	}
	mux, err := NewMux(servers...)
	if err != nil {
		return err
	}
	next.mux = mux
	h.current.Store(next)
	return nil
}

// ServeHTTP serves the providers of the latest Set.
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cur := h.current.Load()
	if cur == nil {
		http.NotFound(w, r)
		return
	}
	cur.mux.ServeHTTP(w, r)
}

// sameOptions reports whether a server made from a would be one made from
// b; options with a clock of their own (Now) never are.
func sameOptions(a, b Options) bool {
	return a.Issuer == b.Issuer && a.AccessTokenLifetime == b.AccessTokenLifetime && a.SubjectPrefix == b.SubjectPrefix &&
		slices.Equal(a.Scopes, b.Scopes) && a.Now == nil && b.Now == nil &&
		slices.EqualFunc(a.Clients, b.Clients, func(x, y Client) bool {
			return x.ID == y.ID && x.Secret == y.Secret && slices.Equal(x.RedirectURIs, y.RedirectURIs)
		})
}
