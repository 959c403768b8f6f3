package provider

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// rediscoverAfter bounds how often a failing discovery is retried, so a down
// provider costs one outbound call per interval, not one per request.
const rediscoverAfter = 5 * time.Second

// discovered is what OIDC discovery returned (or, for a static provider,
// what the configuration says).
type discovered struct {
	oidc *oidc.Provider
	// issuer is the discovery document's issuer: the configured one, or for
	// a tenantIssuer preset possibly another, or a {tenantid} template.
	issuer        string
	endpoint      oauth2.Endpoint
	userinfoURL   string
	offline       bool // offline_access is in scopes_supported
	issParameter  bool // authorization_response_iss_parameter_supported
	signingAlgs   []string
	revocationURL string
	authStyle     oauth2.AuthStyle // from token_endpoint_auth_methods_supported
	keys          *keySet          // the provider's published signing keys
}

// verifier checks ID tokens against the provider's keys (rate-limited
// refetch for unknown key ids) and the rules of cfg.
func (d *discovered) verifier(cfg *oidc.Config) *oidc.IDTokenVerifier {
	cfg.SupportedSigningAlgs = d.signingAlgs
	return oidc.NewVerifier(d.issuer, d.keys, cfg)
}

// endpoints are a provider's URLs once resolved.
type endpoints struct {
	auth, token, userinfo, revoke string
	d                             *discovered // nil for OAuth 2.0 providers
}

// endpoints returns the provider's URLs, discovering OIDC ones on first use.
func (p *Provider) endpoints(ctx context.Context) (*endpoints, error) {
	c := &p.cfg
	if !p.pre.oidc {
		return &endpoints{auth: c.AuthURL, token: c.TokenURL, userinfo: c.UserinfoURL, revoke: c.RevokeURL}, nil
	}
	d, err := p.discover(ctx)
	if err != nil {
		return nil, err
	}
	return &endpoints{
		auth:     or(c.AuthURL, d.endpoint.AuthURL),
		token:    or(c.TokenURL, d.endpoint.TokenURL),
		userinfo: d.userinfoURL,
		revoke:   or(c.RevokeURL, d.revocationURL),
		d:        d,
	}, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// discover returns the cached discovery result, fetching it on first use.
func (p *Provider) discover(ctx context.Context) (*discovered, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.discovery != nil {
		return p.discovery, nil
	}
	if p.lastErr != nil && time.Since(p.lastTry) < rediscoverAfter {
		return nil, p.lastErr
	}
	p.lastTry = time.Now()
	d, err := p.fetchDiscovery(ctx)
	if err != nil {
		// go-oidc quotes the whole answer in its error: keep logs readable.
		msg := err.Error()
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		p.lastErr = fmt.Errorf("%w: discovery at %s: %s", ErrUnavailable, p.cfg.Issuer, msg)
		return nil, p.lastErr
	}
	p.discovery, p.lastErr = d, nil
	return d, nil
}

// cachedDiscovery returns the discovery result if there is one, without
// fetching it.
func (p *Provider) cachedDiscovery() *discovered {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.discovery
}

func (p *Provider) fetchDiscovery(ctx context.Context) (*discovered, error) {
	c := &p.cfg
	// go-oidc keeps the client from this context for later JWKS fetches.
	ctx = oidc.ClientContext(ctx, p.client)
	if c.JWKSURL != "" && c.AuthURL != "" && c.TokenURL != "" {
		// Everything is known: no discovery document to fetch.
		op := (&oidc.ProviderConfig{
			IssuerURL: c.Issuer, AuthURL: c.AuthURL, TokenURL: c.TokenURL,
			UserInfoURL: c.UserinfoURL, JWKSURL: c.JWKSURL, Algorithms: []string{oidc.RS256},
		}).NewProvider(ctx)
		algs := []string{oidc.RS256, oidc.ES256}
		return &discovered{oidc: op, issuer: c.Issuer, endpoint: op.Endpoint(), userinfoURL: c.UserinfoURL,
			signingAlgs: algs, keys: newKeySet(c.JWKSURL, p.client, algs)}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeoutOf(p.client))
	defer cancel()
	if p.pre.tenantIssuer {
		// The document's issuer names a tenant, or is a {tenantid}
		// template: accept it here, check it against each token's tid.
		ctx = oidc.InsecureIssuerURLContext(ctx, c.Issuer)
	}
	op, err := oidc.NewProvider(ctx, c.Issuer)
	if err != nil {
		return nil, err
	}
	var meta struct {
		Issuer          string   `json:"issuer"`
		ScopesSupported []string `json:"scopes_supported"`
		IssParameter    bool     `json:"authorization_response_iss_parameter_supported"`
		Algs            []string `json:"id_token_signing_alg_values_supported"`
		RevocationURL   string   `json:"revocation_endpoint"`
		AuthMethods     []string `json:"token_endpoint_auth_methods_supported"`
		JWKSURI         string   `json:"jwks_uri"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, err
	}
	issuer := c.Issuer
	if p.pre.tenantIssuer {
		if err := checkURL("issuer", strings.ReplaceAll(meta.Issuer, "{tenantid}", "t")); err != nil {
			return nil, fmt.Errorf("discovery document: %w", err)
		}
		issuer = meta.Issuer
	}
	userinfo := op.UserInfoEndpoint()
	if p.pre.skipUserinfo {
		userinfo = ""
	}
	if c.UserinfoURL != "" {
		userinfo = c.UserinfoURL
	}
	// Never accept "none" or symmetric algorithms: the client secret is not a
	// signing key we share with anyone we trust, and HS256 with an RSA public
	// key is the classic confusion attack.
	algs := slices.DeleteFunc(slices.Clone(meta.Algs), func(a string) bool {
		return a == "none" || strings.HasPrefix(a, "HS")
	})
	if len(algs) == 0 {
		algs = []string{oidc.RS256}
	}
	return &discovered{
		oidc:          op,
		issuer:        issuer,
		endpoint:      op.Endpoint(),
		userinfoURL:   userinfo,
		offline:       slices.Contains(meta.ScopesSupported, oidc.ScopeOfflineAccess),
		issParameter:  meta.IssParameter,
		signingAlgs:   algs,
		revocationURL: meta.RevocationURL,
		authStyle:     authStyleFor(meta.AuthMethods),
		keys:          newKeySet(meta.JWKSURI, p.client, algs),
	}, nil
}

// authStyleFor picks the client authentication a server declares; Basic is
// the default of RFC 8414 and what every server must support.
func authStyleFor(methods []string) oauth2.AuthStyle {
	if !slices.Contains(methods, "client_secret_basic") && slices.Contains(methods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

// Reachable checks that the provider answers: discovery for OIDC (cached
// once it succeeded), then a request to its token endpoint, where any HTTP
// answer counts (it will refuse a bare GET). It is for health reports; the
// flows never need it.
func (p *Provider) Reachable(ctx context.Context) error {
	e, err := p.endpoints(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.token, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: token endpoint: %v", ErrUnavailable, err)
	}
	resp.Body.Close()
	return nil
}
