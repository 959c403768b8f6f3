package caddymodule_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/internal/testkit"
)

func TestWebhookReplayCommand(t *testing.T) {
	bin := cli(testkit.Socialgate(t))
	h := newHookReceiver(t)
	h.setDown(true)
	recordSecret(hookSecret)
	dir := filepath.Join(t.TempDir(), "socialgate")
	gw := startGateway(t, string(bin), dir, true, fmt.Sprintf("webhook app %s/hooks {\n\t\t\tsecret %s\n\t\t\tevents user.created\n\t\t\tretries 100ms\n\t\t}", h.srv.URL, hookSecret))
	run := func(args ...string) result { return bin.run(t, append(args, "--admin", gw.admin)...) }

	newBrowser(t).signInDev(gw.site, "/", ada)
	// Both attempts answered 503 (the answer is decided as each arrives):
	// the second gives the event up.
	waitFor(t, "user.created to be tried twice", func() bool { return len(h.all()) >= 2 })
	givenUp := h.all()[0].ID
	h.setDown(false)

	run("webhook-replay", "--event", givenUp, "app").want(t, 0, "webhook app: the events from ")
	waitFor(t, "the replayed event", func() bool { return len(h.delivered()) >= 1 })
	if got := h.delivered()[0]; got.ID != givenUp || got.Verified != nil {
		t.Fatalf("replayed %s (%v), want %s, signed", got.ID, got.Verified, givenUp)
	}
	run("webhook-replay", "--since", "1h", "app").want(t, 0, "webhook app: the events from ")
	waitFor(t, "the second replay", func() bool { return len(h.delivered()) >= 2 })
	if ids := []string{h.delivered()[0].ID, h.delivered()[1].ID}; !slices.Equal(ids, []string{givenUp, givenUp}) {
		t.Errorf("deliveries %v, want the given-up event twice", ids)
	}

	run("webhook-replay", "--since", "1h", "other").wantError(t, 1, "there is no webhook endpoint other in the running configuration")
	run("webhook-replay", "--since", "48h", "app").wantError(t, 2, "webhook app keeps events for 24h0m0s: replay from ")
	run("webhook-replay", "--since", "yesterday", "app").wantError(t, 2, "--since yesterday is neither a duration")
	run("webhook-replay", "--event", "usr_1", "app").wantError(t, 2, "--event usr_1 is not an event id")
	run("webhook-replay", "app").wantError(t, 2, "give exactly one of --since and --event")
	if r := run("webhook-replay", "--since", "1h", "app"); strings.Contains(r.stdout+r.stderr, hookSecret) {
		t.Error("the webhook secret was printed")
	}
}
