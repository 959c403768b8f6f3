package provider

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// rediscoverAfter bounds how often a failing discovery is retried, so a down
// provider costs one outbound call per interval, not one per request.
const rediscoverAfter = 5 * time.Second

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
		p.lastErr = fmt.Errorf("%w: discovery at %s: %v", ErrUnavailable, p.cfg.Issuer, err)
		return nil, p.lastErr
	}
	p.discovery, p.lastErr = d, nil
	return d, nil
}

func (p *Provider) fetchDiscovery(ctx context.Context) (*discovered, error) {
	ctx, cancel := context.WithTimeout(ctx, p.client.Timeout)
	defer cancel()
	// go-oidc keeps this context (minus cancellation) for later JWKS fetches,
	// so it carries our bounded client.
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client), p.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	var meta struct {
		ScopesSupported []string `json:"scopes_supported"`
		IssParameter    bool     `json:"authorization_response_iss_parameter_supported"`
		Algs            []string `json:"id_token_signing_alg_values_supported"`
		RevocationURL   string   `json:"revocation_endpoint"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, err
	}
	scopes := []string{oidc.ScopeOpenID, "email", "profile"}
	if slices.Contains(meta.ScopesSupported, oidc.ScopeOfflineAccess) {
		scopes = append(scopes, oidc.ScopeOfflineAccess)
	}
	userinfo := op.UserInfoEndpoint()
	if p.cfg.UserinfoURL != "" {
		userinfo = p.cfg.UserinfoURL
	}
	// Never accept "none" or symmetric algorithms: the client secret is not a
	// signing key we share with anyone we trust, and HS256 with an RSA public
	// key is the classic confusion attack.
	algs := slices.DeleteFunc(slices.Clone(meta.Algs), func(a string) bool {
		return a == "none" || a == "HS256" || a == "HS384" || a == "HS512"
	})
	if len(algs) == 0 {
		algs = []string{oidc.RS256}
	}
	return &discovered{
		oidc:          op,
		endpoint:      op.Endpoint(),
		userinfoURL:   userinfo,
		scopes:        scopes,
		issParameter:  meta.IssParameter,
		signingAlgs:   algs,
		revocationURL: meta.RevocationURL,
	}, nil
}
