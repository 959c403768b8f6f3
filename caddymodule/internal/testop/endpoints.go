package testop

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	codeLifetime = time.Minute
	maxFormBytes = 64 << 10
)

// oauthError is an RFC 6749 section 5.2 error response.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e oauthError) Error() string { return e.Code + ": " + e.Description }

func invalidGrant(description string) error {
	return oauthError{Code: "invalid_grant", Description: description}
}

// authorize approves every valid request at once: it records the query and
// redirects to redirect_uri with code, state and (OIDC) iss, with no page in
// between, so that a client following redirects completes the flow.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.lastQuery = q
	fault := s.fault
	s.mu.Unlock()

	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// Like a real provider, never redirect for an unknown client or a bad
	// redirect_uri: show an error instead.
	if q.Get("client_id") != s.clientID {
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	}
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || !redirect.IsAbs() || redirect.Host == "" || redirect.Fragment != "" {
		http.Error(w, "invalid redirect_uri", http.StatusBadRequest)
		return
	}

	reply := redirect.Query()
	if state := q.Get("state"); state != "" {
		reply.Set("state", state)
	}
	if s.mode == OIDC {
		reply.Set("iss", s.URL())
	}
	if fault == FaultWrongIssParam {
		reply.Set("iss", otherIssuer)
	}
	pkce := q.Get("code_challenge") != "" || q.Has("code_challenge_method")
	switch {
	case q.Get("response_type") != "code":
		reply.Set("error", "unsupported_response_type")
	case pkce && (q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == ""):
		reply.Set("error", "invalid_request")
		reply.Set("error_description", "only S256 PKCE is supported")
	default:
		code := rand.Text()
		authTime := s.signIn(q, fault)
		var claims []byte
		if hint := q.Get("login_hint"); s.usersByHint && hint != "" {
			claims = mustJSON(HintClaims(hint))
		}
		s.mu.Lock()
		s.secrets = append(s.secrets, code)
		s.codes[code] = grant{
			redirectURI: q.Get("redirect_uri"),
			challenge:   q.Get("code_challenge"),
			nonce:       q.Get("nonce"),
			scope:       q.Get("scope"),
			authTime:    authTime,
			sid:         "sid-" + rand.Text(),
			expires:     time.Now().Add(codeLifetime),
			claims:      claims,
		}
		s.mu.Unlock()
		reply.Set("code", code)
	}
	redirect.RawQuery = reply.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// signIn is the person's authentication for an authorization request: a
// prompt=login, or a max_age their last sign-in exceeds, makes them sign in
// again now (unless FaultStaleAuthTime). It returns the auth_time to put in
// the id_token, zero for none.
func (s *Server) signIn(q url.Values, fault Fault) time.Time {
	now := time.Now()
	maxAge, err := strconv.ParseInt(q.Get("max_age"), 10, 64)
	hasMaxAge := err == nil && maxAge >= 0
	s.mu.Lock()
	defer s.mu.Unlock()
	again := slices.Contains(strings.Fields(q.Get("prompt")), "login") ||
		(hasMaxAge && (s.loginAt.IsZero() || now.Sub(s.loginAt) > time.Duration(maxAge)*time.Second))
	if fault == FaultStaleAuthTime {
		again = false
		if s.loginAt.IsZero() {
			s.loginAt = now.Add(-time.Hour)
		}
	}
	if again {
		s.loginAt = now
	}
	if s.loginAt.IsZero() && !hasMaxAge {
		return time.Time{}
	}
	return cmp.Or(s.loginAt, now)
}

