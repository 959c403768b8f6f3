package flow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Store kinds of the records logout keeps.
const (
	// signOutKind: the state of a sign-out at a provider → the return-to.
	signOutKind = "sign_out"
	// providerSIDKind: a provider session (issuer, sid) → the gateway user
	// and account it signed in, for logout tokens that name only a sid.
	providerSIDKind = "provider_sid"
	// logoutJTIKind: the ids of the logout tokens used.
	logoutJTIKind = "logout_jti"
)

// ErrLogoutReplayed refuses a logout token whose jti was used before: a
// replay would end sessions begun since.
var ErrLogoutReplayed = fmt.Errorf("%w: logout token: its jti was used before", provider.ErrRejected)

// EndSession begins a sign-out at p (RP-Initiated Logout) for a session
// whose gateway side has ended: it returns the URL of p's end-session
// endpoint, carrying idToken as the hint and a single-use state that
// SignedOut turns back into returnTo (sanitized) when the provider sends
// the browser to postLogoutURL. It returns "" when p does not sign out
// there (sign_out_at_provider off, or no end_session_endpoint).
func (f *Flow) EndSession(ctx context.Context, p *provider.Provider, idToken, postLogoutURL, returnTo string) (string, error) {
	state := randomString()
	to, err := p.EndSessionURL(ctx, provider.EndSession{IDTokenHint: idToken, PostLogoutRedirectURL: postLogoutURL, State: state})
	if err != nil || to == "" {
		return "", err
	}
	if err := f.Store.PutEphemeral(ctx, signOutKind, state, []byte(f.Sanitize(returnTo)), f.TTL); err != nil {
		return "", fmt.Errorf("saving the sign-out state: %w", err)
	}
	return to, nil
}

// SignedOut consumes the state a provider sent back after a sign-out and
// returns where the browser goes now: the return-to EndSession recorded,
// or "" for a state that is unknown, used or expired. The state needs no
// binding to the browser: all it yields is a sanitized return-to.
func (f *Flow) SignedOut(ctx context.Context, state string) (string, error) {
	if !validToken(state) {
		return "", nil
	}
	returnTo, err := f.Store.TakeEphemeral(ctx, signOutKind, state)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the sign-out state: %w", err)
	}
	return string(returnTo), nil
}

// providerSession is what a provider session (issuer, sid) signed in.
type providerSession struct {
	UserID    string    `json:"user_id"`
	AccountID string    `json:"account_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// issuerKey is the store id of a provider's id (a sid, a jti): bounded, and
// never the same for two issuers.
func issuerKey(issuer, id string) string {
	h := sha256.Sum256([]byte(issuer + "\x00" + id))
	return hex.EncodeToString(h[:])
}

// rememberProviderSession records which user and account the provider
// session sid of a sign-in signed in, for as long as sess lives.
func (f *Flow) rememberProviderSession(ctx context.Context, acc *store.ExternalAccount, sid string, sess *store.Session) {
	if sid == "" {
		return
	}
	rec, _ := json.Marshal(providerSession{UserID: acc.UserID, AccountID: acc.ID, ExpiresAt: sess.ExpiresAt})
	if err := f.Store.PutEphemeral(ctx, providerSIDKind, issuerKey(acc.Issuer, sid), rec, time.Until(sess.ExpiresAt)); err != nil {
		// The sign-in stands; a logout token naming only this sid will not find it.
		f.Logger.Error("recording the provider session", zap.String("provider", acc.Provider), zap.Error(err))
	}
}

// BackChannelLogout ends the sessions a back-channel logout token from p
// names (OpenID Connect Back-Channel Logout 1.0) and returns them. The
// token is verified (provider.VerifyLogoutToken) and its jti used once. With
// a sid, the sessions ended are those that sign-in with that provider
// session started, and with a sub as well only if that person's; with a sub
// alone, every session of the user whose account is (iss, sub). A person
// the gateway does not know, or who has no session, is no error.
func (f *Flow) BackChannelLogout(ctx context.Context, p *provider.Provider, raw string) ([]*store.Session, error) {
	tok, err := p.VerifyLogoutToken(ctx, raw)
	if err != nil {
		return nil, err
	}
	jti := issuerKey(tok.Issuer, tok.JTI)
	// Remembered until the token is too old to pass VerifyLogoutToken.
	ttl := time.Until(tok.IssuedAt.Add(provider.LogoutTokenMaxAge + time.Minute))
	if err := f.Store.CreateEphemeral(ctx, logoutJTIKind, jti, nil, ttl); errors.Is(err, store.ErrExists) {
		return nil, ErrLogoutReplayed
	} else if err != nil {
		return nil, fmt.Errorf("recording the logout token: %w", err)
	}
	ended, err := f.endProviderSessions(ctx, tok)
	if err != nil {
		// Let the provider's retry of this token through.
		f.Store.TakeEphemeral(context.WithoutCancel(ctx), logoutJTIKind, jti)
	}
	return ended, err
}

// endProviderSessions revokes the sessions tok names.
func (f *Flow) endProviderSessions(ctx context.Context, tok *provider.LogoutToken) (ended []*store.Session, err error) {
	var who providerSession
	if tok.Subject != "" {
		var acc *store.ExternalAccount
		acc, err = f.Store.ExternalAccountByIdentity(ctx, tok.Issuer, tok.Subject)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		who = providerSession{UserID: acc.UserID, AccountID: acc.ID}
	} else {
		key := issuerKey(tok.Issuer, tok.SID)
		var rec []byte
		rec, err = f.Store.TakeEphemeral(ctx, providerSIDKind, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the provider session: %w", err)
		}
		if err = json.Unmarshal(rec, &who); err != nil {
			return nil, fmt.Errorf("decoding the provider session: %w", err)
		}
		defer func() {
			if err != nil { // put it back for the provider's retry
				f.Store.PutEphemeral(context.WithoutCancel(ctx), providerSIDKind, key, rec, time.Until(who.ExpiresAt))
			}
		}()
	}
	var sessions []*store.Session
	if sessions, err = f.Store.Sessions(ctx, who.UserID); err != nil {
		return nil, err
	}
	for _, s := range sessions {
		if tok.SID != "" && (s.ProviderSID != tok.SID || s.AccountID != who.AccountID) {
			continue
		}
		if err = f.Store.RevokeSession(ctx, s.ID); err != nil {
			return ended, err
		}
		ended = append(ended, s)
	}
	return ended, nil
}
