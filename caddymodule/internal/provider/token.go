package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Refresh redeems a refresh token for a new access token, as the client
// the grant was issued to: clientID "" is the provider's client_id, an
// apple bundle id a native app's. The returned token's RefreshToken is the
// rotated refresh token when the provider sent one, else empty: the caller
// keeps the old one. Extra("scope") and Extra("id_token") give those fields
// of the answer (the ID token is not verified). ErrInvalidGrant means the
// refresh token is dead and the user must authorize again; ErrUnavailable
// that the provider could not answer.
func (p *Provider) Refresh(ctx context.Context, clientID, refreshToken string) (*oauth2.Token, error) {
	if refreshToken == "" {
		return nil, fmt.Errorf("%w: %w: no refresh token", ErrInvalidGrant, ErrRejected)
	}
	e, err := p.endpoints(ctx)
	if err != nil {
		return nil, err
	}
	params := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if p.ownClient(clientID) {
		tok, _, err := p.token(ctx, e, params)
		return tok, err
	}
	secret, err := p.nativeSecret(clientID)
	if err != nil {
		return nil, err
	}
	tok, _, err := p.postToken(ctx, e.token, params, oauth2.AuthStyleInParams, clientID, secret)
	if err != nil {
		return nil, p.classifyTokenError(err)
	}
	return tok, nil
}

// invalidGrantCodes are the error codes meaning the grant itself is dead:
// RFC 6749's, GitHub's bad_refresh_token and Slack's invalid_refresh_token.
var invalidGrantCodes = []string{"invalid_grant", "bad_refresh_token", "invalid_refresh_token"}

// tokenError is a token endpoint's refusal.
type tokenError struct {
	status        int
	code, message string
}

func (e *tokenError) Error() string {
	return fmt.Sprintf("token endpoint answered HTTP %d %s", e.status, sanitizeCode(e.code))
}

// token posts a grant to the token endpoint (a code exchange or a refresh)
// and returns the token and the whole answer. It is the one client for
// every token request: x/oauth2 cannot send JSON (Notion), and it refreshes
// only through a ReuseTokenSource. Errors say what the endpoint answered,
// never what was sent.
func (p *Provider) token(ctx context.Context, e *endpoints, params url.Values) (*oauth2.Token, map[string]any, error) {
	style, probing := p.clientAuthStyle(e.d)
	secret, err := p.clientSecret()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: client secret: %v", ErrUnavailable, err)
	}
	tok, raw, err := p.postToken(ctx, e.token, params, style, p.cfg.ClientID, secret)
	var te *tokenError
	if probing && errors.As(err, &te) {
		style = oauth2.AuthStyleInParams
		tok, raw, err = p.postToken(ctx, e.token, params, style, p.cfg.ClientID, secret)
	}
	if probing && err == nil {
		p.probedStyle.Store(int32(style))
	}
	if err != nil {
		return nil, nil, p.classifyTokenError(err)
	}
	return tok, raw, nil
}

// clientAuthStyle is how the client authenticates: the preset's way, else
// what discovery declares, else what a probe found. probing means nothing
// is known yet: try Basic, then the form, as x/oauth2 does.
func (p *Provider) clientAuthStyle(d *discovered) (style oauth2.AuthStyle, probing bool) {
	switch {
	case p.pre.authStyle != oauth2.AuthStyleAutoDetect:
		return p.pre.authStyle, false
	case d != nil:
		return d.authStyle, false
	case p.probedStyle.Load() != 0:
		return oauth2.AuthStyle(p.probedStyle.Load()), false
	}
	return oauth2.AuthStyleInHeader, true
}

