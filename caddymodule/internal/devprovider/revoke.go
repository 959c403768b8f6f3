package devprovider

import "net/http"

// handleRevoke revokes an access or refresh token (RFC 7009). Unknown tokens
// are answered 200 too, as the RFC asks.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	if err := s.revoke(r); err != nil {
		writeOAuthError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Server) revoke(r *http.Request) *oauthError {
	form, err := readForm(r)
	if err != nil {
		return err
	}
	client, err := s.authenticateClient(r, form)
	if err != nil {
		return err
	}
	// token_type_hint is not needed: one lookup finds either kind of token.
	token := form.Get("token")
	if token == "" {
		return oauthErr("invalid_request", "token is required")
	}
	return s.state.revoke(token, client.ID)
}
