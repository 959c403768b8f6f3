// Package devprovider is a small, real OpenID Connect provider for local
// development and for the gateway's tests. It implements the authorization
// code flow (OIDC Core, RFC 6749) with PKCE S256 (RFC 7636), rotating refresh
// tokens, token revocation (RFC 7009) and the iss authorization response
// parameter (RFC 9207). Anyone can sign in as anyone: the sign-in page offers
// preset test users and a form to type any name and email.
//
// All state (codes and tokens) lives in memory and is lost on restart; only
// the subject of a user is stable, because it is derived from the email.
// Several providers can share one listener through a Mux, each under its
// issuer's path with its own keys, clients, tokens and subjects.
// It must never be exposed as a production identity provider.
package devprovider

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	// maxBodyBytes caps every request body.
	maxBodyBytes = 64 << 10
	// maxEntries caps the live codes and tokens kept in memory.
	maxEntries = 100_000
	// codeLifetime is how long an authorization code can be redeemed.
	codeLifetime = 60 * time.Second
	// idTokenLifetime is the validity of every ID token.
	idTokenLifetime = time.Hour
	// refreshTokenLifetime bounds how long an unused refresh token lives.
	refreshTokenLifetime = 30 * 24 * time.Hour
)

// Endpoint paths, relative to the issuer URL's path.
const (
	discoveryPath = "/.well-known/openid-configuration"
	jwksPath      = "/jwks"
	authorizePath = "/authorize"
	tokenPath     = "/token"
	userinfoPath  = "/userinfo"
	revokePath    = "/revoke"
)

// standardScopes are the scopes every provider grants, in the order granted
// scopes are reported (Options.Scopes follow). Requested scopes the provider
// does not grant are ignored.
var standardScopes = []string{"openid", "profile", "email", "offline_access"}

// Client is an OAuth client (relying party) allowed to use the provider.
type Client struct {
	// ID is the client_id. Required and unique.
	ID string
	// Secret is the client_secret, sent with client_secret_basic or
	// client_secret_post. Required.
	Secret string
	// RedirectURIs are matched exactly. When empty, any absolute http or https
	// redirect_uri is accepted (development convenience), but the token request
	// must still repeat the same redirect_uri.
	RedirectURIs []string
}

// Options configures a Server.
type Options struct {
	// Issuer is the absolute http or https URL where the server is reachable,
	// without a trailing slash, query or fragment, e.g. http://localhost:9999
	// or http://127.0.0.1:9099/dev. It is the iss of every ID token, and the
	// endpoints live under its path. Required.
	Issuer string
	// Clients are the clients allowed to sign users in. At least one is required.
	Clients []Client
	// AccessTokenLifetime is how long access tokens are valid. Default: 1 hour.
	AccessTokenLifetime time.Duration
	// Scopes are the scopes the provider grants when a client asks for
	// them, besides openid, profile, email and offline_access: a repo-like
	// scope to try incremental authorization with. Default: none.
	Scopes []string
	// SubjectPrefix begins every subject, which ends with a hash of the
	// email: providers served side by side (see Mux) give one person
	// distinct subjects when their prefixes differ. Default: "dev-".
	SubjectPrefix string
	// Now returns the current time. Default: time.Now. Tests inject a clock.
	Now func() time.Time
}

// Server is the provider, an http.Handler. Create it with New; it is safe
// for concurrent use.
type Server struct {
	issuer        string
	basePath      string
	clients       map[string]*registeredClient
	accessTTL     time.Duration
	now           func() time.Time
	signer        jose.Signer
	scopes        []string // granted when asked for: standardScopes, then Options.Scopes
	subjectPrefix string
	discoveryJSON []byte
	jwksJSON      []byte
	state         *store
}

// registeredClient is a Client with its secret hashed, so that comparing
// secrets in constant time does not depend on their lengths.
type registeredClient struct {
	Client
	secretHash [sha256.Size]byte
}