// token serves the authorization_code and refresh_token grants.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	fault, changed := s.faultAndChange()
	drawn := s.drawTokenFault()
	if drawn != FaultNone {
		fault = drawn
	}
	if !s.pause(r, fault) {
		return
	}
	if !s.clientForm(w, r) {
		return
	}
	if drawn != FaultNone {
		s.recordInjection(arrived, drawn, r.PostForm)
	}

	switch fault {
	case FaultTokenError:
		writeJSON(w, http.StatusBadRequest, oauthError{Code: "invalid_grant"})
		return
	case FaultTokenServerError:
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	case FaultTokenInvalidClient:
		w.Header().Set("WWW-Authenticate", `Basic realm="testop"`)
		writeJSON(w, http.StatusUnauthorized, oauthError{Code: "invalid_client",
			Description: "no client may redeem " + r.PostForm.Get("code") + r.PostForm.Get("refresh_token")})
		return
	case FaultTokenHang:
		s.hang(r, changed)
		return
	case FaultTokenHTML:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><h1>Something went wrong</h1></body></html>\n")
		return
	case FaultTokenHuge:
		writeHugeToken(w)
		return
	}

	var g grant
	var err error
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		g, err = s.redeemCode(r.PostForm)
	case "refresh_token":
		g, err = s.redeemRefreshToken(r.PostForm.Get("refresh_token"))
	default:
		err = oauthError{Code: "unsupported_grant_type"}
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, err)
		return
	}
	if fault == FaultTokenLostAnswer {
		s.issue(httptest.NewRecorder(), g, fault) // granted, and the answer lost
		s.hang(r, changed)
		return
	}
	s.issue(w, g, fault)
}

// clientForm parses the form of a POST from the authenticated client. When
// it reports false, it has answered the request.
func (s *Server) clientForm(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{Code: "invalid_request", Description: err.Error()})
		return false
	}
	if !s.clientAuthenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="testop"`)
		writeJSON(w, http.StatusUnauthorized, oauthError{Code: "invalid_client"})
		return false
	}
	return true
}

// clientAuthenticated checks client_secret_basic or client_secret_post, not
// both at once (RFC 6749 section 2.3).
func (s *Server) clientAuthenticated(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	if basic {
		if r.PostForm.Has("client_secret") {
			return false
		}
		// RFC 6749 section 2.3.1 form-encodes both before Basic encoding.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return false
		}
		if formID := r.PostForm.Get("client_id"); formID != "" && formID != id {
			return false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return subtle.ConstantTimeCompare([]byte(id), []byte(s.clientID)) == 1 &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.clientSecret)) == 1
}

// redeemCode consumes the code whatever the outcome, so a failed attempt
// cannot be retried with other parameters.
func (s *Server) redeemCode(form url.Values) (grant, error) {
	s.mu.Lock()
	g, ok := s.codes[form.Get("code")]
	delete(s.codes, form.Get("code"))
	s.mu.Unlock()

	verifier := form.Get("code_verifier")
	switch {
	case !ok || time.Now().After(g.expires):
		return grant{}, invalidGrant("unknown, used or expired code")
	case form.Get("redirect_uri") != g.redirectURI:
		return grant{}, invalidGrant("redirect_uri differs from the authorization request")
	case g.challenge == "" && verifier != "":
		// RFC 9700 section 2.1.1: stops a PKCE downgrade.
		return grant{}, invalidGrant("code_verifier sent but no code_challenge was")
	case g.challenge != "" && !pkceMatches(verifier, g.challenge):
		return grant{}, invalidGrant("code_verifier does not match code_challenge")
	}
	return g, nil
}

func pkceMatches(verifier, challenge string) bool {
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(b64(sum[:])), []byte(challenge)) == 1
}

// redeemRefreshToken consumes the refresh token: issue rotates it. A token
// rotated less than RefreshReuseGrace ago is accepted again.
func (s *Server) redeemRefreshToken(token string) (grant, error) {
	now := time.Now()
	s.mu.Lock()
	g, ok := s.refreshTokens[token]
	delete(s.refreshTokens, token)
	if ok && s.reuseGrace > 0 {
		in := g
		in.expires = now.Add(s.reuseGrace)
		s.rotated[token] = in
	}
	if !ok {
		g, ok = s.rotated[token]
		ok = ok && now.Before(g.expires)
	}
	s.mu.Unlock()
	if !ok {
		return grant{}, invalidGrant("unknown or rotated refresh token")
	}
	g.nonce = "" // OIDC Core 12.2: a refreshed id_token carries no nonce.
	return g, nil
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    *int64 `json:"expires_in,omitempty"`
	Scope        string `json:"scope,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

