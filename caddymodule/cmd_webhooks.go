package caddymodule

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "webhook-replay",
		Usage: "[--admin <addr>] [--storage <dir>] (--since <duration|time> | --event <evt_…>) <endpoint>",
		Short: "Sends a webhook endpoint its events again",
		Long: `
Moves a webhook endpoint's position in the event outbox back: the running
gateway sends it again, in order, every event it wants from --since (a
duration ago, like 2h, or an RFC 3339 time) or from --event (an event id,
evt_…, from the API's recent_failures), then the events after them. Each
keeps its webhook-id. Only events within the endpoint's retain (default
24h) can be replayed.

The running gateway holds the webhook configuration, so this command always
asks it, through Caddy's admin API at --admin (default localhost:2019);
--storage names the store when the gateway has several. Exit code 1 when
the running configuration has no such endpoint, 2 for anything else.`,
		CobraFunc: func(cmd *cobra.Command) {
			storageFlag(cmd)
			cmd.Flags().String("since", "", "Replay the events from this long ago (2h) or from this time (RFC 3339)")
			cmd.Flags().String("event", "", "Replay from this event (evt_…)")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdWebhookReplay)
		},
	})
}

func cmdWebhookReplay(fl caddycmd.Flags) (int, error) {
	name, err := idArg(fl, "webhook endpoint name")
	if err != nil {
		return exitFailed, err
	}
	q := url.Values{}
	since, event := fl.String("since"), fl.String("event")
	switch {
	case (since == "") == (event == ""):
		return exitFailed, errors.New("give exactly one of --since and --event")
	case event != "":
		if _, ok := store.EventTime(event); !ok {
			return exitFailed, fmt.Errorf("--event %s is not an event id (evt_…)", event)
		}
		q.Set("event_id", event)
	default:
		from, err := replayStart(since, time.Now())
		if err != nil {
			return exitFailed, err
		}
		q.Set("since", strconv.FormatInt(from.UnixMilli(), 10))
	}
	c := &adminClient{addr: fl.String("admin")}
	if fl.Changed("storage") {
		c.storage = absDir(fl.String("storage"))
	}
	var out map[string]any
	if err := c.getJSON("POST /webhooks/"+url.PathEscape(name)+"/replay", q, &out); err != nil {
		return c.fail(err)
	}
	ms, _ := out["since"].(float64)
	fmt.Printf("webhook %s: the events from %s on are being sent again\n", name, time.UnixMilli(int64(ms)).UTC().Format(time.RFC3339))
	return exitOK, nil
}

// replayStart reads --since: a duration before now, or an RFC 3339 time.
func replayStart(since string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(since); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, since); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %s is neither a duration (2h) nor an RFC 3339 time (2026-11-27T09:00:00Z)", since)
}
