package caddymodule_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestWebhooks_SignInAndSignOutArriveSigned(t *testing.T) {
	h := newHookReceiver(t)
	e := newEnv(t, hookOptions(h))
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	userID := e.Upstream.Last(t).Get("X-Auth-User-Id")
	sessionID := e.Upstream.Last(t).Get("X-Auth-Session-Id")

	want := []string{"user.created", "external_account.created", "session.created"}
	waitFor(t, "the sign-in's events", func() bool { return len(h.delivered()) >= len(want) })
	got := h.delivered()
	if !slices.Equal(hookTypes(got), want) {
		t.Fatalf("delivered %q, want %q", hookTypes(got), want)
	}
	for _, d := range got {
		if d.Verified != nil {
			t.Errorf("%s: %v", d.Type, d.Verified)
		}
		if !strings.HasPrefix(d.ID, "evt_") {
			t.Errorf("%s: webhook-id %q", d.Type, d.ID)
		}
	}
	if u := got[0].Data; u["object"] != "user" || u["id"] != userID {
		t.Errorf("user.created data = %v, want user %s", u, userID)
	}
	if a := got[1].Data; a["object"] != "external_account" || a["provider"] != "oauth_custom_dev" || a["user_id"] != userID {
		t.Errorf("external_account.created data = %v", a)
	}
	if s := got[2].Data; s["object"] != "session" || s["id"] != sessionID || s["status"] != "active" {
		t.Errorf("session.created data = %v, want session %s", s, sessionID)
	}

	_, page := b.get(e.Base + "/_auth/sign-out")
	token := html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))
	if resp, _ := b.post(e.Base+"/_auth/sign-out", url.Values{"csrf_token": {token}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: status %d", resp.StatusCode)
	}
	waitFor(t, "session.ended", func() bool { return len(h.delivered()) >= 4 })
	ended := h.delivered()[3]
	if ended.Type != "session.ended" || ended.Data["id"] != sessionID || ended.Data["status"] != "ended" || ended.Verified != nil {
		t.Errorf("after sign-out: %s %v (%v)", ended.Type, ended.Data, ended.Verified)
	}

	secrets.Lock()
	leaks := slices.Clone(secrets.values)
	secrets.Unlock()
	for _, d := range h.all() {
		for _, s := range append(leaks, "access_token", "refresh_token", "id_token") {
			if len(s) >= 12 && bytes.Contains(d.Body, []byte(s)) {
				t.Errorf("%s carries a secret (%.6s…)", d.Type, s)
			}
		}
	}
	st := webhookState(t, e)
	if st["name"] != "app" || st["delivered"] != 4.0 || st["failed"] != 0.0 || st["last_event_id"] != ended.ID || st["url"] != h.srv.URL+"/hooks" {
		t.Errorf("GET /webhooks = %v", st)
	}
}

