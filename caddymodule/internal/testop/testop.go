// Package testop is a local OAuth 2.0 / OpenID Connect provider for the
// gateway's end-to-end tests. It auto-approves every authorization request,
// counts the calls it receives (so a test can assert that a forged callback
// caused no call to the provider) and can be told, through SetFault, to answer
// with exactly one thing wrong: each Fault is one attack of the threat model
// in docs/security.md.
//
// It listens on 127.0.0.1 only and is meant for _test.go files: its API takes
// a testing.TB and the server is closed by t.Cleanup.
package testop

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

// Mode selects the protocol the provider speaks.
type Mode int

const (
	// OIDC serves discovery, a JWKS, an iss parameter on the authorization
	// response and an RS256 id_token whenever the "openid" scope was requested.
	OIDC Mode = iota
	// OAuth2 is a plain OAuth 2.0 provider: no discovery (404), no JWKS (404),
	// no iss parameter, no id_token, and a userinfo of a custom JSON shape.
	OAuth2
)

// Options configures a Server. The zero value is a working OIDC provider.
type Options struct {
	// Mode is the protocol spoken. Default: OIDC.
	Mode Mode
	// ClientID is the only client the provider knows. Default: "test-client".
	ClientID string
	// ClientSecret authenticates ClientID at the token and revocation
	// endpoints, by HTTP Basic or in the form body. Default: "test-secret".
	ClientSecret string
	// Claims describe the signed-in user. In OIDC mode they are the userinfo
	// response and go into the id_token, which adds iss, aud, iat, exp and
	// nonce. Default: DefaultClaims().
	Claims map[string]any
	// UserinfoBody is, in OAuth2 mode, the exact JSON object the userinfo
	// endpoint returns, for example
	// {"data":{"uid":12345,"mail":"x@example.com","mail_ok":"true"}}, so that
	// field mappings (dotted paths, numeric ids) can be tested. When nil,
	// Claims is served. Ignored in OIDC mode.
	UserinfoBody map[string]any
	// AccessTokenLifetime is how long access tokens are accepted by the
	// userinfo endpoint; expires_in is sent in whole seconds. Zero means one
	// hour; a negative value means the tokens never expire and expires_in is
	// omitted from token responses.
	AccessTokenLifetime time.Duration
	// UserinfoOnly names claims that go to userinfo but not into the
	// id_token, as providers do with large or optional claims (OIDC Core
	// 5.4). OIDC mode only.
	UserinfoOnly []string
	// IssueRefreshToken makes token responses carry a refresh_token. The
	// refresh_token grant rotates it: the old one stops working. Default: false.
	IssueRefreshToken bool
	// JWKSCacheControl is the Cache-Control header of the JWKS response, to
	// test how long relying parties cache the keys. Default: "no-store".
	JWKSCacheControl string
	// RefreshReuseGrace is how long a rotated refresh token keeps working
	// after the refresh that rotated it, as Okta's grace period, Auth0's
	// reuse interval or Cognito's RetryGracePeriodSeconds allow. Zero: it
	// stops working at once.
	RefreshReuseGrace time.Duration
	// UsersByLoginHint lets the authorization request's login_hint choose
	// who signs in, as a person typing their name at the provider would:
	// see HintClaims. A request without one signs in as Claims. Default:
	// false (everyone is Claims).
	UsersByLoginHint bool
	// TokenFaultRate is the share, from 0 to 1, of token-endpoint calls that
	// misbehave with one of TokenFaults, drawn at random for each call and
	// taking the place of the SetFault fault for that call; Injected lists
	// them. Default: 0 (none).
	TokenFaultRate float64
	// TokenFaults are the faults TokenFaultRate draws from, with equal
	// chances: FaultTokenServerError, FaultTokenError, FaultTokenHTML,
	// FaultTokenHuge, FaultSlow, FaultTokenHang or FaultTokenLostAnswer.
	// Default: FaultTokenServerError only.
	TokenFaults []Fault
}

// DefaultClaims returns the claims of the default user, "user-1".
func DefaultClaims() map[string]any {
	return map[string]any{
		"sub":            "user-1",
		"email":          "u1@example.com",
		"email_verified": true,
		"name":           "User One",
		"picture":        "https://img.example/u1.png",
	}
}

// Endpoint paths.
const (
	pathDiscovery = "/.well-known/openid-configuration"
	pathJWKS      = "/jwks"
	pathAuthorize = "/authorize"
	pathToken     = "/token"
	pathUserinfo  = "/userinfo"
	pathRevoke    = "/revoke"
	pathEndSess   = "/end_session"
)