func (s *Server) issue(w http.ResponseWriter, g grant, fault Fault) {
	now := time.Now()
	resp := tokenResponse{AccessToken: rand.Text(), TokenType: "Bearer", Scope: g.scope}
	var expiry time.Time
	if s.lifetime >= 0 {
		seconds := int64(s.lifetime / time.Second)
		resp.ExpiresIn = &seconds
		expiry = now.Add(s.lifetime)
	}

	s.mu.Lock()
	s.accessTokens[resp.AccessToken] = accessToken{expiry: expiry, claims: g.claims}
	s.secrets = append(s.secrets, resp.AccessToken)
	if s.refresh {
		resp.RefreshToken = rand.Text()
		s.refreshTokens[resp.RefreshToken] = g
		s.secrets = append(s.secrets, resp.RefreshToken)
	}
	claims := s.claims
	if g.claims != nil {
		claims = g.claims
	}
	s.mu.Unlock()

	if s.mode == OIDC && slices.Contains(strings.Fields(g.scope), "openid") {
		resp.IDToken = s.idToken(claims, s.clientID, g.nonce, g.authTime, g.sid, fault, now)
		s.mu.Lock()
		s.secrets = append(s.secrets, resp.IDToken)
		s.lastSID = g.sid
		s.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeHugeToken(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"token_type":"Bearer","access_token":"`)
	chunk := strings.Repeat("a", 64<<10)
	for n := 0; n < hugeBodySize; n += len(chunk) {
		if _, err := io.WriteString(w, chunk); err != nil {
			return // the client gave up, as it should
		}
	}
	io.WriteString(w, `"}`)
}

// userinfo answers a valid, unexpired Bearer token with the claims (OIDC) or
// the UserinfoBody (OAuth2).
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	fault := s.currentFault()
	if !s.pause(r, fault) {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	s.mu.Lock()
	issued, ok := s.accessTokens[token]
	body := s.claims
	switch {
	case s.userinfoBody != nil:
		body = s.userinfoBody
	case issued.claims != nil:
		body = issued.claims
	}
	s.mu.Unlock()
	if !strings.EqualFold(scheme, "Bearer") || !ok || (!issued.expiry.IsZero() && time.Now().After(issued.expiry)) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, oauthError{Code: "invalid_token"})
		return
	}

	if s.mode == OIDC && fault == FaultUserinfoSubMismatch {
		claims := decodeObject(body)
		claims["sub"] = "other-" + fmt.Sprint(claims["sub"])
		body = mustJSON(claims)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
}

// revoke implements RFC 7009: an authenticated client gets 200 whether or
// not the token was known.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if !s.clientForm(w, r) {
		return
	}
	token := r.PostForm.Get("token")
	s.mu.Lock()
	delete(s.accessTokens, token)
	delete(s.refreshTokens, token)
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// hang waits until the client or the test goes away, or the fault changes:
// then it drops the connection unanswered.
func (s *Server) hang(r *http.Request, faultChanged <-chan struct{}) {
	select {
	case <-r.Context().Done():
	case <-s.done:
	case <-faultChanged:
		panic(http.ErrAbortHandler)
	}
}

// pause delays the answer under FaultSlow. It reports false when the client
// or the test went away first, and the handler should return.
func (s *Server) pause(r *http.Request, f Fault) bool {
	if f != FaultSlow {
		return true
	}
	timer := time.NewTimer(slowDelay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.done:
		return false
	}
}
