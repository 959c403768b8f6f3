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

const nonceKind = "nonce"

// nonceRecord binds a rotating token nonce to the user it signs in and to
// the app's challenge from the flow that minted it.
type nonceRecord struct {
	UserID    string `json:"user_id"`
	Challenge string `json:"challenge"`
}

// nativeReturn mints the rotating token nonce of a finished native sign-in
// and returns the app's redirect URL carrying it. The allowlist is checked
// again: a URL removed meanwhile never receives a nonce.
func (f *Flow) nativeReturn(ctx context.Context, n *Native, userID string) (string, error) {
	if f.NativeAllowed == nil || !f.NativeAllowed(ctx, n.RedirectURL) {
		return "", errNativeRedirect
	}
	u, err := url.Parse(n.RedirectURL)
	if err != nil {
		return "", errNativeRedirect
	}
	nonce := randomString()
	data, _ := json.Marshal(nonceRecord{UserID: userID, Challenge: n.Challenge})
	if err := f.Store.PutEphemeral(ctx, nonceKind, nonce, data, NonceTTL); err != nil {
		return "", fmt.Errorf("saving rotating token nonce: %w", err)
	}
	q := u.Query()
	q.Set("rotating_token_nonce", nonce)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// RedeemNonce consumes a rotating token nonce: it is single-use, expires
// after NonceTTL, and only the verifier of the flow's challenge redeems it.
// It returns the user to start a session for.
func (f *Flow) RedeemNonce(ctx context.Context, nonce, verifier string) (*store.User, error) {
	if !validToken(nonce) || len(verifier) < 43 || len(verifier) > 128 {
		return nil, ErrInvalidNonce
	}
	data, err := f.Store.TakeEphemeral(ctx, nonceKind, nonce)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidNonce
	}
	if err != nil {
		return nil, fmt.Errorf("reading nonce: %w", err)
	}
	var rec nonceRecord
	if json.Unmarshal(data, &rec) != nil || !equalBytes([]byte(s256(verifier)), []byte(rec.Challenge)) {
		return nil, ErrInvalidNonce
	}
	u, err := f.Store.User(ctx, rec.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidNonce
	}
	return u, err
}
