package ops

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// RedirectURLs returns a page of the native redirect URLs, oldest first,
// and how many there are.
func (s *Service) RedirectURLs(ctx context.Context, p Page) ([]*store.RedirectURL, int, error) {
	if err := p.Check(); err != nil {
		return nil, 0, err
	}
	return s.o.Store.RedirectURLs(ctx, store.RedirectURLQuery{Limit: p.Limit, Offset: p.Offset})
}

// CreateRedirectURL records a native redirect URL (see
// redirect.ParseNativeRedirect for what is refused, as a *ParamError). A
// URL recorded already answers its record.
func (s *Service) CreateRedirectURL(ctx context.Context, url string) (*store.RedirectURL, error) {
	if _, err := redirect.ParseNativeRedirect(url); err != nil {
		return nil, &ParamError{Param: "url", Kind: ParamFormat, Message: err.Error()}
	}
	ru, err := s.o.Store.CreateRedirectURL(ctx, url)
	if err != nil && !errors.Is(err, store.ErrExists) {
		return nil, err
	}
	s.record(ctx, audit.Entry{Action: audit.ActionRedirectURLCreate, Target: ru.ID})
	s.o.Logger.Info("redirect URL added", zap.String("redirect_url_id", ru.ID))
	return ru, nil
}

// RedirectURL returns one redirect URL.
func (s *Service) RedirectURL(ctx context.Context, id string) (*store.RedirectURL, error) {
	ru, err := s.o.Store.RedirectURL(ctx, id)
	if err != nil {
		return nil, notFound(err, &NotFoundError{Kind: KindRedirectURL, ID: id})
	}
	return ru, nil
}

// DeleteRedirectURL removes one redirect URL.
func (s *Service) DeleteRedirectURL(ctx context.Context, id string) error {
	if err := s.o.Store.DeleteRedirectURL(ctx, id); err != nil {
		return notFound(err, &NotFoundError{Kind: KindRedirectURL, ID: id})
	}
	s.record(ctx, audit.Entry{Action: audit.ActionRedirectURLDelete, Target: id})
	s.o.Logger.Info("redirect URL deleted", zap.String("redirect_url_id", id))
	return nil
}
