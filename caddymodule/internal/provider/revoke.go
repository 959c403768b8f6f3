package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// CanRevoke reports whether Revoke reaches the provider. A generic OIDC
// provider's revocation endpoint comes from discovery: until the first
// discovery, CanRevoke reports false unless RevokeURL is configured.
func (p *Provider) CanRevoke() bool {
	switch {
	case p.pre.revoke.style == revokeNone:
		return false
	case p.cfg.RevokeURL != "":
		return true
	case p.pre.oidc:
		d := p.cachedDiscovery()
		return d != nil && d.revocationURL != ""
	}
	return false
}

// Revoke asks the provider to revoke the grant, best effort, the way the
// provider documents it. It revokes the refresh token when there is one and
// the endpoint takes it (that usually ends the access token too), else the
// access token, as the client the grant was issued to (clientID as in
// Refresh). It returns nil for providers without revocation. Errors wrap
// ErrUnavailable and never contain a token.
func (p *Provider) Revoke(ctx context.Context, clientID, accessToken, refreshToken string) error {
	rv := p.pre.revoke
	if rv.style == revokeNone {
		return nil
	}
	revokeURL := p.cfg.RevokeURL
	var d *discovered
	if p.pre.oidc {
		e, err := p.endpoints(ctx)
		if err != nil {
			return err
		}
		revokeURL, d = e.revoke, e.d
	}
	if revokeURL == "" {
		return nil
	}
	token, hint := refreshToken, "refresh_token"
	if token == "" || rv.accessOnly || rv.style != revokeForm {
		token, hint = accessToken, "access_token"
	}
	if token == "" {
		return nil
	}
	req, err := p.revokeRequest(ctx, d, revokeURL, clientID, token, hint)
	if err != nil {
		return fmt.Errorf("%w: revocation: %v", ErrUnavailable, err)
	}
	status, body, _, err := p.do(req)
	if err != nil {
		return fmt.Errorf("%w: revocation endpoint: %v", ErrUnavailable, err)
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("%w: revocation endpoint answered HTTP %d", ErrUnavailable, status)
	}
	// Slack and Facebook refuse with 200 and {"ok": false} or {"success": false}.
	var r struct {
		OK      *bool  `json:"ok"`
		Success *bool  `json:"success"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &r) == nil && ((r.OK != nil && !*r.OK) || (r.Success != nil && !*r.Success)) {
		return fmt.Errorf("%w: revocation refused: %s", ErrUnavailable, sanitizeCode(r.Error))
	}
	return nil
}

// revokeRequest builds the request in the provider's style, as clientID.
func (p *Provider) revokeRequest(ctx context.Context, d *discovered, revokeURL, clientID, token, hint string) (*http.Request, error) {
	rv := p.pre.revoke
	var secret string
	var err error
	if p.ownClient(clientID) {
		clientID = p.cfg.ClientID
		secret, err = p.clientSecret()
	} else {
		secret, err = p.nativeSecret(clientID)
	}
	if err != nil {
		return nil, err
	}
	var req *http.Request
	switch rv.style {
	case revokeBearer:
		if req, err = http.NewRequestWithContext(ctx, rv.method, revokeURL, nil); err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	case revokeJSON:
		body, _ := json.Marshal(map[string]string{rv.key: token})
		if req, err = http.NewRequestWithContext(ctx, rv.method, revokeURL, strings.NewReader(string(body))); err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	default: // RFC 7009
		form := url.Values{"token": {token}, "token_type_hint": {hint}}
		style, _ := p.clientAuthStyle(d)
		basic := rv.auth == revokeAuthClient && style == oauth2.AuthStyleInHeader && secret != ""
		if rv.auth != revokeAuthNone && !basic {
			form.Set("client_id", clientID)
		}
		if rv.auth == revokeAuthClient && !basic && secret != "" {
			form.Set("client_secret", secret)
		}
		if req, err = http.NewRequestWithContext(ctx, http.MethodPost, revokeURL, strings.NewReader(form.Encode())); err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
		}
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}
