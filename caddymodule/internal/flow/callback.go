package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
)

// Outcome is a completed flow.
type Outcome struct {
	Mode     Mode
	User     *store.User
	Account  *store.ExternalAccount
	Session  *store.Session
	ReturnTo string
	Created  bool // the sign-in created the user (sign-up)
	// Linked, when set, tells that the sign-in joined an existing user by
	// a shared verified address: the person must be told.
	Linked *LinkNotice
}

// Callback completes a flow at p's callback: it checks state and the browser
// binding before anything reaches the provider, redeems the code, resolves
// the identity to a user (sign-in) or links it to the signed-in user
// (connect, reauthorize), and starts a new session: every sign-in and every
// link gets a new session id. A first sign-in may join the user holding the
// same verified email, as f.LinkByEmail allows (see store.SignIn.EmailLink).
func (f *Flow) Callback(w http.ResponseWriter, r *http.Request, p *provider.Provider) (*Outcome, error) {
	if err := r.ParseForm(); err != nil {
		return nil, ErrInvalidState
	}
	rec, err := f.takePending(r, p)
	if err != nil {
		return nil, err
	}
	if code := r.Form.Get("error"); code != "" {
		return nil, denied(p, sanitizeCode(code))
	}
	code := r.Form.Get("code")
	if code == "" {
		return nil, ErrInvalidState
	}
	// A connect or reauthorize flow belongs to a session that must still be
	// live: signing out in another tab ends it.
	var current *store.Session
	if rec.Mode != ModeSignIn {
		current, err = f.Store.Session(r.Context(), rec.SessionID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && current.UserID != rec.UserID) {
			return nil, errSessionEnded
		}
		if err != nil {
			return nil, fmt.Errorf("reading session: %w", err)
		}
	}
	iss, hasIss := r.Form["iss"]
	res, err := p.Exchange(r.Context(), provider.Callback{
		Code:        code,
		Iss:         first(iss),
		HasIss:      hasIss,
		RedirectURL: rec.RedirectURL,
		Verifier:    rec.Verifier,
		Nonce:       rec.Nonce,
		Scopes:      rec.Scopes,
		User:        r.Form.Get("user"),
	})
	if err != nil {
		return nil, unavailable(p, err)
	}
	// LinkByEmail on every kind of flow: a trusted provider's verified
	// address takes the address over from an untrusted holder whether it
	// arrives by a sign-in or a connect (see store.Emails).
	in := store.SignIn{Account: account(p, res), Now: f.now(), LinkByEmail: f.LinkByEmail}
	// auth is how the new session's person proved who they are: a link
	// keeps the session's (it proves an account, not its holder).
	var auth session.Auth
	switch rec.Mode {
	case ModeSignIn:
		in.Admit = f.admit(p, in.Account)
		auth.Time, auth.ProviderSID = f.authTime(res), res.SID
	case ModeConnect:
		in.LinkToUser = rec.UserID
		auth = session.Auth{AccountID: current.AccountID, Time: current.AuthTime, ProviderSID: current.ProviderSID}
	case ModeReauthorize, ModeReauthenticate:
		if err := f.sameAccount(r.Context(), rec, in.Account); err != nil {
			return nil, err
		}
		in.LinkToUser = rec.UserID
		auth = session.Auth{AccountID: current.AccountID, Time: current.AuthTime, ProviderSID: current.ProviderSID}
		if rec.Mode == ModeReauthenticate {
			if auth, err = f.reauthenticated(p, rec, res); err != nil {
				return nil, err
			}
			auth.ProviderSID = res.SID
		}
	}
	out, err := f.Store.SignIn(r.Context(), in)
	if fe := (*Error)(nil); errors.As(err, &fe) {
		return nil, fe // not admitted
	}
	if fe := Refused(err); fe != nil {
		return nil, fe
	}
	if errors.Is(err, store.ErrEmailHeld) {
		return nil, errEmailHeld(p, in.Account)
	}
	if errors.Is(err, store.ErrIdentityTaken) {
		return nil, errIdentityTaken(p)
	}
	if errors.Is(err, store.ErrNotFound) && in.LinkToUser != "" {
		return nil, errUserGone // the user was deleted while linking
	}
	if err != nil {
		return nil, fmt.Errorf("recording sign-in: %w", err)
	}
	f.logInvalidEmail(p, out)
	linked := f.linked(p, out)
	if rec.Native != nil {
		// The app redeems the nonce for a session token; no cookie here.
		back, err := f.nativeReturn(r.Context(), rec.Native, out.User.ID, out.Account.ID, linked)
		if err != nil {
			return nil, err
		}
		f.Logger.Info("native sign-in", zap.String("provider", p.Name()), zap.String("user_id", out.User.ID),
			zap.Bool("user_created", out.UserCreated))
		return &Outcome{Mode: rec.Mode, User: out.User, Account: out.Account, ReturnTo: back, Created: out.UserCreated, Linked: linked}, nil
	}
	if rec.Mode == ModeSignIn {
		auth.AccountID = out.Account.ID
	}
	sess, err := f.Sessions.Start(r.Context(), w, r, out.User, current, auth)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUserGone // deleted between the sign-in and its session
	}
	if fe := Refused(err); fe != nil {
		return nil, fe // banned or locked between the sign-in and its session
	}
	if err != nil {
		return nil, err
	}
	if rec.Mode == ModeSignIn || rec.Mode == ModeReauthenticate {
		f.rememberProviderSession(r.Context(), out.Account, auth.ProviderSID, sess)
	}
	switch {
	case rec.Mode == ModeConnect:
		metrics.Links.WithLabelValues(p.Name()).Inc()
	case rec.Mode == ModeSignIn && out.UserCreated:
		metrics.SignIns.WithLabelValues(p.Name(), "sign_up").Inc()
	case rec.Mode == ModeSignIn && linked != nil:
		metrics.SignIns.WithLabelValues(p.Name(), "linked_by_email").Inc()
	case rec.Mode == ModeSignIn:
		metrics.SignIns.WithLabelValues(p.Name(), "success").Inc()
	}
	if c := f.Logger.Check(zap.InfoLevel, string(rec.Mode)); c != nil {
		c.Write(zap.String("provider", p.Name()), zap.String("user_id", out.User.ID),
			zap.String("external_account_id", out.Account.ID), zap.String("session_id", sess.ID),
			zap.Bool("user_created", out.UserCreated), zap.Bool("account_created", out.AccountCreated))
	}
	return &Outcome{Mode: rec.Mode, User: out.User, Account: out.Account, Session: sess,
		ReturnTo: rec.ReturnTo, Created: out.UserCreated, Linked: linked}, nil
}

