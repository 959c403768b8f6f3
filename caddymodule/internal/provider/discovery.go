package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// discoveryCache is how a discovery document is cached: for the lifetime
// its Cache-Control max-age or Expires gives, but at least a minute and at
// most 24 hours (an hour without either), so that new endpoints or a new
// jwks_uri are followed without a reload. A failed fetch keeps the last good
// document, for up to 24 hours past its lifetime, and is retried after 1 s,
// 2 s, 4 s… up to a minute.
var discoveryCache = cachePolicy{
	fallback: time.Hour,
	min:      time.Minute,
	max:      24 * time.Hour,
	maxStale: 24 * time.Hour,
}

// discovered is what OIDC discovery returned (or, for a static provider,
// what the configuration says).
type discovered struct {
	// issuer is the discovery document's issuer: the configured one, or for
	// a tenantIssuer preset possibly another, or a {tenantid} template.
	issuer        string
	endpoint      oauth2.Endpoint
	userinfoURL   string
	offline       bool // offline_access is in scopes_supported
	issParameter  bool // authorization_response_iss_parameter_supported
	signingAlgs   []string
	revocationURL string
	endSessionURL string           // end_session_endpoint: RP-Initiated Logout
	authStyle     oauth2.AuthStyle // from token_endpoint_auth_methods_supported
	keys          *keySet          // the provider's published signing keys
}

// outageKey carries, in the context of a verification, where the key set
// reports that the provider's keys could not be fetched: go-oidc keeps only
// the text of a key set's error.
type outageKey struct{}

func reportOutage(ctx context.Context, err error) {
	if slot, ok := ctx.Value(outageKey{}).(*error); ok {
		*slot = err
	}
}

