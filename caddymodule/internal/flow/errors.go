package flow

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Error is a flow failure: an HTTP status, a short reason for logs and
// metrics, and a message fit for the person signing in. Err keeps the detail
// for the log; it never carries a code, token, state or verifier.
type Error struct {
	Status  int
	Reason  string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// Reasons, stable for logs and metrics.
const (
	ReasonInvalidState = "invalid_state"
	ReasonDenied       = "provider_denied"
	ReasonUnavailable  = "provider_unavailable"
	ReasonRejected     = "provider_rejected"
	// ReasonTooLarge is a sign-in refused because the provider sent an
	// identity or a token longer than the gateway keeps.
	ReasonTooLarge        = "provider_data_too_large"
	ReasonSignInDisabled  = "sign_in_disabled"
	ReasonUnknownProvider = "unknown_provider"
)

// ErrInvalidState is the answer to every callback whose state is missing,
// forged, replayed, expired or from another browser. They look alike on
// purpose: telling them apart would help an attacker, not the person.
var ErrInvalidState = &Error{
	Status:  http.StatusBadRequest,
	Reason:  ReasonInvalidState,
	Message: "This sign-in link is invalid or has expired. Please start again.",
}

// UnknownProvider is the error for a provider name that is not configured.
func UnknownProvider(name string) *Error {
	return &Error{Status: http.StatusNotFound, Reason: ReasonUnknownProvider,
		Message: "There is no sign-in provider with that name."}
}

func errSignInDisabled(p *provider.Provider) *Error {
	return &Error{Status: http.StatusForbidden, Reason: ReasonSignInDisabled,
		Message: fmt.Sprintf("%s can't be used to sign in. Sign in another way, then connect %s from your account page.", p.DisplayName(), p.DisplayName())}
}

func denied(p *provider.Provider, code string) *Error {
	msg := fmt.Sprintf("%s did not complete the sign-in. Please try again.", p.DisplayName())
	if code == "access_denied" {
		msg = fmt.Sprintf("Sign-in with %s was cancelled.", p.DisplayName())
	}
	return &Error{Status: http.StatusForbidden, Reason: ReasonDenied, Message: msg,
		Err: fmt.Errorf("provider %s answered error %q", p.Name(), code)}
}

func unavailable(p *provider.Provider, err error) *Error {
	var tl *provider.TooLargeError
	if errors.As(err, &tl) {
		return &Error{Status: http.StatusUnprocessableEntity, Reason: ReasonTooLarge,
			Message: fmt.Sprintf("Your %s account's %s is longer than this site accepts (%d bytes; at most %d). Sign in another way.",
				p.DisplayName(), strings.ReplaceAll(tl.Field, "_", " "), tl.Length, tl.Max),
			Err: err}
	}
	if errors.Is(err, provider.ErrRejected) {
		return &Error{Status: http.StatusBadGateway, Reason: ReasonRejected,
			Message: fmt.Sprintf("The answer from %s could not be verified. Please try again.", p.DisplayName()),
			Err:     err}
	}
	return &Error{Status: http.StatusBadGateway, Reason: ReasonUnavailable,
		Message: fmt.Sprintf("%s is not reachable right now. Please try again in a moment.", p.DisplayName()),
		Err:     err}
}

var (
	errNeedsSession = &Error{Status: http.StatusUnauthorized, Reason: "no_session",
		Message: "Sign in first, then connect more accounts from your account page."}
	errSessionEnded = &Error{Status: http.StatusUnauthorized, Reason: "session_ended",
		Message: "Your session ended while you were away. Sign in again, then try once more."}
	errNoSuchAccount = &Error{Status: http.StatusNotFound, Reason: "no_such_account",
		Message: "That connected account does not exist (any more)."}
	errUserGone = &Error{Status: http.StatusConflict, Reason: "user_deleted",
		Message: "Your account was deleted meanwhile. Please sign in again."}
	errOtherAccount = &Error{Status: http.StatusConflict, Reason: "other_account",
		Message: "You came back with a different account than the one this was for. Nothing was changed."}
)

// ReasonNotAdmitted is the reason of a sign-in that allow_emails and
// allow_groups refused.
const ReasonNotAdmitted = "not_admitted"

// errNotAdmitted refuses a sign-in by allow_emails and allow_groups. It
// names the account's own address, which the person knows, and never the
// rules.
func errNotAdmitted(p *provider.Provider, acc store.ExternalAccount) *Error {
	msg := fmt.Sprintf("This site admits only certain people, and your %s account is not one of them. Sign in with another account.", p.DisplayName())
	if acc.Email != "" && acc.EmailVerified {
		msg = fmt.Sprintf("This site admits only certain people, and %s (your %s account) is not one of them. Sign in with another account.", acc.Email, p.DisplayName())
	}
	return &Error{Status: http.StatusForbidden, Reason: ReasonNotAdmitted, Message: msg}
}

// ReasonEmailHeld is the reason of a first sign-in refused because its
// verified address belongs to another user whom a provider trusted for
// linking vouched for, while this provider is not trusted for it.
const ReasonEmailHeld = "email_held"

// errEmailHeld refuses such a sign-in. It names the person's own address
// and provider, and tells them how to link: sign in to that account first
// (which proves it is theirs), then connect this provider to it.
func errEmailHeld(p *provider.Provider, acc store.ExternalAccount) *Error {
	return &Error{Status: http.StatusConflict, Reason: ReasonEmailHeld,
		Message: fmt.Sprintf("An account here already uses %s. If it is yours, sign in to it the way you did before, "+
			"then connect %s from its account page. Nothing was created.", acc.Email, p.DisplayName())}
}

func errIdentityTaken(p *provider.Provider) *Error {
	return &Error{Status: http.StatusConflict, Reason: "identity_taken",
		Message: fmt.Sprintf("This %s account is already connected to another user. Nothing was changed: sign in with it to use that user, or disconnect it there first.", p.DisplayName())}
}

var (
	errNativeRedirect = &Error{Status: http.StatusBadRequest, Reason: "redirect_url_not_allowed",
		Message: "This app's redirect URL is not on the allowlist. Ask its developer to register it."}
	errNativeChallenge = &Error{Status: http.StatusBadRequest, Reason: "invalid_code_challenge",
		Message: "The app did not send a valid code_challenge (S256, 43 characters)."}
	// ErrInvalidNonce answers a rotating token nonce that is unknown, used,
	// expired, or redeemed with the wrong verifier.
	ErrInvalidNonce = &Error{Status: http.StatusBadRequest, Reason: "invalid_rotating_token_nonce",
		Message: "The rotating token nonce is invalid, expired or already used."}
	// ErrInvalidSignInNonce answers a native sign-in whose nonce the gateway
	// did not issue, or that is used, expired, or redeemed with the wrong
	// verifier.
	ErrInvalidSignInNonce = &Error{Status: http.StatusBadRequest, Reason: "invalid_nonce",
		Message: "The nonce is invalid, expired or already used. Get a new one from /native/nonce and sign in again."}
)

// Reasons of a sign-in refused because the backend API banned or locked
// the user (the code of the JSON answer clients get).
const (
	ReasonUserBanned = "user_banned"
	ReasonUserLocked = "user_locked"
)

var (
	errUserBanned = &Error{Status: http.StatusForbidden, Reason: ReasonUserBanned,
		Message: "This account has been suspended, so it cannot sign in. If you think this is a mistake, contact the site's administrators."}
	errUserLocked = &Error{Status: http.StatusForbidden, Reason: ReasonUserLocked,
		Message: "This account is locked, so it cannot sign in until the site's administrators unlock it."}
)

// Refused returns the Error of a sign-in or session refused because the
// user is banned or locked (store.ErrUserBanned, store.ErrUserLocked), or
// nil for any other err.
func Refused(err error) *Error {
	switch {
	case errors.Is(err, store.ErrUserBanned):
		return errUserBanned
	case errors.Is(err, store.ErrUserLocked):
		return errUserLocked
	}
	return nil
}
