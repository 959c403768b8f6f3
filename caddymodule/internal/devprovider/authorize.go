package devprovider

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
)

//go:embed pages.html
var pageFS embed.FS

var pages = template.Must(template.ParseFS(pageFS, "pages.html"))

// maxParamLen bounds every authorization parameter, so that the codes kept
// in memory stay small.
const maxParamLen = 2048

// authParams are the authorization request parameters the sign-in forms
// carry from the GET to the POST.
var authParams = []string{
	"client_id", "redirect_uri", "response_type", "response_mode", "scope",
	"state", "nonce", "code_challenge", "code_challenge_method",
}

// presetUser is a test user offered as a one-click button.
type presetUser struct {
	ID, Name, Email string
}

var presetUsers = []presetUser{
	{ID: "ada", Name: "Ada Lovelace", Email: "ada@example.com"},
	{ID: "grace", Name: "Grace Hopper", Email: "grace@example.com"},
	{ID: "alan", Name: "Alan Turing", Email: "alan@example.com"},
}

// authRequest is a validated authorization request.
type authRequest struct {
	params        url.Values
	client        *registeredClient
	redirect      *url.URL
	state         string
	nonce         string
	scope         []string // granted: requested scopes the provider supports
	codeChallenge string
}

// page is the data of the HTML templates.
type page struct {
	Error         string
	Action        string
	Issuer        string
	ClientID      string
	RedirectHost  string
	Scopes        []string
	Hidden        []hiddenField
	Presets       []presetUser
	Name, Email   string
	EmailVerified bool
}

type hiddenField struct{ Name, Value string }

// handleAuthorize shows the sign-in page (GET) and signs the chosen user in
// (POST). Until client_id and redirect_uri are known good, errors are shown
// as a page and never redirected, so the endpoint is no open redirector.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				renderPage(w, http.StatusRequestEntityTooLarge, "error", page{Error: "The request is too large."})
				return
			}
			renderPage(w, http.StatusBadRequest, "error", page{Error: "The form could not be read."})
			return
		}
		params = r.PostForm
	}
	req, problem := s.checkClient(params)
	if problem != "" {
		renderPage(w, http.StatusBadRequest, "error", page{Error: problem})
		return
	}
	if err := s.checkAuthRequest(req); err != nil {
		s.redirectBack(w, req, url.Values{"error": {err.Code}, "error_description": {err.Description}})
		return
	}
	if r.Method == http.MethodGet {
		s.renderSignIn(w, http.StatusOK, req, page{EmailVerified: true})
		return
	}
	s.signIn(w, req)
}

// checkClient validates what decides whether errors may be redirected:
// client_id and redirect_uri, and the size of every parameter. It returns a
// message for the error page when they are not good.
func (s *Server) checkClient(params url.Values) (*authRequest, string) {
	for name, values := range params {
		for _, v := range values {
			if len(v) > maxParamLen {
				return nil, "The parameter " + name + " is too long."
			}
		}
	}
	if len(params["client_id"]) > 1 || len(params["redirect_uri"]) > 1 {
		return nil, "The client_id or redirect_uri parameter is repeated."
	}
	client := s.clients[params.Get("client_id")]
	if client == nil {
		return nil, "The client_id parameter is missing or names an unknown client."
	}
	uri := params.Get("redirect_uri")
	if uri == "" {
		return nil, "The redirect_uri parameter is missing."
	}
	if len(client.RedirectURIs) > 0 && !slices.Contains(client.RedirectURIs, uri) {
		return nil, "The redirect_uri is not registered for this client."
	}
	redirect, err := parseRedirectURI(uri)
	if err != nil {
		return nil, "The redirect_uri is not acceptable: it " + err.Error() + "."
	}
	return &authRequest{params: params, client: client, redirect: redirect, state: params.Get("state")}, ""
}

// checkAuthRequest validates the rest of the request; its errors are
// redirected to the client.
func (s *Server) checkAuthRequest(req *authRequest) *oauthError {
	p := req.params
	for name, values := range p {
		if len(values) > 1 {
			return oauthErr("invalid_request", "parameter "+name+" is repeated")
		}
	}
	switch {
	case p.Has("request"):
		return oauthErr("request_not_supported", "request objects are not supported")
	case p.Has("request_uri"):
		return oauthErr("request_uri_not_supported", "request_uri is not supported")
	case p.Get("response_type") == "":
		return oauthErr("invalid_request", "response_type is required")
	case p.Get("response_type") != "code":
		return oauthErr("unsupported_response_type", "only response_type=code is supported")
	case p.Has("response_mode") && p.Get("response_mode") != "query":
		return oauthErr("invalid_request", "only response_mode=query is supported")
	}
	requested := strings.Fields(p.Get("scope"))
	if !slices.Contains(requested, "openid") {
		return oauthErr("invalid_scope", "the openid scope is required")
	}
	challenge, method := p.Get("code_challenge"), p.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		return oauthErr("invalid_request", "code_challenge_method without code_challenge")
	case challenge != "" && method != "S256":
		// An absent method means plain (RFC 7636 section 4.3), which is refused.
		return oauthErr("invalid_request", "code_challenge_method must be S256")
	case challenge != "" && !isS256Challenge(challenge):
		return oauthErr("invalid_request", "code_challenge must be a base64url SHA-256 hash")
	case slices.Contains(strings.Fields(p.Get("prompt")), "none"):
		// There is no session to sign in silently with (OIDC Core 3.1.2.6).
		return oauthErr("login_required", "this provider always shows its sign-in page")
	}
	req.scope = slices.DeleteFunc(slices.Clone(s.scopes), func(sc string) bool {
		return !slices.Contains(requested, sc)
	})
	req.nonce = p.Get("nonce")
	req.codeChallenge = challenge
	return nil
}

