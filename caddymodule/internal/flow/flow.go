// Package flow runs the OAuth 2.0 / OpenID Connect authorization code flow:
// Start sends the browser to a provider with state, PKCE and a nonce; Callback
// checks what comes back and signs the person in (sign-up and sign-in are one
// flow). The pending flow lives in the store for a few minutes, keyed by its
// state, single-use, and bound to the browser that started it by a cookie.
package flow

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// BindingCookie binds pending flows to the browser that started them.
const BindingCookie = "socialgate_flow"

// ephemeralKind is the store kind of pending flow records.
const ephemeralKind = "flow"

// DefaultTTL is how long a started flow may take to come back.
const DefaultTTL = 10 * time.Minute

// Config configures a Flow.
type Config struct {
	Store    store.Store
	Sessions *session.Manager
	// Sanitize turns a requested return-to into a safe one.
	Sanitize func(raw string) string
	// TTL bounds a pending flow; default DefaultTTL.
	TTL    time.Duration
	Logger *zap.Logger
}

// Flow starts and completes authorizations. Safe for concurrent use.
type Flow struct {
	Config
}

// New returns a Flow.
func New(cfg Config) *Flow {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Flow{Config: cfg}
}

// pending is the server-side record of a started flow. The PKCE verifier and
// the nonce live here, never in the state parameter.
type pending struct {
	Provider    string    `json:"provider"`
	Binding     []byte    `json:"binding"` // SHA-256 of the binding cookie
	Verifier    string    `json:"verifier,omitempty"`
	Nonce       string    `json:"nonce"`
	RedirectURL string    `json:"redirect_url"`
	Scopes      []string  `json:"scopes,omitempty"`
	ReturnTo    string    `json:"return_to"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// Start begins a sign-in at p: it records the pending flow and returns the
// provider's authorization URL. callbackURL is this provider's absolute
// callback URL as the browser sees it; returnTo is checked by Sanitize.
func (f *Flow) Start(w http.ResponseWriter, r *http.Request, p *provider.Provider, callbackURL, returnTo string) (string, error) {
	if !p.SignIn() {
		return "", errSignInDisabled(p)
	}
	binding := f.binding(w, r)
	state, nonce := randomString(), randomString()
	rec := pending{
		Provider:    p.Name(),
		Binding:     hash(binding),
		Nonce:       nonce,
		RedirectURL: callbackURL,
		ReturnTo:    f.Sanitize(returnTo),
		ExpiresAt:   time.Now().Add(f.TTL),
	}
	req := provider.AuthRequest{RedirectURL: callbackURL, State: state, Nonce: nonce}
	if p.UsesPKCE() {
		rec.Verifier = randomString() + randomString() // 86 chars, within RFC 7636's 43–128
		req.CodeChallenge = s256(rec.Verifier)
	}
	authURL, err := p.AuthCodeURL(r.Context(), req)
	if err != nil {
		return "", unavailable(p, err)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encoding pending flow: %w", err)
	}
	if err := f.Store.PutEphemeral(r.Context(), ephemeralKind, state, data, f.TTL); err != nil {
		return "", fmt.Errorf("saving pending flow: %w", err)
	}
	return authURL, nil
}

// binding returns the browser's binding value, setting the cookie when the
// request has none.
func (f *Flow) binding(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(BindingCookie); err == nil && validToken(c.Value) {
		return c.Value
	}
	v := randomString()
	http.SetCookie(w, &http.Cookie{
		Name:     BindingCookie,
		Value:    v,
		Path:     "/",
		MaxAge:   int(f.TTL / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	})
	return v
}

// randomString returns 32 random bytes, base64url: 43 characters.
func randomString() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validToken reports whether s looks like a randomString.
func validToken(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func equalBytes(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
