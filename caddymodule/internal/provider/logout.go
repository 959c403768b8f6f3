package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Logout at and from OpenID providers: RP-Initiated Logout 1.0 sends the
// browser to the provider's end_session_endpoint when a person signs out
// of the gateway; Back-Channel Logout 1.0 has the provider tell the gateway,
// server to server, that a person signed out there.

// backChannelLogoutEvent is the events member that makes a JWT a logout
// token, and nothing else.
const backChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// Bounds of a logout token.
const (
	// LogoutTokenMaxAge is how old (by its iat) a logout token may be: an
	// older one is refused, so its jti need not be remembered longer.
	LogoutTokenMaxAge = 5 * time.Minute
	// logoutClockSkew is how far in the future a logout token's iat may be.
	logoutClockSkew = time.Minute
	// maxJTI bounds the jti the gateway remembers.
	maxJTI = 256
)

// checkSignOut refuses SignOutAtProvider for a provider without discovery:
// only a discovery document names an end_session_endpoint.
func checkSignOut(cfg *Config, pre preset) error {
	if cfg.SignOutAtProvider && (!pre.oidc || (cfg.JWKSURL != "" && cfg.AuthURL != "" && cfg.TokenURL != "")) {
		return errors.New("sign_out_at_provider needs an OpenID provider found by discovery (whose document names its end_session_endpoint); this one has none")
	}
	return nil
}

// SignOutAtProvider reports whether a person who signs out of the gateway,
// after a sign-in with this provider, is sent on to sign out at the
// provider too (RP-Initiated Logout), when its discovery document names an
// end_session_endpoint.
func (p *Provider) SignOutAtProvider() bool { return p.cfg.SignOutAtProvider }

// EndSession is an RP-Initiated Logout request.
type EndSession struct {
	// IDTokenHint is the ID token of the sign-in being ended; "" sends none.
	IDTokenHint string
	// PostLogoutRedirectURL is where the provider sends the browser back;
	// it must be registered at the provider.
	PostLogoutRedirectURL string
	// State comes back with the browser.
	State string
}

