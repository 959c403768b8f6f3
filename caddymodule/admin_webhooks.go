package caddymodule

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

// replayWebhook serves POST /socialgate/webhooks/{name}/replay for
// `socialgate webhook-replay`: as the backend API's replay, from
// ?since=<Unix ms> or ?event_id=<evt_…>, through the dispatcher of the
// store's serving configuration.
func replayWebhook(w http.ResponseWriter, r *http.Request, open *openStore, name string) error {
	q := r.URL.Query()
	since, eventID := q.Get("since"), q.Get("event_id")
	var from time.Time
	switch {
	case (since == "") == (eventID == ""):
		return adminErr(http.StatusBadRequest, "give exactly one of since (Unix milliseconds) and event_id")
	case since != "":
		ms, err := strconv.ParseInt(since, 10, 64)
		if err != nil {
			return adminErr(http.StatusBadRequest, "since %q is not Unix milliseconds", since)
		}
		from = time.UnixMilli(ms)
	default:
		var ok bool
		if from, ok = store.EventTime(eventID); !ok {
			return adminErr(http.StatusBadRequest, "event_id %q is not an event id (evt_…)", eventID)
		}
	}
	d := dispatcherOf(open)
	if d == nil {
		return adminErr(http.StatusNotFound, "there is no webhook endpoint %s: the running configuration has no webhooks", name)
	}
	var nr *webhook.NotRetainedError
	switch err := d.Replay(r.Context(), name, from); {
	case errors.Is(err, webhook.ErrUnknownEndpoint):
		return adminErr(http.StatusNotFound, "there is no webhook endpoint %s in the running configuration", name)
	case errors.As(err, &nr):
		return adminErr(http.StatusUnprocessableEntity, "%v", err)
	case errors.Is(err, webhook.ErrFutureStart):
		return adminErr(http.StatusBadRequest, "%v", err)
	case err != nil:
		return adminErr(http.StatusInternalServerError, "%v", err)
	}
	return adminJSON(w, map[string]any{"object": "webhook_replay", "endpoint": name, "since": from.UnixMilli()})
}

// dispatcherOf returns the webhook dispatcher of a pooled store, or nil.
func dispatcherOf(open *openStore) *webhook.Dispatcher {
	var d *webhook.Dispatcher
	dispatchers.Range(func(key, value any) bool {
		if key == open.key {
			d = value.(pooledDispatcher).Dispatcher
			return false
		}
		return true
	})
	return d
}