// endpointPaths maps the names Calls counts requests under to their paths.
var endpointPaths = map[string]string{
	"discovery": pathDiscovery,
	"jwks":      pathJWKS,
	"authorize": pathAuthorize,
	"token":     pathToken,
	"userinfo":  pathUserinfo,
	"revoke":    pathRevoke,
	// end_session is the RP-Initiated Logout endpoint (logout.go).
	"end_session": pathEndSess,
}

// Secrets returns every authorization code, access token, refresh token and
// ID token the provider has issued, so a test can check that none of them
// leaked into logs or pages.
func (s *Server) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{s.clientSecret}, s.secrets...)
}

// Server is a running provider. Its methods are safe for concurrent use.
type Server struct {
	t                testing.TB
	srv              *httptest.Server
	done             chan struct{} // closed at cleanup, so that FaultSlow never delays it
	mode             Mode
	clientID         string
	clientSecret     string
	lifetime         time.Duration
	refresh          bool
	userinfoOnly     []string
	strayKey         func() *rsa.PrivateKey // FaultUnknownKid's key, generated on first use
	jwksCacheControl string
	reuseGrace       time.Duration
	usersByHint      bool
	faultRate        float64
	tokenFaults      []Fault

	mu            sync.Mutex
	claims        []byte // JSON, so that callers' later edits to their map have no effect
	userinfoBody  []byte // JSON, OAuth2 mode only; nil means claims
	fault         Fault
	loginAt       time.Time     // the person's last sign-in here; zero: unsaid
	faultChanged  chan struct{} // closed by SetFault: hung requests then drop their connection
	calls         map[string]int
	lastQuery     url.Values
	codes         map[string]grant
	accessTokens  map[string]accessToken
	refreshTokens map[string]grant
	injected      []Injection                // the TokenFaultRate draws, oldest first
	secrets       []string                   // every code and token ever issued, for leak checks
	keys          map[string]*rsa.PrivateKey // every signing key made, by kid
	published     []string                   // the kids in the JWKS
	signing       string                     // the kid that signs id_tokens
	lastSID       string                     // the sid of the last id_token issued
	lastEndQuery  url.Values
	rotated       map[string]grant // rotated refresh tokens still in their reuse grace; expires is its end
}

// grant is what an authorization code or a refresh token stands for.
type grant struct {
	redirectURI string
	challenge   string // PKCE S256 code_challenge; empty when none was sent
	nonce       string
	scope       string
	authTime    time.Time // the id_token's auth_time; zero: none
	sid         string    // the provider's session of the authorization
	expires     time.Time // codes, and rotated refresh tokens in their grace
	claims      []byte    // JSON of the user (UsersByLoginHint); nil: the server's claims
}

// accessToken is what an issued access token stands for.
type accessToken struct {
	expiry time.Time // zero means never
	claims []byte    // as grant.claims
}

// Start starts a provider on 127.0.0.1; t.Cleanup closes it.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("testop: generating the signing key: %v", err)
	}
	s := &Server{
		t:                t,
		done:             make(chan struct{}),
		mode:             opts.Mode,
		clientID:         cmp.Or(opts.ClientID, "test-client"),
		clientSecret:     cmp.Or(opts.ClientSecret, "test-secret"),
		lifetime:         cmp.Or(opts.AccessTokenLifetime, time.Hour),
		refresh:          opts.IssueRefreshToken,
		userinfoOnly:     opts.UserinfoOnly,
		strayKey:         sync.OnceValue(mustRSAKey),
		jwksCacheControl: cmp.Or(opts.JWKSCacheControl, "no-store"),
		usersByHint:      opts.UsersByLoginHint,
		faultRate:        opts.TokenFaultRate,
		tokenFaults:      opts.TokenFaults,
		calls:            make(map[string]int),
		codes:            make(map[string]grant),
		accessTokens:     make(map[string]accessToken),
		refreshTokens:    make(map[string]grant),
		reuseGrace:       opts.RefreshReuseGrace,
		rotated:          make(map[string]grant),
		faultChanged:     make(chan struct{}),
	}
	if len(s.tokenFaults) == 0 {
		s.tokenFaults = []Fault{FaultTokenServerError}
	}
	kid := "k-" + rand.Text()[:10]
	s.keys, s.published, s.signing = map[string]*rsa.PrivateKey{kid: key}, []string{kid}, kid
	claims := opts.Claims
	if claims == nil {
		claims = DefaultClaims()
	}
	s.claims = marshalObject(t, "Claims", claims)
	if s.mode == OAuth2 && opts.UserinfoBody != nil {
		s.userinfoBody = marshalObject(t, "UserinfoBody", opts.UserinfoBody)
	}

	// An explicit listener: httptest may otherwise fall back to [::1] or
	// obey -httptest.serve.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testop: listening on 127.0.0.1: %v", err)
	}
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: s.routes()}}
	s.srv.Start()
	t.Cleanup(func() {
		close(s.done)
		s.srv.Close()
	})
	return s
}

