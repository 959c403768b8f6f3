package devprovider

import (
	"net/http"
	"slices"
	"strings"
)

// handleUserinfo returns the claims of the access token's user (OIDC Core
// section 5.3). The token is read from the Authorization header only.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		// No credentials: a challenge without an error code (RFC 6750 section 3.1).
		w.Header().Set("WWW-Authenticate", `Bearer realm="devprovider"`)
		writeJSON(w, http.StatusUnauthorized, oauthErr("invalid_request", "a Bearer access token is required"))
		return
	}
	at, ok := s.state.lookupAccess(token)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="devprovider", error="invalid_token", error_description="the access token is invalid, expired or revoked"`)
		writeJSON(w, http.StatusUnauthorized, oauthErr("invalid_token", "the access token is invalid, expired or revoked"))
		return
	}
	if !slices.Contains(at.scope, "openid") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="devprovider", error="insufficient_scope", scope="openid"`)
		writeJSON(w, http.StatusForbidden, oauthErr("insufficient_scope", "the access token lacks the openid scope"))
		return
	}
	writeJSON(w, http.StatusOK, s.userClaims(at.grant.user, at.scope))
}

// userClaims are the user's claims that scope allows: sub always, email and
// email_verified with email, name with profile (OIDC Core section 5.4).
func (s *Server) userClaims(u user, scope []string) map[string]any {
	claims := map[string]any{"sub": s.subject(u)}
	if slices.Contains(scope, "email") {
		claims["email"] = u.Email
		claims["email_verified"] = u.EmailVerified
	}
	if slices.Contains(scope, "profile") {
		claims["name"] = u.Name
	}
	return claims
}
