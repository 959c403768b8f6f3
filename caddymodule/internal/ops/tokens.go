package ops

import (
	"context"
	"errors"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// ProviderTokens returns a page of a user's accounts at a configured
// provider (by name; another is a *NotFoundError), each with a fresh
// access token, and how many there are. Every token handed out is one audit entry
// naming the actor of ctx (WithActor); when one token cannot be had
// (*AccountError: ErrNeedsReauthorization, ErrProviderUnavailable) none is
// handed out and nothing is audited.
func (s *Service) ProviderTokens(ctx context.Context, userID, provider string, p Page) ([]*store.ExternalAccount, int, error) {
	if err := p.Check(); err != nil {
		return nil, 0, err
	}
	if s.o.Tokens == nil {
		return nil, 0, errors.New("provider tokens cannot be read here")
	}
	if !s.HasProvider(provider) {
		return nil, 0, &NotFoundError{Kind: KindProvider, ID: provider}
	}
	user, err := s.User(ctx, userID)
	if err != nil {
		return nil, 0, err
	}
	var mine []*store.ExternalAccount
	for _, a := range user.Accounts {
		if a.Provider == provider {
			mine = append(mine, a)
		}
	}
	from, to := p.window(len(mine))
	fresh := make([]*store.ExternalAccount, 0, to-from)
	for _, a := range mine[from:to] {
		f, err := s.o.Tokens.Fresh(ctx, a)
		if errors.Is(err, ErrNeedsReauthorization) || errors.Is(err, ErrProviderUnavailable) {
			return nil, 0, &AccountError{AccountID: a.ID, Provider: provider, Err: err}
		}
		if err != nil {
			return nil, 0, err
		}
		fresh = append(fresh, f)
	}
	for _, a := range fresh {
		s.record(ctx, audit.Entry{Action: audit.ActionReadToken, UserID: userID, Provider: a.Provider, ExternalAccountID: a.ID})
	}
	return fresh, len(mine), nil
}
