package ops

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

// Webhooks returns each configured webhook endpoint's delivery state; none
// when no webhooks are configured.
func (s *Service) Webhooks(ctx context.Context) ([]webhook.Status, error) {
	if s.o.Webhooks == nil {
		return nil, nil
	}
	return s.o.Webhooks.Status(ctx)
}

// ReplayStart is where a webhook replay starts: exactly one of Since and
// EventID (an event's id, evt_…, from the event on).
type ReplayStart struct {
	Since   *time.Time
	EventID string
}

// NotRetainedError is ReplayWebhook's error for a start earlier than the
// endpoint keeps events.
type NotRetainedError = webhook.NotRetainedError

// ReplayWebhook makes an endpoint get again, in order, every event it wants
// from start on (see webhook.Dispatcher.Replay), and returns the time it
// starts from. The endpoint's next delivery round carries it out.
func (s *Service) ReplayWebhook(ctx context.Context, endpoint string, start ReplayStart) (time.Time, error) {
	var from time.Time
	switch {
	case (start.Since != nil) == (start.EventID != ""):
		return from, &ParamError{Param: "since", Kind: ParamMissing, Message: "give exactly one of since (Unix milliseconds) and event_id"}
	case start.Since != nil:
		from = *start.Since
	default:
		var ok bool
		if from, ok = store.EventTime(start.EventID); !ok {
			return from, &ParamError{Param: "event_id", Kind: ParamFormat, Message: "event_id is not an event id (evt_…)"}
		}
	}
	err := webhook.ErrUnknownEndpoint
	if s.o.Webhooks != nil {
		err = s.o.Webhooks.Replay(ctx, endpoint, from)
	}
	switch {
	case errors.Is(err, webhook.ErrUnknownEndpoint):
		return from, &NotFoundError{Kind: KindWebhook, ID: endpoint}
	case errors.Is(err, webhook.ErrFutureStart):
		return from, &ParamError{Param: "since", Kind: ParamValue, Message: err.Error()}
	case err != nil:
		return from, err
	}
	s.record(ctx, audit.Entry{Action: audit.ActionWebhookReplay, Target: endpoint})
	s.o.Logger.Info("webhook replay requested", zap.String("endpoint", endpoint), zap.Time("from", from))
	return from, nil
}

// ProviderState is a configured provider and whether it answers now.
type ProviderState struct {
	Name, DisplayName string
	SignIn            bool
	// Unreachable is why the provider did not answer; nil when it did.
	Unreachable error
}

// Providers reports each configured provider, in the configured order,
// checked concurrently (each bounded by the provider client's timeout).
func (s *Service) Providers(ctx context.Context) []ProviderState {
	out := make([]ProviderState, len(s.o.Providers))
	var wg sync.WaitGroup
	for i, p := range s.o.Providers {
		wg.Go(func() {
			out[i] = ProviderState{Name: p.Name(), DisplayName: p.DisplayName(), SignIn: p.SignIn(), Unreachable: p.Reachable(ctx)}
		})
	}
	wg.Wait()
	return out
}