// URL is the issuer: http://127.0.0.1:port, without a trailing slash.
func (s *Server) URL() string { return s.srv.URL }

// AuthorizeURL is the authorization endpoint.
func (s *Server) AuthorizeURL() string { return s.srv.URL + pathAuthorize }

// TokenURL is the token endpoint.
func (s *Server) TokenURL() string { return s.srv.URL + pathToken }

// UserinfoURL is the userinfo endpoint.
func (s *Server) UserinfoURL() string { return s.srv.URL + pathUserinfo }

// RevokeURL is the RFC 7009 revocation endpoint.
func (s *Server) RevokeURL() string { return s.srv.URL + pathRevoke }

// NativeIDToken returns the ID token this provider's native SDK (Google
// Sign-In and the like) would hand an app whose client id is audience, for
// a sign-in request that carried nonce: the signed-in user's claims, signed
// like every ID token (the current fault applies). No code or access token
// comes with it.
func (s *Server) NativeIDToken(audience, nonce string) string {
	s.mu.Lock()
	claims := s.claims
	s.mu.Unlock()
	tok := s.idToken(claims, audience, nonce, time.Time{}, "", s.currentFault(), time.Now())
	s.mu.Lock()
	s.secrets = append(s.secrets, tok)
	s.mu.Unlock()
	return tok
}

// SetClaims replaces the signed-in user's claims for subsequent id_tokens and
// userinfo responses (in OAuth2 mode, only when UserinfoBody was nil).
func (s *Server) SetClaims(claims map[string]any) {
	s.t.Helper()
	b := marshalObject(s.t, "SetClaims", claims)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims = b
}

// SetLoginTime says when the person last signed in at the provider: from
// now on id_tokens carry it as auth_time, until an authorization request
// with prompt=login, or a max_age that it exceeds, makes them sign in again
// (auth_time then becomes that moment). Without it, id_tokens carry
// auth_time only when max_age was requested (OIDC Core 2).
func (s *Server) SetLoginTime(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loginAt = t
}

// SetFault makes subsequent responses misbehave as f describes; FaultNone
// restores correct behaviour. Requests hung by FaultTokenHang or
// FaultTokenLostAnswer then end by dropping their connection, unanswered.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
	close(s.faultChanged)
	s.faultChanged = make(chan struct{})
}

// Calls reports how many requests an endpoint has received: "discovery",
// "jwks", "authorize", "token", "userinfo", "revoke" or "end_session". Requests the endpoint
// refused, and discovery or JWKS requests in OAuth2 mode, count too.
func (s *Server) Calls(endpoint string) int {
	if _, ok := endpointPaths[endpoint]; !ok {
		s.t.Errorf("testop: Calls(%q): unknown endpoint", endpoint)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[endpoint]
}

// LastAuthorizeQuery returns a copy of the query of the last authorization
// request (state, nonce, code_challenge, scope…), or nil if none came.
func (s *Server) LastAuthorizeQuery() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastQuery == nil {
		return nil
	}
	q := make(url.Values, len(s.lastQuery))
	for k, v := range s.lastQuery {
		q[k] = slices.Clone(v)
	}
	return q
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for name, h := range map[string]http.HandlerFunc{
		"discovery":   s.discovery,
		"jwks":        s.jwks,
		"authorize":   s.authorize,
		"token":       s.token,
		"userinfo":    s.userinfo,
		"revoke":      s.revoke,
		"end_session": s.endSession,
	} {
		mux.HandleFunc(endpointPaths[name], func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.calls[name]++
			s.mu.Unlock()
			h(w, r)
		})
	}
	return mux
}

func (s *Server) currentFault() Fault {
	f, _ := s.faultAndChange()
	return f
}

// faultAndChange returns the fault and a channel closed when it changes.
func (s *Server) faultAndChange() (Fault, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault, s.faultChanged
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	if s.mode != OIDC {
		http.NotFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                         s.URL(),
		"authorization_endpoint":                         s.AuthorizeURL(),
		"token_endpoint":                                 s.TokenURL(),
		"userinfo_endpoint":                              s.UserinfoURL(),
		"revocation_endpoint":                            s.RevokeURL(),
		"jwks_uri":                                       s.URL() + pathJWKS,
		"response_types_supported":                       []string{"code"},
		"response_modes_supported":                       []string{"query"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token"},
		"subject_types_supported":                        []string{"public"},
		"scopes_supported":                               []string{"openid", "email", "profile", "offline_access"},
		"claims_supported":                               []string{"iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name", "picture"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":               []string{"S256"},
		"id_token_signing_alg_values_supported":          []string{"RS256"},
		"authorization_response_iss_parameter_supported": true,
		"end_session_endpoint":                           s.EndSessionURL(),
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
	})
}
