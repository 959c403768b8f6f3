package devprovider

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Mux serves several providers on one listener, each under its issuer's
// path, like http://localhost:9999 and http://localhost:9999/corp: two
// providers with their own keys, clients, codes, tokens and subjects, to try
// connecting a second account locally.
type Mux struct {
	servers []*Server // longest path first
}

// NewMux returns a Mux of servers, whose issuers must have distinct paths.
func NewMux(servers ...*Server) (*Mux, error) {
	m := &Mux{servers: slices.Clone(servers)}
	slices.SortFunc(m.servers, func(a, b *Server) int { return cmp.Compare(len(b.basePath), len(a.basePath)) })
	for i := 1; i < len(m.servers); i++ {
		if m.servers[i].basePath == m.servers[i-1].basePath {
			return nil, fmt.Errorf("issuers %s and %s share the path %q", m.servers[i-1].issuer, m.servers[i].issuer, m.servers[i].basePath)
		}
	}
	return m, nil
}

// ServeHTTP hands the request to the provider with the longest issuer path
// that the request's path continues with a slash: every endpoint lies below
// its issuer, so /corp/token is corp's, and /token the root provider's.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, s := range m.servers {
		if strings.HasPrefix(r.URL.Path, s.basePath+"/") {
			s.ServeHTTP(w, r)
			return
		}
	}
	http.NotFound(w, r)
}