// EndSessionURL returns where to send the browser to sign out at the
// provider (OpenID Connect RP-Initiated Logout 1.0): the discovery
// document's end_session_endpoint with id_token_hint, client_id,
// post_logout_redirect_uri and state added to its query. It returns ""
// when SignOutAtProvider is off or the provider advertises no such
// endpoint; it needs discovery, so it can fail with ErrUnavailable.
func (p *Provider) EndSessionURL(ctx context.Context, req EndSession) (string, error) {
	if !p.cfg.SignOutAtProvider {
		return "", nil
	}
	d, err := p.discover(ctx)
	if err != nil || d.endSessionURL == "" {
		return "", err
	}
	u, err := url.Parse(d.endSessionURL)
	if err != nil {
		return "", fmt.Errorf("%w: end_session_endpoint: %v", ErrUnavailable, err)
	}
	q := u.Query()
	if req.IDTokenHint != "" {
		q.Set("id_token_hint", req.IDTokenHint)
	}
	q.Set("client_id", p.cfg.ClientID)
	q.Set("post_logout_redirect_uri", req.PostLogoutRedirectURL)
	q.Set("state", req.State)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// BackChannelLogout reports whether the provider can send logout tokens:
// it speaks OpenID Connect.
func (p *Provider) BackChannelLogout() bool { return p.pre.oidc }

// LogoutToken is a verified back-channel logout token: the person Subject
// at Issuer signed out of the provider session SID (either may be "").
type LogoutToken struct {
	// Issuer is the namespace of Subject, as Result.Issuer.
	Issuer  string
	Subject string
	SID     string
	// JTI is the token's id: it may be used once.
	JTI string
	// IssuedAt is the iat: the token is refused from IssuedAt plus
	// LogoutTokenMaxAge on, so its jti need not be remembered after that.
	IssuedAt time.Time
}

// logoutClaims are the claims of a logout token the gateway reads.
type logoutClaims struct {
	Subject         string                     `json:"sub"`
	SID             string                     `json:"sid"`
	JTI             string                     `json:"jti"`
	IssuedAt        *flexInt64                 `json:"iat"`
	Expiry          *flexInt64                 `json:"exp"`
	Audience        audience                   `json:"aud"`
	AuthorizedParty string                     `json:"azp"`
	Events          map[string]json.RawMessage `json:"events"`
}

// VerifyLogoutToken validates a back-channel logout token as OpenID Connect
// Back-Channel Logout 1.0 (section 2.6) says: signed with the provider's
// keys (those that verify its ID tokens, with their caching and refetch
// rules, except that a logout token fetches them at most once a minute:
// see logoutFetchEvery), issued by the provider for this client (aud, azp),
// iat within the last LogoutTokenMaxAge, exp (when present) not passed, a
// jti, the back-channel logout event, a sub or a sid, and no nonce (so an
// ID token is never taken for one). A typ header, when present, must be
// logout+jwt or JWT. Whether the jti was used before is the caller's to
// check. Every refusal wraps ErrRejected; keys that could not be fetched,
// ErrUnavailable.
func (p *Provider) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	if !p.pre.oidc {
		return nil, fmt.Errorf("%w: %s is not an OpenID provider", ErrRejected, p.cfg.Name)
	}
	if err := checkLogoutType(raw); err != nil {
		return nil, fmt.Errorf("%w: logout token: %v", ErrRejected, err)
	}
	e, err := p.endpoints(ctx)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, logoutKey{}, true)
	tok, err := e.d.verify(ctx, &oidc.Config{ClientID: p.cfg.ClientID, SkipExpiryCheck: true, SkipIssuerCheck: p.pre.tenantIssuer}, raw, "logout token")
	if err != nil {
		return nil, err
	}
	var c logoutClaims
	var all map[string]any
	if err := tok.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: logout token claims: %v", ErrRejected, err)
	}
	_ = tok.Claims(&all) // cannot fail where the struct decoding did not
	if err := checkLogoutClaims(&c, all, p.cfg.ClientID, time.Now()); err != nil {
		return nil, fmt.Errorf("%w: logout token: %v", ErrRejected, err)
	}
	out := &LogoutToken{Issuer: p.cfg.Issuer, Subject: c.Subject, SID: c.SID, JTI: c.JTI,
		IssuedAt: time.Unix(int64(*c.IssuedAt), 0)}
	if p.pre.tenantIssuer {
		if out.Issuer, err = tenantIssuer(e.d.issuer, tok.Issuer, lookupString(all, "tid")); err != nil {
			return nil, fmt.Errorf("%w: logout token: %v", ErrRejected, err)
		}
	}
	if s := lookupString(all, p.pre.subjectClaim); s != "" {
		out.Subject = s
	}
	return out, nil
}

// checkLogoutClaims checks what go-oidc leaves to the caller.
func checkLogoutClaims(c *logoutClaims, all map[string]any, clientID string, now time.Time) error {
	if err := checkAudience(c.Audience, c.AuthorizedParty, clientID); err != nil {
		return err
	}
	var event map[string]any
	switch {
	case c.IssuedAt == nil:
		return errors.New("iat is missing")
	case time.Unix(int64(*c.IssuedAt), 0).After(now.Add(logoutClockSkew)):
		return errors.New("iat is in the future")
	case time.Unix(int64(*c.IssuedAt), 0).Before(now.Add(-LogoutTokenMaxAge)):
		return fmt.Errorf("iat is more than %v ago", LogoutTokenMaxAge)
	case c.Expiry != nil && !now.Before(time.Unix(int64(*c.Expiry), 0)):
		return errors.New("it has expired")
	case c.JTI == "" || len(c.JTI) > maxJTI:
		return errors.New("jti is missing or too long")
	case json.Unmarshal(c.Events[backChannelLogoutEvent], &event) != nil || event == nil:
		return errors.New("events does not hold the back-channel logout event")
	case c.Subject == "" && c.SID == "":
		return errors.New("it names neither a sub nor a sid")
	}
	if _, ok := all["nonce"]; ok {
		return errors.New("it carries a nonce, as only ID tokens do")
	}
	return nil
}

// checkLogoutType refuses a JWT whose typ header says it is another kind of
// token (an access token, a security event of another profile).
func checkLogoutType(raw string) error {
	head, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return errors.New("malformed header")
	}
	var h struct {
		Type *string `json:"typ"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return errors.New("malformed header")
	}
	if h.Type == nil {
		return nil
	}
	switch strings.TrimPrefix(strings.ToLower(*h.Type), "application/") {
	case "logout+jwt", "jwt":
		return nil
	}
	return fmt.Errorf("typ %q is not logout+jwt", *h.Type)
}
