package ops

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// SearchUsers returns a page of the users that query finds, newest first,
// and how many it finds. An empty query lists every user (the stores'
// creation index). Any other query finds the users with the text at the
// start of their id, username, external id, an address, their name or a
// word of it, or a linked account's subject, in any case
// (store.Store.SearchUsers): the stores' search index serves it, so it
// stays fast on a large store. More than store.SearchCount matches are
// counted as that many, with More set.
func (s *Service) SearchUsers(ctx context.Context, query string, p Page) (store.UserMatches, error) {
	if err := p.Check(); err != nil {
		return store.UserMatches{}, err
	}
	if q := strings.TrimSpace(query); q != "" {
		return s.o.Store.SearchUsers(ctx, store.UserSearch{Prefix: q, Limit: p.Limit, Offset: p.Offset})
	}
	users, total, err := s.o.Store.Users(ctx, store.UserQuery{Limit: p.Limit, Offset: p.Offset})
	return store.UserMatches{Users: users, Total: total}, err
}

// RevokeSessions ends every live session of a user and returns how many
// it ended.
func (s *Service) RevokeSessions(ctx context.Context, userID string) (int, error) {
	sessions, err := s.o.Store.Sessions(ctx, userID)
	if err != nil {
		return 0, err
	}
	for _, sess := range sessions {
		if err := s.o.Store.RevokeSession(ctx, sess.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
		metrics.Sessions.WithLabelValues("revoked").Inc()
	}
	s.record(ctx, audit.Entry{Action: audit.ActionSessionsRevoke, UserID: userID})
	s.o.Logger.Info("sessions revoked", zap.String("user_id", userID), zap.Int("sessions", len(sessions)))
	return len(sessions), nil
}

// ErrLastIdentity refuses to unlink the only account a user can sign in
// with (DisconnectAccountKeepingSignIn).
var ErrLastIdentity = errors.New("that is the user's only account at a provider they can sign in with")

// DisconnectAccountKeepingSignIn is DisconnectAccount refusing, with
// ErrLastIdentity and nothing changed, to leave the user without an account
// at a configured provider they can sign in with.
func (s *Service) DisconnectAccountKeepingSignIn(ctx context.Context, userID, id string) (*store.ExternalAccount, []string, error) {
	return s.disconnect(ctx, userID, id, func(remaining []*store.ExternalAccount) error {
		if !s.CanSignInWithout(remaining, "") {
			return ErrLastIdentity
		}
		return nil
	})
}

// CanSignInWithout reports whether a user whose accounts are accounts keeps
// one at a configured provider they can sign in with when the account
// without is gone.
func (s *Service) CanSignInWithout(accounts []*store.ExternalAccount, without string) bool {
	for _, a := range accounts {
		if p, ok := s.providers[a.Provider]; ok && a.ID != without && p.SignIn() {
			return true
		}
	}
	return false
}

// ProviderName is a configured provider's display name, or name itself.
func (s *Service) ProviderName(name string) string {
	if p, ok := s.providers[name]; ok {
		return p.DisplayName()
	}
	return name
}

// record writes an audit entry of the actor of ctx, now (audit, for a
// change to a user, is the short form), and keeps one about a user among
// the user's latest in the store (UserAudit). The audit log is the
// record: a failure to keep the entry in the store is logged, and the
// operation goes on.
func (s *Service) record(ctx context.Context, e audit.Entry) {
	actor := ActorOf(ctx)
	e.Time, e.Actor, e.ClientIP = time.Now(), actor.ID, actor.ClientIP
	s.o.Audit.Record(e)
	if e.UserID == "" {
		return
	}
	if err := s.o.Store.AddUserAudit(context.WithoutCancel(ctx), e); err != nil {
		s.o.Logger.Warn("keeping an audit entry in the store failed", zap.String("user_id", e.UserID),
			zap.String("action", e.Action), zap.Error(err))
	}
}

// UserAudit returns up to limit of the latest audit entries about a user,
// newest first: the store keeps store.UserAuditKeep of them.
func (s *Service) UserAudit(ctx context.Context, userID string, limit int) ([]audit.Entry, error) {
	return s.o.Store.UserAudit(ctx, userID, limit)
}