// SignInResult records a sign-in verified outside a browser flow (native
// Sign in with Apple): the identity resolves to a user as in a callback.
func (f *Flow) SignInResult(ctx context.Context, p *provider.Provider, res *provider.Result) (*Outcome, error) {
	acc := account(p, res)
	out, err := f.Store.SignIn(ctx, store.SignIn{Account: acc, Now: f.now(),
		LinkByEmail: f.LinkByEmail, Admit: f.admit(p, acc)})
	if fe := (*Error)(nil); errors.As(err, &fe) {
		return nil, fe // not admitted
	}
	if fe := Refused(err); fe != nil {
		return nil, fe
	}
	if errors.Is(err, store.ErrEmailHeld) {
		return nil, errEmailHeld(p, acc)
	}
	if err != nil {
		return nil, fmt.Errorf("recording sign-in: %w", err)
	}
	f.logInvalidEmail(p, out)
	linked := f.linked(p, out)
	f.Logger.Info("native sign-in", zap.String("provider", p.Name()), zap.String("user_id", out.User.ID),
		zap.Bool("user_created", out.UserCreated))
	return &Outcome{Mode: ModeSignIn, User: out.User, Account: out.Account, Created: out.UserCreated, Linked: linked}, nil
}

// logInvalidEmail notes a sign-in whose provider asserted an email that is
// not a plain address (store.CleanEmail): the store took it as none. The
// address itself is not logged.
func (f *Flow) logInvalidEmail(p *provider.Provider, out store.SignInResult) {
	if out.EmailInvalid {
		f.Logger.Warn("the provider asserted an email that is not a plain address; the sign-in carries none",
			zap.String("provider", p.Name()), zap.String("user_id", out.User.ID), zap.String("external_account_id", out.Account.ID))
	}
}

