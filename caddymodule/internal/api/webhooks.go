package api

import (
	"net/http"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

// Event is the body of a webhook delivery, shaped like Clerk's: the type,
// the time of the change (Unix milliseconds) and the object it is about, as
// the change left it. user.deleted carries {object, id, deleted} as Clerk's
// does; external_account objects carry their user_id.
func Event(e *store.Event) map[string]any {
	var data map[string]any
	switch {
	case e.Type == store.EventUserDeleted && e.User != nil:
		data = map[string]any{"object": "user", "id": e.User.ID, "deleted": true}
	case e.User != nil:
		data = User(e.User, e.Accounts)
	case e.Account != nil:
		data = ExternalAccount(e.Account)
		data["user_id"] = e.Account.UserID
	case e.Session != nil:
		status := map[string]string{store.EventSessionEnded: "ended", store.EventSessionRevoked: "revoked"}[e.Type]
		if status == "" {
			status = "active"
		}
		data = Session(e.Session, status)
	default:
		data = map[string]any{}
	}
	return map[string]any{"object": "event", "type": e.Type, "timestamp": e.CreatedAt.UnixMilli(), "data": data}
}

// GET /webhooks: each configured endpoint and its delivery state.
func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request) {
	items := []map[string]any{}
	if a.Webhooks != nil {
		statuses, err := a.Webhooks.Status(r.Context())
		if err != nil {
			a.internal(w, "reading webhook states", err)
			return
		}
		for _, s := range statuses {
			items = append(items, webhookEndpoint(&s))
		}
	}
	writeJSON(w, http.StatusOK, items)
}

// webhookEndpoint is an endpoint's delivery state; times are Unix
// milliseconds, or null when they never happened.
func webhookEndpoint(s *webhook.Status) map[string]any {
	failures := []map[string]any{}
	for _, f := range s.RecentFailures {
		failures = append(failures, map[string]any{
			"event_id": f.EventID, "type": f.Type, "attempts": f.Attempts, "error": f.Error, "failed_at": f.At.UnixMilli(),
		})
	}
	return map[string]any{
		"object":           "webhook_endpoint",
		"name":             s.Name,
		"url":              s.URL,
		"events":           orEmptyList(s.Events),
		"last_event_id":    s.Cursor,
		"pending_event_id": s.Pending,
		"attempts":         s.Attempts,
		"next_attempt_at":  millisOrNil(s.NextAttemptAt),
		"last_success_at":  millisOrNil(s.LastSuccessAt),
		"last_failure_at":  millisOrNil(s.LastFailureAt),
		"last_error":       s.LastError,
		"delivered":        s.Delivered,
		"failed":           s.Failed,
		"recent_failures":  failures,
	}
}

func millisOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}