func (p *Provider) postToken(ctx context.Context, tokenURL string, params url.Values, style oauth2.AuthStyle, clientID, secret string) (*oauth2.Token, map[string]any, error) {
	v := make(map[string]string, len(params)+2)
	for k := range params {
		v[k] = params.Get(k)
	}
	// A public client (no secret) names itself with client_id (RFC 6749 2.3.1).
	basic := style == oauth2.AuthStyleInHeader && secret != ""
	if !basic {
		v["client_id"] = clientID
		if secret != "" {
			v["client_secret"] = secret
		}
	}
	var body, ctype string
	if p.pre.tokenJSON {
		b, _ := json.Marshal(v)
		body, ctype = string(b), "application/json"
	} else {
		form := url.Values{}
		for k, s := range v {
			form.Set(k, s)
		}
		body, ctype = form.Encode(), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", ctype)
	// GitHub answers with a form unless asked for JSON.
	req.Header.Set("Accept", "application/json")
	if basic {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	status, resp, header, err := p.do(req)
	if err != nil {
		return nil, nil, err
	}
	raw, err := parseTokenResponse(resp, header.Get("Content-Type"))
	failed := status < 200 || status > 299
	if err != nil {
		if failed {
			return nil, nil, &tokenError{status: status}
		}
		return nil, nil, err
	}
	code, _ := raw["error"].(string)
	message, _ := raw["message"].(string)
	// Some servers (GitHub, Slack) refuse with 200 and an error field.
	if failed || code != "" {
		return nil, nil, &tokenError{status: status, code: code, message: message}
	}
	tok := &oauth2.Token{}
	tok.AccessToken, _ = raw["access_token"].(string)
	tok.TokenType, _ = raw["token_type"].(string)
	tok.RefreshToken, _ = raw["refresh_token"].(string)
	if tok.AccessToken == "" {
		return nil, nil, errors.New("the answer has no access_token")
	}
	if err := checkTokenAnswer(raw, or(p.pre.scopeKey, "scope")); err != nil {
		return nil, nil, err
	}
	if tok.ExpiresIn = expiresIn(raw["expires_in"]); tok.ExpiresIn > 0 {
		tok.Expiry = time.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return tok.WithExtra(raw), raw, nil
}

// parseTokenResponse reads a JSON object, or a form for servers that answer
// with one (as x/oauth2 does).
func parseTokenResponse(body []byte, contentType string) (map[string]any, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" || mt == "text/plain" {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errors.New("the answer is neither JSON nor a form")
		}
		raw := make(map[string]any, len(vals))
		for k := range vals {
			raw[k] = vals.Get(k)
		}
		return raw, nil
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, errors.New("the answer is not a JSON object")
	}
	return raw, nil
}

// expiresIn reads expires_in as a number or a numeric string.
func expiresIn(v any) int64 {
	var n float64
	switch v := v.(type) {
	case float64:
		n = v
	case string:
		n, _ = strconv.ParseFloat(v, 64)
	}
	if n <= 0 || n > 1<<31 {
		return 0
	}
	return int64(n)
}

// classifyTokenError tells a dead grant, a refusal (a bad code, a bad client)
// and an unusable provider apart; an answer too large (*TooLargeError) stays
// as it is. No message carries a token or a code.
func (p *Provider) classifyTokenError(err error) error {
	var te *tokenError
	var tl *TooLargeError
	switch {
	case errors.As(err, &tl):
		return err
	case !errors.As(err, &te):
		return fmt.Errorf("%w: token endpoint: %v", ErrUnavailable, err)
	case slices.Contains(invalidGrantCodes, te.code) || (te.message != "" && slices.Contains(p.pre.grantMessages, te.message)):
		return fmt.Errorf("%w: %w: token endpoint answered %s", ErrInvalidGrant, ErrRejected, or(sanitizeCode(te.code), "invalid_grant"))
	case te.code == "server_error" || te.code == "temporarily_unavailable",
		te.status >= 500, te.status == http.StatusRequestTimeout, te.status == http.StatusTooManyRequests:
		// The provider says it cannot answer now: an outage, below.
	case te.code != "" || te.status >= 400:
		// A refusal, with or without an OAuth error body (an HTML 401 from
		// a proxy in front of the provider is one too): not an outage.
		return &RefusedError{Status: te.status, Code: sanitizeCode(te.code)}
	}
	return fmt.Errorf("%w: token endpoint answered HTTP %d", ErrUnavailable, te.status)
}

// RefusedError is the token endpoint's refusal of a request (ErrRefused):
// its HTTP status and OAuth error code, never the rest of its answer,
// which may echo what was sent.
type RefusedError struct {
	Status int
	// Code is the OAuth error code (invalid_client…), printable and at most
	// 64 bytes; "" when the answer carried none.
	Code string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%v: the token endpoint answered %s", ErrRefused, e.Reason())
}

// Reason is the OAuth error code, or the HTTP status when there is none.
func (e *RefusedError) Reason() string {
	return or(e.Code, fmt.Sprintf("HTTP %d", e.Status))
}

func (e *RefusedError) Unwrap() []error { return []error{ErrRefused, ErrRejected} }

// sanitizeCode keeps an error code printable and short: it comes from the
// provider, and goes to logs.
func sanitizeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == '.' || r == ' ' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return -1
	}, s)
}

// clientSecret is the configured secret, or Apple's signed one.
func (p *Provider) clientSecret() (string, error) {
	if p.secret != nil {
		return p.secret.get(time.Now())
	}
	return p.cfg.ClientSecret, nil
}
