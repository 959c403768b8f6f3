package api

import (
	"net/http"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

// Event is the body of a webhook delivery, Clerk's envelope: the type, the
// time of the change (Unix milliseconds), the instance (store.InstanceID)
// and the object it is about, as the change left it; event_attributes has
// Clerk's shape, with no request known. user.deleted carries {object, id,
// deleted} as Clerk's does; external_account objects carry their user_id.
func Event(e *store.Event, instanceID string) map[string]any {
	var data map[string]any
	switch {
	case e.Type == store.EventUserDeleted && e.User != nil:
		data = Deleted("user", e.User.ID)
	case e.User != nil:
		data = User(e.User, e.Accounts)
	case e.Account != nil:
		data = ExternalAccount(nil, e.Account)
	case e.Session != nil:
		status := map[string]string{store.EventSessionEnded: "ended", store.EventSessionRevoked: "revoked"}[e.Type]
		if status == "" {
			status = "active"
		}
		data = Session(e.Session, status)
	default:
		data = map[string]any{}
	}
	return map[string]any{"object": "event", "type": e.Type, "timestamp": e.CreatedAt.UnixMilli(), "data": data,
		"instance_id": instanceID, "event_attributes": map[string]any{"http_request": map[string]any{"client_ip": "", "user_agent": ""}}}
}

// GET /webhooks: each configured endpoint and its delivery state.
func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request) {
	statuses, err := a.ops.Webhooks(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := []map[string]any{}
	for _, s := range statuses {
		items = append(items, webhookEndpoint(&s))
	}
	writeJSON(w, http.StatusOK, items)
}

// POST /webhooks/{name}/replay with {"since": <Unix ms>} or {"event_id":
// "evt_…"}: the endpoint gets again, in order, every event it wants from
// that point on (see ops.Service.ReplayWebhook). 202: the next delivery
// round carries it out.
func (a *API) replayWebhook(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Since   *int64 `json:"since"`
		EventID string `json:"event_id"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	start := ops.ReplayStart{EventID: in.EventID}
	if in.Since != nil {
		since := time.UnixMilli(*in.Since)
		start.Since = &since
	}
	name := r.PathValue("name")
	from, err := a.ops.ReplayWebhook(r.Context(), name, start)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"object": "webhook_replay", "endpoint": name, "since": from.UnixMilli()})
}

// replayableFrom is the earliest time a replay can start from, in Unix
// milliseconds, or null when the endpoint keeps no events.
func replayableFrom(retain time.Duration, earliest time.Time) any {
	if retain == 0 {
		return nil
	}
	return earliest.UnixMilli()
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
		"last_event_id":    lastEventID(s.Cursor),
		"replayable_from":  replayableFrom(s.Retain, s.ReplayableFrom),
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

// lastEventID is the endpoint's cursor when it is an event's id; after a
// replay, until the first replayed event is done with, it is a position
// between events, shown as null.
func lastEventID(cursor string) any {
	if _, ok := store.EventTime(cursor); !ok {
		return nil
	}
	return cursor
}
