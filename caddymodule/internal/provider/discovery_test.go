package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestDiscovery_EndpointsFollowTheRuleOfConfiguredOnes: a discovered
// endpoint was used whatever its scheme, so a document naming an http
// token_endpoint on the internet got the client secret in clear text, and
// an http jwks_uri let the network sign ID tokens. Every endpoint the
// gateway will use now passes checkURL, or the provider is unavailable with
// the endpoint named.
func TestDiscovery_EndpointsFollowTheRuleOfConfiguredOnes(t *testing.T) {
	var doc map[string]any
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	const public = "http://idp.example.com/x"
	tests := []struct {
		name  string
		field string // set to value in the document; a nil value removes it
		value any
		edit  func(*Config)
		want  string // "" accepts; else a substring of the ErrUnavailable error
	}{
		{"https everywhere", "", nil, nil, ""},
		{"http authorization_endpoint", "authorization_endpoint", public, nil, `authorization_endpoint "http://idp.example.com/x" must use https`},
		{"http token_endpoint", "token_endpoint", public, nil, `token_endpoint "http://idp.example.com/x" must use https`},
		{"http jwks_uri", "jwks_uri", public, nil, `jwks_uri "http://idp.example.com/x" must use https`},
		{"http userinfo_endpoint", "userinfo_endpoint", public, nil, `userinfo_endpoint "http://idp.example.com/x" must use https`},
		{"http revocation_endpoint", "revocation_endpoint", public, nil, `revocation_endpoint "http://idp.example.com/x" must use https`},
		{"http end_session_endpoint, signing out there", "end_session_endpoint", public, func(c *Config) { c.SignOutAtProvider = true }, `end_session_endpoint "http://idp.example.com/x" must use https`},
		{"script end_session_endpoint, signing out there", "end_session_endpoint", "javascript:alert(1)", func(c *Config) { c.SignOutAtProvider = true }, "end_session_endpoint"},
		{"http end_session_endpoint, unused", "end_session_endpoint", public, nil, ""},
		{"no token_endpoint", "token_endpoint", nil, nil, "token_endpoint is required"},
		{"no jwks_uri", "jwks_uri", nil, nil, "jwks_uri is required"},
		{"a token_endpoint that is no URL", "token_endpoint", "idp.example.com/token", nil, "not an absolute http(s) URL"},
		{"no userinfo or revocation endpoint", "userinfo_endpoint", nil, nil, ""},
		{"http on a host off the internet", "token_endpoint", "http://keycloak:8080/token", nil, ""},
		{"http on a private address", "jwks_uri", "http://10.1.2.3/jwks", nil, ""},
		{"http token_endpoint replaced by the configuration", "token_endpoint", public, func(c *Config) { c.TokenURL = "https://idp.example.com/token" }, ""},
		{"http jwks_uri replaced by the configuration", "jwks_uri", public, func(c *Config) { c.JWKSURL = "https://idp.example.com/jwks" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			doc = map[string]any{"issuer": srv.URL, "authorization_endpoint": "https://idp.example.com/authorize",
				"token_endpoint": "https://idp.example.com/token", "jwks_uri": "https://idp.example.com/jwks",
				"userinfo_endpoint": "https://idp.example.com/userinfo", "revocation_endpoint": "https://idp.example.com/revoke",
				"end_session_endpoint": "https://idp.example.com/logout"}
			if tt.field != "" {
				doc[tt.field] = tt.value
				if tt.value == nil {
					delete(doc, tt.field)
				}
			}
			mu.Unlock()
			cfg := Config{Name: "op", Kind: KindOIDC, Issuer: srv.URL, ClientID: testClientID, ClientSecret: testClientSecret}
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.endpoints(context.Background())
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want == "":
			case !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.want):
				t.Fatalf("err = %v, want ErrUnavailable with %q", err, tt.want)
			case strings.Contains(err.Error(), testClientSecret):
				t.Fatalf("the error holds the client secret: %v", err)
			}
		})
	}
}
