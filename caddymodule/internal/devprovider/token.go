package devprovider

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

var errInvalidClient = &oauthError{
	Code:        "invalid_client",
	Description: "client authentication failed",
	status:      http.StatusUnauthorized,
}

// tokenResponse is the successful token response (RFC 6749 section 5.1,
// OIDC Core 3.1.3.3).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	IDToken      string `json:"id_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// handleToken serves the authorization_code and refresh_token grants.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	set, err := s.tokenRequest(r)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	s.writeTokens(w, set)
}

func (s *Server) tokenRequest(r *http.Request) (*tokenSet, *oauthError) {
	form, err := readForm(r)
	if err != nil {
		return nil, err
	}
	client, err := s.authenticateClient(r, form)
	if err != nil {
		return nil, err
	}
	switch form.Get("grant_type") {
	case "authorization_code":
		return s.exchangeCode(client, form)
	case "refresh_token":
		return s.exchangeRefresh(client, form)
	case "":
		return nil, oauthErr("invalid_request", "grant_type is required")
	default:
		return nil, oauthErr("unsupported_grant_type", "only authorization_code and refresh_token are supported")
	}
}

func (s *Server) exchangeCode(client *registeredClient, form url.Values) (*tokenSet, *oauthError) {
	code := form.Get("code")
	if code == "" {
		return nil, oauthErr("invalid_request", "code is required")
	}
	redirectURI, verifier := form.Get("redirect_uri"), form.Get("code_verifier")
	return s.state.redeemCode(code, func(c *authCode) *oauthError {
		switch {
		case c.clientID != client.ID:
			return oauthErr("invalid_grant", "the code was issued to another client")
		case c.redirectURI != redirectURI:
			return oauthErr("invalid_grant", "redirect_uri differs from the authorization request's")
		case c.codeChallenge == "" && verifier != "":
			// Refused so that PKCE cannot be downgraded (RFC 9700 section 2.1.1).
			return oauthErr("invalid_grant", "code_verifier sent, but the authorization request had no code_challenge")
		case c.codeChallenge != "" && !verifierMatches(verifier, c.codeChallenge):
			return oauthErr("invalid_grant", "code_verifier is missing or does not match the code_challenge")
		}
		return nil
	}, s.accessTTL)
}

// verifierMatches checks a code_verifier against an S256 code_challenge
// (RFC 7636 section 4.6).
func verifierMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 || strings.IndexFunc(verifier, notUnreserved) >= 0 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	computed := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) == 1
}

// notUnreserved reports a character outside RFC 3986's unreserved set.
func notUnreserved(c rune) bool {
	return !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.ContainsRune("-._~", c))
}

func (s *Server) exchangeRefresh(client *registeredClient, form url.Values) (*tokenSet, *oauthError) {
	token := form.Get("refresh_token")
	if token == "" {
		return nil, oauthErr("invalid_request", "refresh_token is required")
	}
	return s.state.rotateRefresh(token, client.ID, strings.Fields(form.Get("scope")), s.accessTTL)
}

// writeTokens answers a successful token request. An ID token comes with
// every access token whose scope includes openid.
func (s *Server) writeTokens(w http.ResponseWriter, set *tokenSet) {
	resp := tokenResponse{
		AccessToken:  set.accessToken,
		TokenType:    "Bearer",
		ExpiresIn:    int64(s.accessTTL / time.Second),
		Scope:        strings.Join(set.scope, " "),
		RefreshToken: set.refreshToken,
	}
	if slices.Contains(set.scope, "openid") {
		idToken, err := s.idToken(set)
		if err != nil {
			writeOAuthError(w, &oauthError{Code: "server_error", Description: "signing the ID token failed", status: http.StatusInternalServerError})
			return
		}
		resp.IDToken = idToken
	}
	writeJSON(w, http.StatusOK, resp)
}

// idToken signs the ID token of a token set (OIDC Core section 2). The
// profile claims follow the scope, as at the userinfo endpoint.
func (s *Server) idToken(set *tokenSet) (string, error) {
	now := s.now()
	g := set.grant
	claims := s.userClaims(g.user, set.scope)
	claims["iss"] = s.issuer
	claims["aud"] = g.clientID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(idTokenLifetime).Unix()
	claims["auth_time"] = g.authTime.Unix()
	// at_hash lets a client check that the access token belongs to this ID token.
	sum := sha256.Sum256([]byte(set.accessToken))
	claims["at_hash"] = base64.RawURLEncoding.EncodeToString(sum[:sha256.Size/2])
	if set.nonce != "" {
		claims["nonce"] = set.nonce
	}
	return jwt.Signed(s.signer).Claims(claims).Serialize()
}

// authenticateClient checks client_secret_basic or client_secret_post; a
// request must use exactly one of them (RFC 6749 section 2.3).
func (s *Server) authenticateClient(r *http.Request, form url.Values) (*registeredClient, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		if form.Has("client_secret") {
			return nil, oauthErr("invalid_request", "use only one client authentication method")
		}
		// Basic credentials are form-encoded first (RFC 6749 section 2.3.1).
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || (form.Has("client_id") && form.Get("client_id") != id) {
			return nil, errInvalidClient
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	client := s.clients[id]
	if client == nil || secret == "" {
		return nil, errInvalidClient
	}
	// Comparing digests keeps the comparison constant-time whatever the lengths.
	got := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(got[:], client.secretHash[:]) != 1 {
		return nil, errInvalidClient
	}
	return client, nil
}

// readForm parses a form-encoded body. Parameters in the URL query are
// ignored, and a repeated parameter is an error (RFC 6749 section 3.2).
func readForm(r *http.Request) (url.Values, *oauthError) {
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &oauthError{Code: "invalid_request", Description: "the request body is too large", status: http.StatusRequestEntityTooLarge}
		}
		return nil, oauthErr("invalid_request", "the request body is not a valid form")
	}
	for name, values := range r.PostForm {
		if len(values) > 1 {
			return nil, oauthErr("invalid_request", "parameter "+name+" is repeated")
		}
	}
	return r.PostForm, nil
}

// writeOAuthError writes an RFC 6749 section 5.2 error response.
func writeOAuthError(w http.ResponseWriter, err *oauthError) {
	status := err.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="devprovider"`)
	}
	writeJSON(w, status, err)
}