// admit is the store's Admit for a sign-in with acc at p: nil when the app
// admits everyone, else a check of the rules against the accounts of the
// user the sign-in resolves to, who may be admitted through another one.
func (f *Flow) admit(p *provider.Provider, acc store.ExternalAccount) func(*store.User, []*store.ExternalAccount) error {
	if !f.Admit.Restricts() {
		return nil
	}
	return func(u *store.User, accounts []*store.ExternalAccount) error {
		if f.Admit.Admits(u, accounts) {
			return nil
		}
		return errNotAdmitted(p, acc)
	}
}

// sameAccount refuses a reauthorization that came back as another identity:
// renewing one linked account must not quietly link a different one.
func (f *Flow) sameAccount(ctx context.Context, rec *pending, got store.ExternalAccount) error {
	a, err := f.Store.ExternalAccount(ctx, rec.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return errNoSuchAccount
	}
	if err != nil {
		return fmt.Errorf("reading account: %w", err)
	}
	if a.Issuer != got.Issuer || a.Subject != got.Subject {
		return errOtherAccount
	}
	return nil
}

// takePending consumes the flow named by the state parameter and checks that
// this browser started it at this provider. Everything fails the same way.
func (f *Flow) takePending(r *http.Request, p *provider.Provider) (*pending, error) {
	state := r.Form.Get("state")
	binding, n := f.presentedBinding(r)
	if !validToken(state) || n != 1 {
		return nil, ErrInvalidState
	}
	data, err := f.Store.TakeEphemeral(r.Context(), ephemeralKind, state)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidState
	}
	if err != nil {
		return nil, fmt.Errorf("reading pending flow: %w", err)
	}
	var rec pending
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, ErrInvalidState
	}
	// A flow that another browser started (login CSRF), that was meant for
	// another provider (mix-up), or that outlived its TTL ends here.
	if !equalBytes(rec.Binding, hash(binding)) || rec.Provider != p.Name() || f.now().After(rec.ExpiresAt) {
		return nil, ErrInvalidState
	}
	return &rec, nil
}

// account turns a verified provider result into the store's account record.
func account(p *provider.Provider, res *provider.Result) store.ExternalAccount {
	tok := res.Token
	issuer := res.Issuer
	if issuer == "" {
		issuer = p.Issuer()
	}
	return store.ExternalAccount{
		Provider:       p.Name(),
		Issuer:         issuer,
		Subject:        res.Profile.Subject,
		Email:          res.Profile.Email,
		EmailVerified:  res.Profile.EmailVerified,
		Name:           res.Profile.Name,
		Username:       res.Profile.Username,
		ImageURL:       res.Profile.ImageURL,
		ApprovedScopes: res.Scopes,
		Groups:         res.Profile.Groups,
		Tokens: store.TokenSet{
			AccessToken:  tok.AccessToken,
			RefreshToken: tok.RefreshToken,
			IDToken:      res.IDToken,
			TokenType:    tok.TokenType,
			Expiry:       tok.Expiry,
			ClientID:     res.ClientID,
			IssuedAt:     tokens.IssuedAt(tok),
		},
	}
}

// sanitizeCode keeps an OAuth error code printable for logs: the RFC's codes
// are lower-case letters and underscores.
func sanitizeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || (r >= 'a' && r <= 'z') {
			return r
		}
		return -1
	}, s)
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