func TestWebhooks_AReceiverThatIsDownGetsEverythingOnceItIsUp(t *testing.T) {
	h := newHookReceiver(t)
	h.setDown(true)
	o := hookOptions(h)
	o.Site = "handle /metrics {\n\t\tmetrics\n\t}"
	// Metrics are process-wide: an endpoint name of its own starts this
	// test's counts at zero.
	endpoint := fmt.Sprintf("outage%d", time.Now().UnixNano())
	o.Global = strings.Replace(o.Global, "webhook app ", "webhook "+endpoint+" ", 1)
	e := newEnv(t, o)
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	newBrowser(t).signInDev(e, "/", person("Grace Hopper", "grace@example.com", true))
	deliveries := func(outcome string) float64 {
		_, page := b.get(e.Base + "/metrics") // behind the gateway: a signed-in browser
		return metricValue(page, "socialgate_webhook_deliveries_total", `endpoint="`+endpoint+`",outcome="`+outcome+`"`)
	}
	waitFor(t, "three failed attempts", func() bool { return len(h.all()) >= 3 })
	waitFor(t, "socialgate_webhook_deliveries_total{outcome=failed} to count them", func() bool { return deliveries("failed") >= 3 })
	st := webhookState(t, e)
	if st["attempts"].(float64) < 1 || st["last_error"] != "the endpoint answered 503" || st["next_attempt_at"] == nil || st["delivered"] != 0.0 {
		t.Errorf("while the receiver is down, GET /webhooks = %v", st)
	}

	h.setDown(false)
	want := []string{"user.created", "external_account.created", "session.created", "user.created", "external_account.created", "session.created"}
	waitFor(t, "every event", func() bool { return len(h.delivered()) >= len(want) })
	time.Sleep(500 * time.Millisecond) // time for a duplicate to show up
	got := h.delivered()
	if !slices.Equal(hookTypes(got), want) {
		t.Fatalf("after the outage %q arrived, want %q", hookTypes(got), want)
	}
	for i, d := range got {
		if d.Verified != nil {
			t.Errorf("%s: %v", d.Type, d.Verified)
		}
		if i > 0 && d.ID <= got[i-1].ID {
			t.Errorf("%s (%s) arrived after %s (%s), out of order or twice", d.Type, d.ID, got[i-1].Type, got[i-1].ID)
		}
	}
	if firstTry := h.all()[0]; firstTry.ID != got[0].ID {
		t.Errorf("the first attempt was %s, the first delivery %s: the retried event must keep its id", firstTry.ID, got[0].ID)
	}
	waitFor(t, "socialgate_webhook_deliveries_total{outcome=delivered} to count them", func() bool { return deliveries("delivered") >= float64(len(want)) })
	if delivered := deliveries("delivered"); delivered != float64(len(want)) {
		t.Errorf("socialgate_webhook_deliveries_total{outcome=delivered} = %v, want %d", delivered, len(want))
	}
}

func TestWebhooks_AnEventSurvivesAGatewayRestartBeforeItsDelivery(t *testing.T) {
	h := newHookReceiver(t)
	h.setDown(true)
	o := hookOptions(h)
	e := newEnv(t, o)
	newBrowser(t).signInDev(e, "/", ada)
	waitFor(t, "a failed attempt", func() bool { return len(h.all()) >= 1 })
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	attempts := len(h.all())
	time.Sleep(700 * time.Millisecond)
	if n := len(h.all()); n != attempts {
		t.Fatalf("%d attempts while the gateway was stopped", n-attempts)
	}

	h.setDown(false)
	if err := e.Load(o); err != nil {
		t.Fatal(err)
	}
	want := []string{"user.created", "external_account.created", "session.created"}
	waitFor(t, "the events after the restart", func() bool { return len(h.delivered()) >= len(want) })
	time.Sleep(500 * time.Millisecond)
	if got := h.delivered(); !slices.Equal(hookTypes(got), want) {
		t.Fatalf("after the restart %q arrived, want %q once each", hookTypes(got), want)
	}
}

