package ops

import (
	"context"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// UserAccounts is a user with its linked accounts, oldest first. The
// accounts carry their token sets: a transport shows them only through
// ProviderTokens.
type UserAccounts struct {
	User     *store.User
	Accounts []*store.ExternalAccount
}

// Users lists the users q matches (store.UserQuery: an address, a
// filter), newest first unless q orders them otherwise, with the number
// of matches. q's page must pass Page.Check, and its order
// store.ValidUserOrder.
func (s *Service) Users(ctx context.Context, q store.UserQuery) ([]UserAccounts, int, error) {
	if err := (Page{Limit: q.Limit, Offset: q.Offset}).Check(); err != nil {
		return nil, 0, err
	}
	if !store.ValidUserOrder(q.OrderBy) {
		return nil, 0, errOrder
	}
	users, total, err := s.o.Store.Users(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]UserAccounts, 0, len(users))
	for _, u := range users {
		accounts, err := s.o.Store.ExternalAccounts(ctx, u.ID)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, UserAccounts{User: u, Accounts: accounts})
	}
	return out, total, nil
}

// User returns one user with its linked accounts.
func (s *Service) User(ctx context.Context, id string) (UserAccounts, error) {
	u, err := s.o.Store.User(ctx, id)
	if err != nil {
		return UserAccounts{}, notFound(err, &NotFoundError{Kind: KindUser, ID: id})
	}
	accounts, err := s.o.Store.ExternalAccounts(ctx, id)
	if err != nil {
		return UserAccounts{}, err
	}
	return UserAccounts{User: u, Accounts: accounts}, nil
}

// DeleteUser deletes a user with its accounts and sessions in one
// transaction, and then revokes the accounts' tokens at the providers
// that can (best effort: a failure is logged). It is one audit entry.
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	accounts, err := s.o.Store.ExternalAccounts(ctx, id)
	if err != nil {
		return err
	}
	if err := s.o.Store.DeleteUser(ctx, id); err != nil {
		return notFound(err, &NotFoundError{Kind: KindUser, ID: id})
	}
	s.audit(ctx, audit.ActionUserDelete, id)
	for _, a := range accounts {
		s.revoke(ctx, a)
	}
	s.o.Logger.Info("user deleted", zap.String("user_id", id))
	return nil
}

// DisconnectAccount unlinks one account of a user in one transaction: an
// address only it vouched for becomes unverified, and the sessions signed
// in through it end (store.Store.DeleteExternalAccount). It revokes the
// account's tokens at the provider when it can. It returns the account as
// it was and the ids of the sessions that ended.
func (s *Service) DisconnectAccount(ctx context.Context, userID, id string) (*store.ExternalAccount, []string, error) {
	return s.disconnect(ctx, userID, id, nil)
}

func (s *Service) disconnect(ctx context.Context, userID, id string, check func([]*store.ExternalAccount) error) (*store.ExternalAccount, []string, error) {
	gone, ended, err := s.o.Store.DeleteExternalAccount(ctx, userID, id, check)
	if err != nil {
		return nil, nil, notFound(err, &NotFoundError{Kind: KindExternalAccount, ID: id, UserID: userID})
	}
	metrics.Sessions.WithLabelValues("revoked").Add(float64(len(ended)))
	s.revoke(ctx, gone)
	metrics.Unlinks.WithLabelValues(gone.Provider).Inc()
	s.record(ctx, audit.Entry{Action: audit.ActionAccountDisconnect, UserID: userID, Provider: gone.Provider, ExternalAccountID: id})
	s.o.Logger.Info("external account deleted", zap.String("user_id", userID), zap.String("external_account_id", id),
		zap.Int("revoked_sessions", len(ended)))
	return gone, ended, nil
}

// Sessions returns a page of a user's live sessions and how many there are.
// An unknown user has none.
func (s *Service) Sessions(ctx context.Context, userID string, p Page) ([]*store.Session, int, error) {
	if err := p.Check(); err != nil {
		return nil, 0, err
	}
	sessions, err := s.o.Store.Sessions(ctx, userID)
	if err != nil {
		return nil, 0, err
	}
	from, to := p.window(len(sessions))
	return sessions[from:to], len(sessions), nil
}

// RevokeSession ends a live session (its cookie or token stops working on
// the next request) and returns it as it was.
func (s *Service) RevokeSession(ctx context.Context, id string) (*store.Session, error) {
	sess, err := s.o.Store.Session(ctx, id)
	if err != nil {
		return nil, notFound(err, &NotFoundError{Kind: KindSession})
	}
	if err := s.o.Store.RevokeSession(ctx, id); err != nil {
		return nil, err
	}
	metrics.Sessions.WithLabelValues("revoked").Inc()
	s.record(ctx, audit.Entry{Action: audit.ActionSessionRevoke, UserID: sess.UserID})
	s.o.Logger.Info("session revoked", zap.String("user_id", sess.UserID), zap.String("session_id", id))
	return sess, nil
}

// revoke revokes an unlinked account's tokens at its provider, best effort.
func (s *Service) revoke(ctx context.Context, a *store.ExternalAccount) {
	p, ok := s.providers[a.Provider]
	if !ok || !p.CanRevoke() {
		return
	}
	if err := p.Revoke(ctx, a.Tokens.ClientID, a.Tokens.AccessToken, a.Tokens.RefreshToken); err != nil {
		s.o.Logger.Warn("revoking tokens at the provider failed", zap.String("provider", a.Provider), zap.Error(err))
	}
}
