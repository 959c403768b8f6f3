package testop

import (
	"crypto/rand"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// BackChannelLogoutEvent is the events member that makes a JWT a logout
// token (OpenID Connect Back-Channel Logout 1.0, section 2.4).
const BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// EndSessionURL is the RP-Initiated Logout endpoint, which discovery
// advertises as end_session_endpoint.
func (s *Server) EndSessionURL() string { return s.srv.URL + pathEndSess }

// LastSID returns the sid claim of the last id_token issued: each
// authorization is a session of its own at the provider, and refreshed
// id_tokens keep their grant's.
func (s *Server) LastSID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSID
}

// LastEndSessionQuery returns a copy of the parameters of the last request
// to the end_session endpoint (query or form), or nil if none came.
func (s *Server) LastEndSessionQuery() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastEndQuery == nil {
		return nil
	}
	q := make(url.Values, len(s.lastEndQuery))
	for k, v := range s.lastEndQuery {
		q[k] = slices.Clone(v)
	}
	return q
}

// endSession serves RP-Initiated Logout 1.0 by GET or POST: an
// id_token_hint must be one this provider issued and client_id, when
// given, its client; then it sends the browser to post_logout_redirect_uri
// with state, or shows a page saying the person is signed out.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "unreadable request", http.StatusBadRequest)
		return
	}
	q := r.Form
	s.mu.Lock()
	s.lastEndQuery = q
	issued := slices.Contains(s.secrets, q.Get("id_token_hint"))
	s.mu.Unlock()
	switch {
	case q.Has("id_token_hint") && !issued:
		http.Error(w, "id_token_hint is not an id_token of this provider", http.StatusBadRequest)
		return
	case q.Has("client_id") && q.Get("client_id") != s.clientID:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	back, err := url.Parse(q.Get("post_logout_redirect_uri"))
	if q.Get("post_logout_redirect_uri") == "" || err != nil || !back.IsAbs() {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("You are signed out.\n"))
		return
	}
	reply := back.Query()
	if state := q.Get("state"); state != "" {
		reply.Set("state", state)
	}
	back.RawQuery = reply.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// LogoutToken returns a back-channel logout token for the client, signed
// with the provider's key: iss, aud, iat, exp (two minutes on), a fresh jti,
// the back-channel logout event, and sub and sid unless empty. edit, when
// not nil, changes the header and the claims before signing, to forge
// hostile tokens: a header kid other than the signing key's is signed with
// a key the JWKS does not have, and alg "none" leaves the token unsigned.
func (s *Server) LogoutToken(sub, sid string, edit func(header map[string]string, claims map[string]any)) string {
	now := time.Now()
	claims := map[string]any{
		"iss":    s.URL(),
		"aud":    s.clientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    rand.Text(),
		"events": map[string]any{BackChannelLogoutEvent: map[string]any{}},
	}
	if sub != "" {
		claims["sub"] = sub
	}
	if sid != "" {
		claims["sid"] = sid
	}
	kid, key := s.signingKey()
	header := map[string]string{"alg": "RS256", "kid": kid, "typ": "logout+jwt"}
	if edit != nil {
		edit(header, claims)
	}
	if header["kid"] != kid {
		key = s.strayKey()
	}
	signingInput := b64(mustJSON(header)) + "." + b64(mustJSON(claims))
	return signingInput + "." + b64(sign(header["alg"], signingInput, key))
}