func TestWebhooks_ConfigErrorsNameTheProblem(t *testing.T) {
	e := newEnv(t, options{})
	good := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct{ name, global, want string }{
		{"relative URL", "webhook app /hooks {\n secret " + good + "\n }", `webhook app: "/hooks" is not an absolute http(s) URL`},
		{"no secret", "webhook app https://example.com/hooks", "webhook app: a secret is required"},
		{"secret without prefix", "webhook app https://example.com/hooks {\n secret abc\n }", "webhook app: secret 1: a secret starts with whsec_"},
		{"short secret", "webhook app https://example.com/hooks {\n secret whsec_c2hvcnQ=\n }", "webhook app: secret 1: a secret decodes to 5 bytes"},
		{"unknown event", "webhook app https://example.com/hooks {\n secret " + good + "\n events user.signed_in\n }", `webhook app: unknown event type "user.signed_in"`},
		{"bad name", "webhook a.b https://example.com/hooks {\n secret " + good + "\n }", `webhook "a.b": a name is 1 to 64 letters`},
		{"twice", "webhook app https://a.example.com {\n secret " + good + "\n }\n webhook app https://b.example.com {\n secret " + good + "\n }", "webhook app: the name is used twice"},
		{"bad retry", "webhook app https://example.com/hooks {\n secret " + good + "\n retries 5s soon\n }", `webhook app: retries: "soon" is not a positive duration`},
		{"bad retain", "webhook app https://example.com/hooks {\n secret " + good + "\n retain -1h\n }", `webhook app: retain: "-1h" is not a duration of 0 or more`},
		{"bad timeout", "webhook app https://example.com/hooks {\n secret " + good + "\n timeout 0s\n }", `webhook app: timeout: "0s" is not a positive duration`},
		{"unknown option", "webhook app https://example.com/hooks {\n secret " + good + "\n deadline 5s\n }", `unrecognized option "deadline" in webhook app`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.Load(options{Global: tc.global}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
	t.Run("secret from the environment", func(t *testing.T) {
		t.Setenv("SG_TEST_WHSEC", good)
		if err := e.Load(options{Global: "webhook app https://example.com/hooks {\n secret {env.SG_TEST_WHSEC}\n }"}); err != nil {
			t.Fatal(err)
		}
		cfg, err := caddy.ActiveContext().App("socialgate")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(mustJSON(t, cfg), good) {
			t.Fatal("the expanded secret sits in the config")
		}
	})
}

func TestWebhooks_ReloadsKeepOneDispatcherAndSendEachEventOnce(t *testing.T) {
	h := newHookReceiver(t)
	o := hookOptions(h)
	e := newEnv(t, o)
	for i := range 3 {
		newBrowser(t).signInDev(e, "/", person(fmt.Sprint("Reloaded ", i), fmt.Sprintf("r%d@example.com", i), true))
		reload := o
		reload.Global += fmt.Sprintf("\n\t\tapp_name \"Config %d\"", i)
		if err := e.Load(reload); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every event", func() bool { return len(h.delivered()) >= 9 })
	time.Sleep(500 * time.Millisecond) // time for a duplicate to show up
	got := h.delivered()
	if len(got) != 9 {
		t.Fatalf("%d deliveries for 9 events: %q", len(got), hookTypes(got))
	}
	for i, d := range got {
		if i > 0 && d.ID <= got[i-1].ID {
			t.Errorf("%s (%s) arrived after %s (%s), out of order or twice", d.Type, d.ID, got[i-1].Type, got[i-1].ID)
		}
	}
}

func TestWebhooks_AGivenUpEventComesBackWithAReplay(t *testing.T) {
	h := newHookReceiver(t)
	h.setDown(true)
	o := hookOptions(h)
	// Two quick attempts at user.created only, then it is given up.
	o.Global = strings.Replace(o.Global, hookRetries, "events user.created\n\t\t\tretries 300ms", 1)
	signedUpAfter := time.Now()
	e := newEnv(t, o)
	newBrowser(t).signInDev(e, "/", ada)
	waitFor(t, "user.created to be given up", func() bool {
		failures, _ := webhookState(t, e)["recent_failures"].([]any)
		return len(failures) == 1
	})
	st := webhookState(t, e)
	givenUp := st["recent_failures"].([]any)[0].(map[string]any)["event_id"].(string)
	attempts := h.all()
	if len(attempts) < 2 || attempts[0].ID != givenUp || st["failed"] != 1.0 {
		t.Fatalf("attempts %v, state %v", hookTypes(attempts), st)
	}
	earliest, _ := st["replayable_from"].(float64)
	if want := time.Now().Add(-24 * time.Hour).UnixMilli(); earliest < float64(want) || earliest > float64(want+2*60_000) {
		t.Errorf("replayable_from = %v, want about a day ago (the default retain), %d", st["replayable_from"], want)
	}

	h.setDown(false)
	status, out := apiPost(t, e, "/webhooks/app/replay", `{"event_id":"`+givenUp+`"}`)
	if status != http.StatusAccepted || out["object"] != "webhook_replay" || out["endpoint"] != "app" {
		t.Fatalf("replay by event id: %d %v", status, out)
	}
	waitFor(t, "the replayed event", func() bool { return len(h.delivered()) >= 1 })
	if got := h.delivered(); got[0].ID != givenUp || got[0].Type != "user.created" || got[0].Verified != nil {
		t.Fatalf("the replay delivered %s %s (%v), want %s user.created, signed", got[0].ID, got[0].Type, got[0].Verified, givenUp)
	}

	// From a time: the same event once more, and nothing else (the endpoint
	// wants user.created only).
	status, out = apiPost(t, e, "/webhooks/app/replay", fmt.Sprintf(`{"since":%d}`, signedUpAfter.UnixMilli()))
	if status != http.StatusAccepted {
		t.Fatalf("replay since a time: %d %v", status, out)
	}
	waitFor(t, "the second replay", func() bool { return len(h.delivered()) >= 2 })
	time.Sleep(500 * time.Millisecond) // time for a duplicate to show up
	if got := h.delivered(); len(got) != 2 || got[1].ID != givenUp {
		t.Fatalf("after the second replay %d deliveries (%v), want the event twice in all", len(got), hookTypes(got))
	}
	if st := webhookState(t, e); st["delivered"] != 2.0 || st["last_event_id"] == nil {
		t.Errorf("after the replays GET /webhooks = %v", st)
	}

	for _, tc := range []struct {
		path, body string
		status     int
		code       string
	}{
		{"/webhooks/other/replay", `{"event_id":"` + givenUp + `"}`, http.StatusNotFound, "resource_not_found"},
		{"/webhooks/app/replay", `{}`, http.StatusUnprocessableEntity, "form_param_missing"},
		{"/webhooks/app/replay", `{"since":1,"event_id":"` + givenUp + `"}`, http.StatusUnprocessableEntity, "form_param_missing"},
		{"/webhooks/app/replay", `{"event_id":"usr_123"}`, http.StatusUnprocessableEntity, "form_param_format_invalid"},
		{"/webhooks/app/replay", `{"since":"yesterday"}`, http.StatusUnprocessableEntity, "form_param_format_invalid"},
		{"/webhooks/app/replay", `{"since":`, http.StatusBadRequest, "invalid_request_body"},
		{"/webhooks/app/replay", `{"since":` + strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10) + `}`, http.StatusUnprocessableEntity, "form_param_value_invalid"},
		{"/webhooks/app/replay", `{"since":` + strconv.FormatInt(time.Now().Add(-48*time.Hour).UnixMilli(), 10) + `}`, http.StatusUnprocessableEntity, "webhook_events_not_retained"},
	} {
		status, out := apiPost(t, e, tc.path, tc.body)
		errs, _ := out["errors"].([]any)
		if status != tc.status || len(errs) != 1 || errs[0].(map[string]any)["code"] != tc.code {
			t.Errorf("POST %s %s: %d %v, want %d %s", tc.path, tc.body, status, out, tc.status, tc.code)
			continue
		}
		if tc.code == "webhook_events_not_retained" {
			apiErr := errs[0].(map[string]any)
			meta, _ := apiErr["meta"].(map[string]any)
			if from, _ := meta["replayable_from"].(float64); from < earliest {
				t.Errorf("not retained: meta %v, want replayable_from at or after %v", meta, earliest)
			}
			if msg, _ := apiErr["message"].(string); !strings.Contains(msg, "webhook app keeps events for 24h0m0s: replay from ") {
				t.Errorf("not retained: message %q", msg)
			}
		}
	}
}

func TestWebhooks_RetainZeroKeepsNothingToReplay(t *testing.T) {
	h := newHookReceiver(t)
	o := hookOptions(h)
	o.Global = strings.Replace(o.Global, "retries 300ms", "retain 0\n\t\t\tretries 300ms", 1)
	e := newEnv(t, o)
	if st := webhookState(t, e); st["replayable_from"] != nil {
		t.Errorf("replayable_from = %v with retain 0, want null", st["replayable_from"])
	}
	status, out := apiPost(t, e, "/webhooks/app/replay", fmt.Sprintf(`{"since":%d}`, time.Now().UnixMilli()))
	errs, _ := out["errors"].([]any)
	if status != http.StatusUnprocessableEntity || len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), "keeps no delivered events") {
		t.Errorf("replay with retain 0: %d %v", status, out)
	}
}