// verify checks an ID token against the provider's keys (see jwksCache) and
// the rules of cfg. Its errors wrap ErrRejected, or ErrUnavailable when the
// provider's keys could not be fetched, so that an outage is reported as
// one; what names the token in them.
func (d *discovered) verify(ctx context.Context, cfg *oidc.Config, raw, what string) (*oidc.IDToken, error) {
	cfg.SupportedSigningAlgs = d.signingAlgs
	var outage error
	idt, err := oidc.NewVerifier(d.issuer, d.keys, cfg).Verify(context.WithValue(ctx, outageKey{}, &outage), raw)
	switch {
	case outage != nil:
		return nil, fmt.Errorf("%s: %w", what, outage)
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %v", ErrRejected, what, err)
	}
	return idt, nil
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

// initDiscovery prepares an OIDC provider's discovery: none when the
// configuration names every endpoint, else a cached document.
func (p *Provider) initDiscovery() {
	c := &p.cfg
	if c.JWKSURL != "" && c.AuthURL != "" && c.TokenURL != "" {
		algs := []string{oidc.RS256, oidc.ES256}
		p.static = &discovered{issuer: c.Issuer, endpoint: oauth2.Endpoint{AuthURL: c.AuthURL, TokenURL: c.TokenURL},
			userinfoURL: c.UserinfoURL, signingAlgs: algs, keys: newKeySet(c.JWKSURL, p.do, algs)}
		return
	}
	p.discovery = newCached(discoveryCache, p.fetchDiscovery)
}

// discover returns the discovery result, fetched on first use and again when
// discoveryCache says.
func (p *Provider) discover(ctx context.Context) (*discovered, error) {
	if p.static != nil {
		return p.static, nil
	}
	d, _, err := p.discovery.get(ctx, 0, false)
	if d == nil {
		return nil, err
	}
	return d, nil
}

// cachedDiscovery returns the discovery result if there is one, without
// fetching it.
func (p *Provider) cachedDiscovery() *discovered {
	if p.static != nil {
		return p.static
	}
	return p.discovery.peek()
}

// fetchDiscovery fetches and reads the discovery document. A document with
// the same jwks_uri and algorithms as the one in use keeps its key set, and
// with it the cached keys.
func (p *Provider) fetchDiscovery(ctx context.Context) (*discovered, http.Header, error) {
	c := &p.cfg
	fail := func(format string, args ...any) (*discovered, http.Header, error) {
		return nil, nil, fmt.Errorf("%w: discovery at %s: %s", ErrUnavailable, c.Issuer, fmt.Sprintf(format, args...))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.Issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return fail("%v", err)
	}
	status, body, header, err := p.do(req)
	switch {
	case err != nil:
		return fail("%v", err)
	case status != http.StatusOK:
		return fail("answered HTTP %d", status)
	}
	var meta struct {
		Issuer          string   `json:"issuer"`
		AuthURL         string   `json:"authorization_endpoint"`
		TokenURL        string   `json:"token_endpoint"`
		UserinfoURL     string   `json:"userinfo_endpoint"`
		JWKSURI         string   `json:"jwks_uri"`
		ScopesSupported []string `json:"scopes_supported"`
		IssParameter    bool     `json:"authorization_response_iss_parameter_supported"`
		Algs            []string `json:"id_token_signing_alg_values_supported"`
		RevocationURL   string   `json:"revocation_endpoint"`
		EndSessionURL   string   `json:"end_session_endpoint"`
		AuthMethods     []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := json.Unmarshal(body, &meta); err != nil {
		return fail("the document is not a JSON object")
	}
	issuer := c.Issuer
	if p.pre.tenantIssuer {
		// The document's issuer names a tenant, or is a {tenantid}
		// template: accept it here, check it against each token's tid.
		if err := checkURL("issuer", strings.ReplaceAll(meta.Issuer, "{tenantid}", "t")); err != nil {
			return fail("%v", err)
		}
		issuer = meta.Issuer
	} else if meta.Issuer != c.Issuer {
		// OIDC Discovery 4.3: the issuer must be exactly the configured one.
		return fail("the document's issuer %q is not %q", meta.Issuer, c.Issuer)
	}
	userinfo := meta.UserinfoURL
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
	jwksURL := or(c.JWKSURL, meta.JWKSURI)
	keys := newKeySet(jwksURL, p.do, algs)
	if prev := p.discovery.peek(); prev != nil && prev.keys.url == jwksURL && slices.Equal(prev.signingAlgs, algs) {
		keys = prev.keys
	}
	if err := checkDiscovered(c, p.pre, meta.AuthURL, meta.TokenURL, userinfo, jwksURL, meta.RevocationURL, meta.EndSessionURL); err != nil {
		return fail("%v", err)
	}
	return &discovered{
		issuer:        issuer,
		endpoint:      oauth2.Endpoint{AuthURL: meta.AuthURL, TokenURL: meta.TokenURL},
		userinfoURL:   userinfo,
		offline:       slices.Contains(meta.ScopesSupported, oidc.ScopeOfflineAccess),
		issParameter:  meta.IssParameter,
		signingAlgs:   algs,
		revocationURL: meta.RevocationURL,
		endSessionURL: meta.EndSessionURL,
		authStyle:     authStyleFor(meta.AuthMethods),
		keys:          keys,
	}, header, nil
}

// checkDiscovered holds the endpoints of a discovery document that the
// gateway will use (those the configuration does not replace) to the rule
// of configured ones (checkURL): https, or plain http only for a host that
// cannot be on the internet. A document naming an http token endpoint would
// otherwise get the client secret and codes in clear text, and an http
// jwks_uri would let anyone on the network path sign ID tokens. A refusal
// makes the provider unavailable, with the endpoint named in the error.
func checkDiscovered(c *Config, pre preset, auth, token, userinfo, jwks, revocation, endSession string) error {
	for _, u := range []struct {
		field, value   string
		used, required bool
	}{
		{"authorization_endpoint", auth, c.AuthURL == "", true},
		{"token_endpoint", token, c.TokenURL == "", true},
		{"jwks_uri", jwks, c.JWKSURL == "", true},
		{"userinfo_endpoint", userinfo, c.UserinfoURL == "", false},
		{"revocation_endpoint", revocation, c.RevokeURL == "" && pre.revoke.style != revokeNone, false},
		{"end_session_endpoint", endSession, c.SignOutAtProvider, false},
	} {
		if u.used && (u.required || u.value != "") {
			if err := checkURL(u.field, u.value); err != nil {
				return err
			}
		}
	}
	return nil
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
