package ops

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Metadata names a user's metadata objects to change; a nil field leaves
// that object as it is, a pointer to a nil or empty map clears it.
type Metadata struct {
	Public, Private, Unsafe *map[string]any
}

// UserChanges are the fields UpdateUser sets: each one that is not nil.
// The metadata objects given replace the user's whole.
type UserChanges struct {
	FirstName, LastName, Username, ExternalID *string
	Metadata
}

// CountUsers is the number of users q matches (its page is ignored).
func (s *Service) CountUsers(ctx context.Context, q store.UserQuery) (int, error) {
	if !store.ValidUserOrder(q.OrderBy) {
		return 0, errOrder
	}
	q.Limit, q.Offset = 1, 0
	_, total, err := s.o.Store.Users(ctx, q)
	return total, err
}

var errOrder = &ParamError{Param: "order_by", Kind: ParamValue,
	Message: "order_by is one of created_at, updated_at, last_sign_in_at, last_active_at, email_address, username, first_name, last_name, after + or -"}

// CreateUser creates a user without a linked account, with the addresses
// emails and the fields of c (store.NewUser tells the rules): its
// addresses count as verified, so that the first sign-in of a provider
// that asserts one as verified links to it. A field that breaks a rule is
// a *ParamError (ParamTaken for a username, external id or address another
// user holds). It records user.created and an audit entry.
func (s *Service) CreateUser(ctx context.Context, emails []string, c UserChanges) (UserAccounts, error) {
	u := &store.User{}
	c.apply(u)
	for _, e := range emails {
		u.Emails = append(u.Emails, store.EmailAddress{Email: e})
	}
	if err := s.o.Store.CreateUser(ctx, u); err != nil {
		return UserAccounts{}, userError(err)
	}
	s.audit(ctx, audit.ActionUserCreate, u.ID)
	s.o.Logger.Info("user created", zap.String("user_id", u.ID))
	return UserAccounts{User: u}, nil
}

// UpdateUser sets the fields of c that are not nil.
func (s *Service) UpdateUser(ctx context.Context, id string, c UserChanges) (UserAccounts, error) {
	return s.updateUser(ctx, id, audit.ActionUserUpdate, func(u *store.User) error {
		c.apply(u)
		return nil
	})
}

// apply sets u's fields that c gives.
func (c UserChanges) apply(u *store.User) {
	for dst, v := range map[*string]*string{&u.FirstName: c.FirstName, &u.LastName: c.LastName, &u.Username: c.Username, &u.ExternalID: c.ExternalID} {
		if v != nil {
			*dst = *v
		}
	}
	c.Metadata.replace(u)
}

// UpdateMetadata changes a user's metadata objects: with merge, each
// object given is deep-merged into the user's (store.MergeMetadata: an
// object merges key by key, a null removes the key), as Clerk's
// PATCH /users/{id}/metadata; without, each replaces the user's whole.
// Either way an object given as nil clears it, and the result is at most
// store.MaxMetadataSize bytes of JSON (else a *ParamError).
func (s *Service) UpdateMetadata(ctx context.Context, id string, m Metadata, merge bool) (UserAccounts, error) {
	return s.updateUser(ctx, id, audit.ActionUserUpdate, func(u *store.User) error {
		if !merge {
			m.replace(u)
			return nil
		}
		for dst, patch := range map[*map[string]any]*map[string]any{&u.PublicMetadata: m.Public, &u.PrivateMetadata: m.Private, &u.UnsafeMetadata: m.Unsafe} {
			switch {
			case patch == nil:
			case *patch == nil:
				*dst = nil
			default:
				*dst = store.MergeMetadata(*dst, *patch)
			}
		}
		return nil
	})
}

// SetBanned bans or unbans a user. A ban ends every session of the user at
// once and refuses every sign-in until the unban.
func (s *Service) SetBanned(ctx context.Context, id string, banned bool) (UserAccounts, error) {
	action := map[bool]string{true: audit.ActionUserBan, false: audit.ActionUserUnban}[banned]
	return s.updateUser(ctx, id, action, func(u *store.User) error {
		u.Banned = banned
		return nil
	})
}

// SetLocked locks or unlocks a user. A locked user cannot sign in until
// unlocked; its sessions go on. Locking a locked user keeps the time of
// its first lock.
func (s *Service) SetLocked(ctx context.Context, id string, locked bool) (UserAccounts, error) {
	action := map[bool]string{true: audit.ActionUserLock, false: audit.ActionUserUnlock}[locked]
	now := time.Now()
	return s.updateUser(ctx, id, action, func(u *store.User) error {
		switch {
		case !locked:
			u.LockedAt = time.Time{}
		case u.LockedAt.IsZero():
			u.LockedAt = now
		}
		return nil
	})
}

// Session returns a live session.
func (s *Service) Session(ctx context.Context, id string) (*store.Session, error) {
	sess, err := s.o.Store.Session(ctx, id)
	if err != nil {
		return nil, notFound(err, &NotFoundError{Kind: KindSession})
	}
	return sess, nil
}

// updateUser applies fn through store.Store.UpdateUser, which records
// user.updated when the user changed (and session.revoked for each session
// a ban ended; the store's cache forgets those sessions and the user's).
// A change is one audit entry of action.
func (s *Service) updateUser(ctx context.Context, id, action string, fn func(u *store.User) error) (UserAccounts, error) {
	res, err := s.o.Store.UpdateUser(ctx, id, fn)
	if err != nil {
		return UserAccounts{}, notFound(userError(err), &NotFoundError{Kind: KindUser, ID: id})
	}
	metrics.Sessions.WithLabelValues("revoked").Add(float64(len(res.RevokedSessions)))
	if res.Changed {
		s.audit(ctx, action, id)
		s.o.Logger.Info("user updated", zap.String("user_id", id), zap.String("action", action),
			zap.Int("revoked_sessions", len(res.RevokedSessions)))
	}
	return s.User(ctx, id)
}

// replace sets u's metadata objects that m gives.
func (m Metadata) replace(u *store.User) {
	for dst, v := range map[*map[string]any]*map[string]any{&u.PublicMetadata: m.Public, &u.PrivateMetadata: m.Private, &u.UnsafeMetadata: m.Unsafe} {
		if v != nil {
			*dst = *v
		}
	}
}

// userError turns the store's *store.FieldError into a *ParamError.
func userError(err error) error {
	var fe *store.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	kind := ParamFormat
	if errors.Is(err, store.ErrExists) {
		kind = ParamTaken
	}
	return &ParamError{Param: fe.Field, Kind: kind, Message: fe.Field + ": " + fe.Message}
}

// audit records a change to a user by the actor of ctx.
func (s *Service) audit(ctx context.Context, action, userID string) {
	s.record(ctx, audit.Entry{Action: action, UserID: userID})
}