// New checks the options, generates a fresh RSA-2048 signing key and returns
// the server. ID tokens signed by an earlier Server do not verify against it.
func New(opts Options) (*Server, error) {
	base, err := parseIssuer(opts.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	clients, err := registerClients(opts.Clients)
	if err != nil {
		return nil, err
	}
	if opts.AccessTokenLifetime < 0 {
		return nil, errors.New("access token lifetime must not be negative")
	}
	if opts.AccessTokenLifetime == 0 {
		opts.AccessTokenLifetime = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SubjectPrefix == "" {
		opts.SubjectPrefix = "dev-"
	}
	scopes := slices.Clone(standardScopes)
	for _, sc := range opts.Scopes {
		if err := CheckScope(sc); err != nil {
			return nil, err
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating signing key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.RS256), Use: "sig"}
	thumbprint, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("computing key id: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumbprint)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: jwk.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("creating signer: %w", err)
	}
	jwksJSON, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	if err != nil {
		return nil, fmt.Errorf("encoding key set: %w", err)
	}
	discoveryJSON, err := json.Marshal(discoveryDocument(opts.Issuer, scopes))
	if err != nil {
		return nil, fmt.Errorf("encoding discovery document: %w", err)
	}
	return &Server{
		issuer:        opts.Issuer,
		basePath:      base.Path,
		clients:       clients,
		accessTTL:     opts.AccessTokenLifetime,
		now:           opts.Now,
		scopes:        scopes,
		subjectPrefix: opts.SubjectPrefix,
		signer:        signer,
		discoveryJSON: discoveryJSON,
		jwksJSON:      jwksJSON,
		state:         newStore(opts.Now, maxEntries),
	}, nil
}

// ServeHTTP serves the provider's endpoints under the issuer URL's path:
// /.well-known/openid-configuration, /jwks, /authorize, /token, /userinfo
// and /revoke. Other paths are 404; a wrong method is 405 with Allow.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, s.basePath)
	if !ok {
		http.NotFound(w, r)
		return
	}
	var methods []string
	var handle func(http.ResponseWriter, *http.Request)
	switch path {
	case discoveryPath:
		methods, handle = []string{http.MethodGet}, s.serveJSON(s.discoveryJSON)
	case jwksPath:
		methods, handle = []string{http.MethodGet}, s.serveJSON(s.jwksJSON)
	case authorizePath:
		methods, handle = []string{http.MethodGet, http.MethodPost}, s.handleAuthorize
	case tokenPath:
		methods, handle = []string{http.MethodPost}, s.handleToken
	case userinfoPath:
		methods, handle = []string{http.MethodGet, http.MethodPost}, s.handleUserinfo
	case revokePath:
		methods, handle = []string{http.MethodPost}, s.handleRevoke
	default:
		http.NotFound(w, r)
		return
	}
	if !slices.Contains(methods, r.Method) {
		w.Header().Set("Allow", strings.Join(methods, ", "))
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	handle(w, r)
}

// parseIssuer checks that the issuer is a URL an OIDC client accepts as is.
func parseIssuer(issuer string) (*url.URL, error) {
	if issuer == "" {
		return nil, errors.New("required")
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q: must be an absolute http or https URL", issuer)
	case u.Host == "" || u.User != nil:
		return nil, fmt.Errorf("%q: must have a host and no user information", issuer)
	case strings.ContainsAny(issuer, "?#"):
		return nil, fmt.Errorf("%q: must have no query or fragment", issuer)
	case strings.HasSuffix(issuer, "/"):
		return nil, fmt.Errorf("%q: must have no trailing slash", issuer)
	}
	return u, nil
}

func registerClients(clients []Client) (map[string]*registeredClient, error) {
	if len(clients) == 0 {
		return nil, errors.New("at least one client is required")
	}
	registered := make(map[string]*registeredClient, len(clients))
	for i, c := range clients {
		switch {
		case c.ID == "":
			return nil, fmt.Errorf("client %d: id is required", i)
		case registered[c.ID] != nil:
			return nil, fmt.Errorf("client %q: duplicate id", c.ID)
		case c.Secret == "":
			return nil, fmt.Errorf("client %q: secret is required", c.ID)
		}
		for _, uri := range c.RedirectURIs {
			if _, err := parseRedirectURI(uri); err != nil {
				return nil, fmt.Errorf("client %q: redirect URI: %w", c.ID, err)
			}
		}
		c.RedirectURIs = slices.Clone(c.RedirectURIs)
		registered[c.ID] = &registeredClient{Client: c, secretHash: sha256.Sum256([]byte(c.Secret))}
	}
	return registered, nil
}

// parseRedirectURI accepts an absolute http or https URL without a fragment
// (RFC 6749 section 3.1.2).
func parseRedirectURI(uri string) (*url.URL, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, errors.New("must be an absolute http or https URL")
	}
	if strings.Contains(uri, "#") {
		return nil, errors.New("must have no fragment")
	}
	return u, nil
}

// CheckScope reports a scope that a client could not ask for: scopes are
// printable ASCII without spaces, quotes or backslashes (RFC 6749 section 3.3).
func CheckScope(scope string) error {
	if scope == "" {
		return errors.New("a scope is empty")
	}
	for _, c := range scope {
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return fmt.Errorf("scope %q: only printable ASCII without spaces, quotes or backslashes is allowed", scope)
		}
	}
	return nil
}

func discoveryDocument(issuer string, scopes []string) map[string]any {
	return map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                issuer + authorizePath,
		"token_endpoint":                        issuer + tokenPath,
		"userinfo_endpoint":                     issuer + userinfoPath,
		"jwks_uri":                              issuer + jwksPath,
		"revocation_endpoint":                   issuer + revokePath,
		"scopes_supported":                      scopes,
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported": []string{
			"client_secret_basic", "client_secret_post",
		},
		"claims_supported": []string{
			"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
			"name", "email", "email_verified",
		},
		"authorization_response_iss_parameter_supported": true,
	}
}

func (s *Server) serveJSON(body []byte) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}
}

// writeJSON writes a JSON response that no cache may keep (it carries tokens
// or personal data).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// randomToken returns 32 random bytes, base64url-encoded without padding.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // Never fails: crypto/rand crashes the program instead.
	return base64.RawURLEncoding.EncodeToString(b)
}
