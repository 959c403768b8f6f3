package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store/storetest"
)

// discoveryServer serves a discovery document that a test edits and breaks.
type discoveryServer struct {
	srv *httptest.Server

	mu     sync.Mutex
	token  string // token_endpoint path
	jwks   string // jwks_uri path
	issuer string // "" means the server's URL
	status int    // answered instead of the document when not 0
	calls  int
}

func newDiscoveryServer(t *testing.T) *discoveryServer {
	s := &discoveryServer{token: "/token-1", jwks: "/jwks-1"}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.calls++
		if s.status != 0 {
			http.Error(w, "down", s.status)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": or(s.issuer, s.srv.URL), "authorization_endpoint": s.srv.URL + "/authorize",
			"token_endpoint": s.srv.URL + s.token, "jwks_uri": s.srv.URL + s.jwks,
		})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *discoveryServer) set(edit func(*discoveryServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	edit(s)
}

// TestDiscovery_ExpiresAndOutlivesOutages: the discovery document was
// cached forever, so new endpoints or a new jwks_uri needed a reload. It
// now lives as its caching headers say, keeps the key cache while jwks_uri
// stays, and a failed refetch keeps the last good document.
func TestDiscovery_ExpiresAndOutlivesOutages(t *testing.T) {
	s := newDiscoveryServer(t)
	p, err := New(Config{Name: "op", Kind: KindOIDC, Issuer: s.srv.URL, ClientID: testClientID, ClientSecret: testClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	clock := storetest.NewClock()
	p.discovery.now = clock.Now
	var firstKeys *keySet
	steps := []struct {
		name    string
		advance time.Duration
		edit    func(*discoveryServer)
		token   string // the token endpoint in use; "" means unavailable
		jwks    string
		calls   int
	}{
		{name: "first use", token: "/token-1", jwks: "/jwks-1", calls: 1},
		{name: "the provider moves its token endpoint", advance: 4 * time.Minute, edit: func(s *discoveryServer) { s.token = "/token-2" }, token: "/token-1", jwks: "/jwks-1", calls: 1},
		{name: "after max-age", advance: time.Minute, token: "/token-2", jwks: "/jwks-1", calls: 2},
		{name: "a new jwks_uri", advance: 5 * time.Minute, edit: func(s *discoveryServer) { s.jwks = "/jwks-2" }, token: "/token-2", jwks: "/jwks-2", calls: 3},
		{name: "down after max-age: the last good document", advance: 5 * time.Minute, edit: func(s *discoveryServer) { s.status = http.StatusBadGateway }, token: "/token-2", jwks: "/jwks-2", calls: 4},
		{name: "no retry at once", token: "/token-2", jwks: "/jwks-2", calls: 4},
		{name: "retry after 1 s", advance: time.Second, token: "/token-2", jwks: "/jwks-2", calls: 5},
		{name: "an issuer that is not ours is a failure too", advance: 2 * time.Second, edit: func(s *discoveryServer) { s.status, s.issuer = 0, "https://evil.example" }, token: "/token-2", jwks: "/jwks-2", calls: 6},
		{name: "back", advance: 4 * time.Second, edit: func(s *discoveryServer) { s.issuer, s.token = "", "/token-3" }, token: "/token-3", jwks: "/jwks-2", calls: 7},
		{name: "down for over a day", advance: 24*time.Hour + 6*time.Minute, edit: func(s *discoveryServer) { s.status = http.StatusServiceUnavailable }, token: "", calls: 8},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		if st.edit != nil {
			s.set(st.edit)
		}
		e, err := p.endpoints(context.Background())
		switch {
		case st.token == "":
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("%s: err = %v, want ErrUnavailable", st.name, err)
			}
		case err != nil:
			t.Fatalf("%s: %v", st.name, err)
		case e.token != s.srv.URL+st.token || e.d.keys.url != s.srv.URL+st.jwks:
			t.Fatalf("%s: token endpoint %s, jwks %s; want %s, %s", st.name, e.token, e.d.keys.url, st.token, st.jwks)
		case i == 0:
			firstKeys = e.d.keys
		case st.jwks == "/jwks-1" && e.d.keys != firstKeys:
			t.Fatalf("%s: the key cache was dropped although jwks_uri is the same", st.name)
		}
		s.mu.Lock()
		calls := s.calls
		s.mu.Unlock()
		if calls != st.calls {
			t.Fatalf("%s: %d discovery requests, want %d", st.name, calls, st.calls)
		}
	}
}
