// Package flow runs the OAuth 2.0 / OpenID Connect authorization code flow:
// Start sends the browser to a provider with state, PKCE and a nonce; Callback
// checks what comes back and signs the person in (sign-up and sign-in are one
// flow). The pending flow lives in the store for a few minutes, keyed by its
// state, single-use, and bound to the browser that started it by a cookie.
package flow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// BindingCookie binds pending flows to the browser that started them. Over
// HTTPS its name is __Host-socialgate_flow, the only one read there (see
// session.Name), so another host cannot plant one.
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
	TTL time.Duration
	// NativeAllowed reports whether a native app's redirect URL is on the
	// allowlist; checked when a native flow starts and again when it ends.
	NativeAllowed func(ctx context.Context, url string) bool
	// Admit admits to sign-in only users one of whose accounts matches (the
	// app's allow_emails and allow_groups); nil admits everyone. A refused
	// first sign-in creates no user.
	Admit *access.Rules
	// LinkByEmail reports whether a provider may vouch for linking by
	// email (its link_by_email; see store.SignIn.LinkByEmail); nil links
	// nothing by email.
	LinkByEmail func(provider string) bool
	// ReauthenticateAfter is how long after its person last authenticated a
	// session may take sensitive account actions without authenticating
	// again (see NeedsReauthentication); default
	// DefaultReauthenticateAfter.
	ReauthenticateAfter time.Duration
	Logger              *zap.Logger
}

// Flow starts and completes authorizations. Safe for concurrent use.
type Flow struct {
	Config
	now func() time.Time
}

// New returns a Flow.
func New(cfg Config) *Flow {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.ReauthenticateAfter == 0 {
		cfg.ReauthenticateAfter = DefaultReauthenticateAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Flow{Config: cfg, now: time.Now}
}

// Mode is what a flow is for.
type Mode string

// Modes of a flow.
const (
	// ModeSignIn signs a person in, creating the user on first sign-in.
	ModeSignIn Mode = "sign_in"
	// ModeConnect links another provider account to the signed-in user.
	ModeConnect Mode = "connect"
	// ModeReauthorize renews an existing linked account's grant, usually to
	// add scopes (incremental authorization).
	ModeReauthorize Mode = "reauthorize"
	// ModeReauthenticate makes the signed-in person prove again, at the
	// provider, that they hold the session's account (Request.Account),
	// before a sensitive account action. It links nothing.
	ModeReauthenticate Mode = "reauthenticate"
)

// Request is what Start needs to begin a flow.
type Request struct {
	Provider *provider.Provider
	// CallbackURL is the provider's absolute callback URL as the browser sees it.
	CallbackURL string
	// ReturnTo is where to go afterwards; it is checked by Sanitize.
	ReturnTo string
	Mode     Mode
	// Session is the signed-in session that starts a connect or reauthorize
	// flow; the flow is bound to it.
	Session *store.Session
	// Account is the linked account a reauthorize flow renews, or the one a
	// reauthenticate flow proves again.
	Account *store.ExternalAccount
	// Scopes are requested in addition to the provider's own.
	Scopes []string
	// Native, for a sign-in from a native app, is where the app wants the
	// rotating token nonce and the challenge its verifier must match.
	Native *Native
}

// Native is the app side of a native sign-in: an allowlisted redirect URL
// and an S256 challenge of a verifier only the app knows.
type Native struct {
	RedirectURL string
	Challenge   string
}

// pending is the server-side record of a started flow. The PKCE verifier and
// the nonce live here, never in the state parameter.
type pending struct {
	Mode        Mode      `json:"mode"`
	Provider    string    `json:"provider"`
	Binding     []byte    `json:"binding"` // SHA-256 of the binding cookie
	Verifier    string    `json:"verifier,omitempty"`
	Nonce       string    `json:"nonce"`
	RedirectURL string    `json:"redirect_url"`
	Scopes      []string  `json:"scopes,omitempty"`
	ReturnTo    string    `json:"return_to"`
	SessionID   string    `json:"session_id,omitempty"`
	UserID      string    `json:"user_id,omitempty"`
	AccountID   string    `json:"account_id,omitempty"`
	Native      *Native   `json:"native,omitempty"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// Start begins a flow: it records the pending flow and returns the
// provider's authorization URL.
func (f *Flow) Start(w http.ResponseWriter, r *http.Request, req Request) (string, error) {
	p := req.Provider
	rec := pending{
		Mode:        req.Mode,
		Provider:    p.Name(),
		Nonce:       randomString(),
		RedirectURL: req.CallbackURL,
		Scopes:      req.Scopes,
		ReturnTo:    f.Sanitize(req.ReturnTo),
		ExpiresAt:   f.now().Add(f.TTL),
	}
	auth := provider.AuthRequest{RedirectURL: req.CallbackURL, Nonce: rec.Nonce, Scopes: req.Scopes}
	switch req.Mode {
	case ModeSignIn:
		if !p.SignIn() {
			return "", errSignInDisabled(p)
		}
		if n := req.Native; n != nil {
			if !validToken(n.Challenge) {
				return "", errNativeChallenge
			}
			if f.NativeAllowed == nil || !f.NativeAllowed(r.Context(), n.RedirectURL) {
				return "", errNativeRedirect
			}
			rec.Native = n
		}
	case ModeConnect, ModeReauthorize, ModeReauthenticate:
		if req.Session == nil {
			return "", errNeedsSession
		}
		rec.SessionID, rec.UserID = req.Session.ID, req.Session.UserID
		// Ask again even when the provider remembers an earlier consent, so
		// new scopes are shown and a refresh token is issued anew.
		auth.Prompt = "consent"
		if req.Mode != ModeConnect {
			if req.Account == nil || req.Account.UserID != req.Session.UserID || req.Account.Provider != p.Name() {
				return "", errNoSuchAccount
			}
			rec.AccountID = req.Account.ID
			rec.Scopes = mergeScopes(req.Account.ApprovedScopes, req.Scopes)
			auth.Scopes = rec.Scopes
		}
		if req.Mode == ModeReauthenticate {
			auth.Prompt, auth.Reauthenticate = "", true
		}
	default:
		return "", fmt.Errorf("unknown flow mode %q", req.Mode)
	}
	binding, err := f.binding(w, r, p.FormPost())
	if err != nil {
		return "", err
	}
	rec.Binding = hash(binding)
	state := randomString()
	auth.State = state
	if p.UsesPKCE() {
		rec.Verifier = randomString() + randomString() // 86 chars, within RFC 7636's 43–128
		auth.CodeChallenge = s256(rec.Verifier)
	}
	authURL, err := p.AuthCodeURL(r.Context(), auth)
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

// mergeScopes returns a followed by the scopes of b it lacks.
func mergeScopes(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, s := range b {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
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
