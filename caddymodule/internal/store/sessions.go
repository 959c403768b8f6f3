package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// CreateSession implements Store.CreateSession. The user must exist
// (ErrNotFound otherwise) and may sign in (User.CanSignIn). An empty s.ID is
// set to a new sess_ id and a zero s.CreatedAt to now; s.ExpiresAt must be
// in the future. It records session.created. Errors never carry the
// session id: it is the bearer secret a cookie stands for.
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
		u.DropUnheldEmail(s)
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