func isS256Challenge(challenge string) bool {
	b, err := base64.RawURLEncoding.DecodeString(challenge)
	return err == nil && len(b) == sha256.Size
}

// signIn reads the chosen user from the form, issues a code and sends it to
// the client.
func (s *Server) signIn(w http.ResponseWriter, req *authRequest) {
	u, form, problem := userFromForm(req.params)
	if problem != "" {
		form.Error = problem
		s.renderSignIn(w, http.StatusBadRequest, req, form)
		return
	}
	code, err := s.state.addCode(&authCode{
		clientID:      req.client.ID,
		redirectURI:   req.params.Get("redirect_uri"),
		codeChallenge: req.codeChallenge,
		nonce:         req.nonce,
		scope:         req.scope,
		user:          u,
		authTime:      s.now().Truncate(time.Second),
	})
	if err != nil {
		s.redirectBack(w, req, url.Values{"error": {err.Code}, "error_description": {err.Description}})
		return
	}
	s.redirectBack(w, req, url.Values{"code": {code}})
}

// userFromForm returns the preset user of the button pressed, or the user
// typed into the form. On a problem it returns the form to show again.
func userFromForm(form url.Values) (user, page, string) {
	if id := form.Get("user"); id != "" {
		i := slices.IndexFunc(presetUsers, func(p presetUser) bool { return p.ID == id })
		if i < 0 {
			return user{}, page{EmailVerified: true}, "There is no test user " + id + "."
		}
		return user{Name: presetUsers[i].Name, Email: presetUsers[i].Email, EmailVerified: true}, page{}, ""
	}
	u := user{
		Name:          strings.TrimSpace(form.Get("name")),
		Email:         strings.TrimSpace(form.Get("email")),
		EmailVerified: form.Get("email_verified") != "",
	}
	shown := page{Name: u.Name, Email: u.Email, EmailVerified: u.EmailVerified}
	switch {
	case u.Name == "" || len(u.Name) > 200:
		return user{}, shown, "Enter a name of at most 200 characters."
	case len(u.Email) > 254 || !isPlainAddress(u.Email):
		return user{}, shown, "Enter an email address such as name@example.com."
	}
	return u, page{}, ""
}

// isPlainAddress accepts a bare RFC 5322 address, without display name or
// angle brackets.
func isPlainAddress(email string) bool {
	addr, err := mail.ParseAddress(email)
	return err == nil && addr.Name == "" && addr.Address == email
}

// subject is the user's stable sub claim, derived from the email so that it
// survives restarts, after the provider's prefix.
func (s *Server) subject(u user) string {
	sum := sha256.Sum256([]byte(strings.ToLower(u.Email)))
	return s.subjectPrefix + hex.EncodeToString(sum[:])[:24]
}

// redirectBack sends the authorization response to the client's
// redirect_uri, keeping its query, with state and iss (RFC 9207).
func (s *Server) redirectBack(w http.ResponseWriter, req *authRequest, params url.Values) {
	u := *req.redirect
	q := u.Query()
	for name, values := range params {
		q[name] = values
	}
	if req.state != "" {
		q.Set("state", req.state)
	}
	q.Set("iss", s.issuer)
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusFound)
}

func (s *Server) renderSignIn(w http.ResponseWriter, status int, req *authRequest, p page) {
	p.Action = s.basePath + authorizePath
	p.Issuer = s.issuer
	p.ClientID = req.client.ID
	p.RedirectHost = req.redirect.Host
	p.Scopes = req.scope
	p.Presets = presetUsers
	for _, name := range authParams {
		if req.params.Has(name) {
			p.Hidden = append(p.Hidden, hiddenField{Name: name, Value: req.params.Get(name)})
		}
	}
	renderPage(w, status, "authorize", p)
}

// renderPage writes an HTML page that cannot be framed (clickjacking), cached
// or made to load anything but its own inline style.
func renderPage(w http.ResponseWriter, status int, name string, p page) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	pages.ExecuteTemplate(w, name, p)
}
