package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
)

// Session is a signed-in browser or app. Its id looks like sess_…. The user's
// primary (verified) email and name are copied in at sign-in so the request
// path needs one read. The id names the session and is not a credential
// (the cookie or token, the id sealed under cookie_keys, is): it goes
// upstream (X-Auth-Session-Id, the identity token's sid), into logs and
// placeholders, and through the admin and backend APIs.
type Session struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	Email  string `json:"email,omitempty"`
	// EmailVerified says that Email is a verified address (User.PrimaryEmail).
	// Sessions stored before it existed may carry an unverified Email
	// without it: VerifiedEmail ignores theirs.
	EmailVerified bool   `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
	// Groups are the user's groups when the session began, each as
	// provider:group (corp:admins): a new sign-in or link, which starts a
	// new session, brings them up to date.
	Groups    []string  `json:"groups,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the session ends: with an idle timeout, the last
	// activity plus the timeout, never past AbandonAt.
	ExpiresAt time.Time `json:"expires_at"`
	// AbandonAt is the session's absolute end, which no activity moves;
	// zero for sessions from before it was recorded (their ExpiresAt is).
	AbandonAt time.Time `json:"abandon_at,omitempty"`
	// LastActiveAt is when the session was last used, recorded coarsely
	// (see TouchSessions); zero for sessions from before it was recorded.
	LastActiveAt time.Time `json:"last_active_at,omitempty"`
	// AccountID is the linked account whose sign-in started the session
	// ("" when unknown, as for sessions from before it was recorded).
	AccountID string `json:"account_id,omitempty"`
	// AuthTime is when the person last proved who they are at a provider
	// for this session: the sign-in, or a later re-authentication.
	AuthTime  time.Time `json:"auth_time,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	IP        string    `json:"ip,omitempty"`
	// ProviderSID is the provider's own session id (the sid claim of the ID
	// token of that sign-in), which a back-channel logout names.
	ProviderSID string `json:"provider_sid,omitempty"`
	// PublicMetadata is the user's, kept current by Store.UpdateUser (see
	// adoptUser): the identity token carries it.
	PublicMetadata map[string]any `json:"public_metadata,omitempty"`
	// UpdatedAt is when the session's copy of its user last changed (zero
	// until it does); a signer of tokens re-signs a session it moved.
	UpdatedAt time.Time `json:"updated_at,omitzero"`

	// validEmail is Email when CheckEmail found it a plain address, so that
	// VerifiedEmail, on every request, need not check it again.
	validEmail string
}

// CheckEmail holds Email to ValidEmail once, before the session is shared
// (the session cache calls it as it keeps one): VerifiedEmail then reads
// the answer. A later change of Email is checked again.
func (s *Session) CheckEmail() {
	if ValidEmail(s.Email) {
		s.validEmail = s.Email
	}
}

// adoptUser gives s the user's public metadata, and reports whether that
// changed s (its UpdatedAt is then now): UpdateUser brings a user's live
// sessions up to date this way.
func (s *Session) adoptUser(u *User, now time.Time) bool {
	a, _ := json.Marshal(s.PublicMetadata)
	b, _ := json.Marshal(u.PublicMetadata)
	if string(a) == string(b) {
		return false
	}
	s.PublicMetadata, s.UpdatedAt = maps.Clone(u.PublicMetadata), now
	return true
}

// VerifiedEmail returns the session's email when it is a verified address,
// else "": the only address that may stand for the user upstream (headers,
// identity token, placeholders). A session started before CleanEmail held
// may carry an address that is not a plain one: it carries none.
func (s *Session) VerifiedEmail() string {
	if s.EmailVerified && s.Email != "" && (s.Email == s.validEmail || ValidEmail(s.Email)) {
		return s.Email
	}
	return ""
}

// SessionTouch is one session's use for Store.TouchSessions: it was used at
// At, and now expires at ExpiresAt.
type SessionTouch struct {
	ID        string
	At        time.Time
	ExpiresAt time.Time
}

// Touch applies t to s, each time only forward and the expiry never past
// AbandonAt, and reports whether s changed: the rule of
// Store.TouchSessions, for every implementation.
func (s *Session) Touch(t SessionTouch) bool {
	if !s.AbandonAt.IsZero() && t.ExpiresAt.After(s.AbandonAt) {
		t.ExpiresAt = s.AbandonAt
	}
	changed := false
	if t.At.After(s.LastActiveAt) {
		s.LastActiveAt, changed = t.At, true
	}
	if t.ExpiresAt.After(s.ExpiresAt) {
		s.ExpiresAt, changed = t.ExpiresAt, true
	}
	return changed
}

// CreateSession implements Store.CreateSession. The user must exist
// (ErrNotFound otherwise) and may sign in (User.CanSignIn). An empty s.ID is
// set to a new sess_ id and a zero s.CreatedAt to now; s.ExpiresAt must be
// in the future. It records session.created.
func (r Rules) CreateSession(ctx context.Context, s *Session) error {
	if s == nil {
		return errors.New("creating session: nil session")
	}
	now := r.Backend.Now()
	if s.ID == "" {
		s.ID = NewID("sess")
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	switch {
	case !ValidID(s.ID):
		return errors.New("creating session: invalid session id")
	case !ValidID(s.UserID):
		return fmt.Errorf("creating session: user: %w", ErrNotFound)
	case !s.ExpiresAt.After(now):
		return errors.New("creating session: it expires in the past")
	}
	err := r.Backend.Update(ctx, func(tx Tx, out *Outbox) error {
		u, err := tx.ShareUser(s.UserID)
		if err != nil {
			return fmt.Errorf("user %s: %w", s.UserID, err)
		}
		if err := u.CanSignIn(); err != nil {
			return err
		}
		u.dropUnheldEmail(s)
		// A session never starts through an account its user no longer has.
		if s.AccountID != "" {
			if err := tx.ShareAccount(s.AccountID, s.UserID); err != nil {
				return fmt.Errorf("its account %s: %w", s.AccountID, err)
			}
		}
		if err := tx.InsertSession(s); err != nil {
			return err
		}
		return out.Add(Event{Type: EventSessionCreated, CreatedAt: now, Session: s})
	})
	if err != nil {
		return fmt.Errorf("creating session: %w", Redact(err, s.ID))
	}
	return nil
}

// Redact removes secret (a session or flow-state id) from err's text,
// keeping err for errors.Is: a store may quote the key when a read fails.
func Redact(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	msg := err.Error()
	quoted := strconv.Quote(secret)
	red := strings.ReplaceAll(strings.ReplaceAll(msg, secret, "[redacted]"), quoted[1:len(quoted)-1], "[redacted]")
	if red == msg {
		return err
	}
	return redactedError{msg: red, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
