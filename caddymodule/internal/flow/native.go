package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// NonceTTL is how long a rotating token nonce can be redeemed.
const NonceTTL = time.Minute

// SignInNonceTTL is how long a sign-in nonce (IssueSignInNonce) can be
// redeemed: long enough for the person to pass the provider's native sign-in
// sheet, short enough that a captured token is soon worthless.
const SignInNonceTTL = 5 * time.Minute

// Ephemeral kinds of the app-bound nonces: a rotating token nonce is never
// a sign-in nonce, nor the other way round.
const (
	nonceKind       = "nonce"
	signInNonceKind = "signin_nonce"
)

// nonceRecord binds a nonce to the app's challenge and, for a rotating
// token nonce, to the user it signs in.
type nonceRecord struct {
	UserID    string      `json:"user_id,omitempty"`
	AccountID string      `json:"account_id,omitempty"`
	Challenge string      `json:"challenge"`
	Linked    *LinkNotice `json:"linked,omitempty"`
}

// nativeReturn mints the rotating token nonce of a finished native sign-in
// and returns the app's redirect URL carrying it. The allowlist is checked
// again: a URL removed meanwhile never receives a nonce.
func (f *Flow) nativeReturn(ctx context.Context, n *Native, userID, accountID string, linked *LinkNotice) (string, error) {
	if f.NativeAllowed == nil || !f.NativeAllowed(ctx, n.RedirectURL) {
		return "", errNativeRedirect
	}
	u, err := url.Parse(n.RedirectURL)
	if err != nil {
		return "", errNativeRedirect
	}
	nonce, err := f.putBound(ctx, nonceKind, nonceRecord{UserID: userID, AccountID: accountID, Challenge: n.Challenge, Linked: linked}, NonceTTL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("rotating_token_nonce", nonce)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// RedeemNonce consumes a rotating token nonce: it is single-use, expires
// after NonceTTL, and only the verifier of the flow's challenge redeems it.
// It returns the user to start a session for, the account the sign-in went
// through, and the notice of a link by email when the sign-in was one.
func (f *Flow) RedeemNonce(ctx context.Context, nonce, verifier string) (u *store.User, accountID string, linked *LinkNotice, err error) {
	rec, err := f.takeBound(ctx, nonceKind, nonce, verifier, ErrInvalidNonce)
	if err != nil {
		return nil, "", nil, err
	}
	u, err = f.Store.User(ctx, rec.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil, ErrInvalidNonce
	}
	return u, rec.AccountID, rec.Linked, err
}

// IssueSignInNonce mints the nonce a native app puts in its request to a
// provider's native SDK (Sign in with Apple, Google Sign-In), bound to the
// S256 challenge of a verifier only the app knows. The ID token that comes
// back must carry it; TakeSignInNonce consumes it.
func (f *Flow) IssueSignInNonce(ctx context.Context, challenge string) (nonce string, expires time.Time, err error) {
	if !validToken(challenge) {
		return "", time.Time{}, errNativeChallenge
	}
	if nonce, err = f.putBound(ctx, signInNonceKind, nonceRecord{Challenge: challenge}, SignInNonceTTL); err != nil {
		return "", time.Time{}, err
	}
	return nonce, time.Now().Add(SignInNonceTTL), nil
}

// putBound mints a nonce of kind for rec, redeemable for ttl.
func (f *Flow) putBound(ctx context.Context, kind string, rec nonceRecord, ttl time.Duration) (string, error) {
	nonce := randomString()
	data, _ := json.Marshal(rec)
	if err := f.Store.PutEphemeral(ctx, kind, nonce, data, ttl); err != nil {
		return "", fmt.Errorf("saving %s: %w", kind, err)
	}
	return nonce, nil
}

// TakeSignInNonce consumes a sign-in nonce: it must be one IssueSignInNonce
// minted, unused, younger than SignInNonceTTL, and redeemed with the
// verifier of its challenge. It is gone afterwards whatever the outcome, so
// the ID token carrying it signs in at most once.
func (f *Flow) TakeSignInNonce(ctx context.Context, nonce, verifier string) error {
	_, err := f.takeBound(ctx, signInNonceKind, nonce, verifier, ErrInvalidSignInNonce)
	return err
}

// takeBound consumes an app-bound nonce of kind and checks the verifier
// against its challenge; every failure is invalid, the same for all.
func (f *Flow) takeBound(ctx context.Context, kind, nonce, verifier string, invalid *Error) (*nonceRecord, error) {
	if !validToken(nonce) || len(verifier) < 43 || len(verifier) > 128 {
		return nil, invalid
	}
	data, err := f.Store.TakeEphemeral(ctx, kind, nonce)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalid
	}
	if err != nil {
		return nil, fmt.Errorf("reading nonce: %w", err)
	}
	var rec nonceRecord
	if json.Unmarshal(data, &rec) != nil || !equalBytes([]byte(s256(verifier)), []byte(rec.Challenge)) {
		return nil, invalid
	}
	return &rec, nil
}
