package flow

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Error is a flow failure: an HTTP status, a short reason for logs and
// metrics, and a message fit for the person signing in (shown in their
// language; its String is the English of JSON answers). Err keeps the
// detail for the log; it never carries a code, token, state or verifier.
type Error struct {
	Status  int
	Reason  string
	Message i18n.Message
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
	// ReasonRefused is a sign-in whose request the provider's token
	// endpoint refused (provider.ErrRefused): most often a client id or
	// secret it does not take.
	ReasonRefused = "provider_refused"
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
	Message: i18n.M("flow.invalid_state"),
}

// UnknownProvider is the error for a provider name that is not configured.
func UnknownProvider(name string) *Error {
	return &Error{Status: http.StatusNotFound, Reason: ReasonUnknownProvider,
		Message: i18n.M("flow.unknown_provider")}
}

func errSignInDisabled(p *provider.Provider) *Error {
	return &Error{Status: http.StatusForbidden, Reason: ReasonSignInDisabled,
		Message: i18n.M("flow.sign_in_disabled", "provider", p.DisplayName())}
}

func denied(p *provider.Provider, code string) *Error {
	msg := i18n.M("flow.denied", "provider", p.DisplayName())
	if code == "access_denied" {
		msg = i18n.M("flow.cancelled", "provider", p.DisplayName())
	}
	return &Error{Status: http.StatusForbidden, Reason: ReasonDenied, Message: msg,
		Err: fmt.Errorf("provider %s answered error %q", p.Name(), code)}
}

func unavailable(p *provider.Provider, err error) *Error {
	var tl *provider.TooLargeError
	if errors.As(err, &tl) {
		return &Error{Status: http.StatusUnprocessableEntity, Reason: ReasonTooLarge,
			Message: i18n.M("flow.too_large", "provider", p.DisplayName(), "field", strings.ReplaceAll(tl.Field, "_", " "),
				"length", strconv.Itoa(tl.Length), "max", strconv.Itoa(tl.Max)),
			Err: err}
	}
	var refused *provider.RefusedError
	if errors.As(err, &refused) {
		return &Error{Status: http.StatusBadGateway, Reason: ReasonRefused,
			Message: i18n.M("flow.refused", "provider", p.DisplayName(), "code", refused.Reason()),
			Err:     err}
	}
	if errors.Is(err, provider.ErrRejected) {
		return &Error{Status: http.StatusBadGateway, Reason: ReasonRejected,
			Message: i18n.M("flow.rejected", "provider", p.DisplayName()),
			Err:     err}
	}
	return &Error{Status: http.StatusBadGateway, Reason: ReasonUnavailable,
		Message: i18n.M("flow.unavailable", "provider", p.DisplayName()),
		Err:     err}
}

var (
	errNeedsSession = &Error{Status: http.StatusUnauthorized, Reason: "no_session",
		Message: i18n.M("flow.needs_session")}
	errSessionEnded = &Error{Status: http.StatusUnauthorized, Reason: "session_ended",
		Message: i18n.M("flow.session_ended")}
	errNoSuchAccount = &Error{Status: http.StatusNotFound, Reason: "no_such_account",
		Message: i18n.M("error.no_such_account")}
	errUserGone = &Error{Status: http.StatusConflict, Reason: "user_deleted",
		Message: i18n.M("flow.user_deleted")}
	errOtherAccount = &Error{Status: http.StatusConflict, Reason: "other_account",
		Message: i18n.M("flow.other_account")}
)

// ReasonNotAdmitted is the reason of a sign-in that allow_emails and
// allow_groups refused.
const ReasonNotAdmitted = "not_admitted"

// errNotAdmitted refuses a sign-in by allow_emails and allow_groups. It
// names the account's own address, which the person knows, and never the
// rules.
func errNotAdmitted(p *provider.Provider, acc store.ExternalAccount) *Error {
	msg := i18n.M("flow.not_admitted", "provider", p.DisplayName())
	if acc.Email != "" && acc.EmailVerified {
		msg = i18n.M("flow.not_admitted_email", "email", acc.Email, "provider", p.DisplayName())
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
		Message: i18n.M("flow.email_held", "email", acc.Email, "provider", p.DisplayName())}
}

func errIdentityTaken(p *provider.Provider) *Error {
	return &Error{Status: http.StatusConflict, Reason: "identity_taken",
		Message: i18n.M("flow.identity_taken", "provider", p.DisplayName())}
}

var (
	errNativeRedirect = &Error{Status: http.StatusBadRequest, Reason: "redirect_url_not_allowed",
		Message: i18n.M("flow.redirect_url_not_allowed")}
	errNativeChallenge = &Error{Status: http.StatusBadRequest, Reason: "invalid_code_challenge",
		Message: i18n.M("flow.invalid_code_challenge")}
	// ErrInvalidNonce answers a rotating token nonce that is unknown, used,
	// expired, or redeemed with the wrong verifier.
	ErrInvalidNonce = &Error{Status: http.StatusBadRequest, Reason: "invalid_rotating_token_nonce",
		Message: i18n.M("flow.invalid_rotating_token_nonce")}
	// ErrInvalidSignInNonce answers a native sign-in whose nonce the gateway
	// did not issue, or that is used, expired, or redeemed with the wrong
	// verifier.
	ErrInvalidSignInNonce = &Error{Status: http.StatusBadRequest, Reason: "invalid_nonce",
		Message: i18n.M("flow.invalid_nonce")}
)

// Reasons of a sign-in refused because the backend API banned or locked
// the user (the code of the JSON answer clients get).
const (
	ReasonUserBanned = "user_banned"
	ReasonUserLocked = "user_locked"
)

var (
	errUserBanned = &Error{Status: http.StatusForbidden, Reason: ReasonUserBanned,
		Message: i18n.M("flow.user_banned")}
	errUserLocked = &Error{Status: http.StatusForbidden, Reason: ReasonUserLocked,
		Message: i18n.M("flow.user_locked")}
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
