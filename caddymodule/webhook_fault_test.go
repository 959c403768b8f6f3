package caddymodule_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/socialgate/socialgate/internal/testkit"
)

// onBothStores runs a scenario on Badger and on PostgreSQL; storage is the
// global option line that selects the store ("" for Badger).
func onBothStores(t *testing.T, scenario func(t *testing.T, storage string)) {
	t.Run("badger", func(t *testing.T) { scenario(t, "") })
	t.Run("postgres", func(t *testing.T) {
		scenario(t, fmt.Sprintf("storage postgres {\n\t\t\tdsn %q\n\t\t\tsecret a-shared-secret-of-the-cluster-0123456789\n\t\t}", testkit.OwnPostgres(t)))
	})
}

// inOrderOnce reports deliveries that came out of order or twice.
func inOrderOnce(t *testing.T, who string, got []hookDelivery) {
	t.Helper()
	for i, d := range got {
		if i > 0 && d.ID <= got[i-1].ID {
			t.Errorf("%s: %s (%s) arrived after %s (%s), out of order or twice", who, d.Type, d.ID, got[i-1].Type, got[i-1].ID)
		}
	}
}

// A receiver that answers each event after 4 seconds (in the field: 9)
// holds back only its own events: another endpoint gets a sign-in's events
// within its poll, not after the slow one's batch.
func TestWebhooks_ASlowReceiverDelaysNoOtherEndpoint(t *testing.T) {
	onBothStores(t, func(t *testing.T, storage string) {
		fast, slow := newHookReceiver(t), newHookReceiver(t)
		slow.setDelay(4 * time.Second)
		e := newEnv(t, options{Global: storage + webhookBlock("fast", fast, hookSecret) + webhookBlock("slow", slow, hookSecret)})
		newBrowser(t).signInDev(e, "/", ada)
		waitFor(t, "the first sign-in's events at the fast receiver", func() bool { return len(fast.delivered()) == 3 })
		waitFor(t, "a delivery in flight to the slow receiver", func() bool { return len(slow.all()) == 1 })

		signedIn := time.Now()
		newBrowser(t).signInDev(e, "/", person("Grace Hopper", "grace@example.com", true))
		waitFor(t, "the second sign-in's events at the fast receiver", func() bool { return len(fast.delivered()) == 6 })
		latency := time.Since(signedIn)
		t.Logf("the fast receiver had the second sign-in's events %v after it started; the slow one had %d of 6",
			latency.Round(time.Millisecond), len(slow.delivered()))
		if latency > 3*time.Second {
			t.Errorf("the fast receiver waited %v for the second sign-in's events, behind the slow one", latency)
		}
		inOrderOnce(t, "fast", fast.delivered())
		inOrderOnce(t, "slow", slow.delivered())
	})
}

// A reload that removes an endpoint cuts the delivery in flight to it
// short, at once (its timeout is a minute), and sends it nothing more; the
// endpoints that stay keep receiving.
func TestWebhooks_AnEndpointRemovedByAReloadStopsReceivingAtOnce(t *testing.T) {
	onBothStores(t, func(t *testing.T, storage string) {
		kept, gone := newHookReceiver(t), newHookReceiver(t)
		gone.setDelay(time.Minute)
		without := options{Global: storage + webhookBlock("kept", kept, hookSecret)}
		with := without
		with.Global += webhookBlock("gone", gone, hookSecret, "timeout 1m")
		e := newEnv(t, with)
		newBrowser(t).signInDev(e, "/", ada)
		waitFor(t, "a delivery in flight to the endpoint about to go", func() bool { return len(gone.all()) == 1 })

		reloading := time.Now()
		if err := e.Load(without); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the delivery in flight to be cut short", func() bool { return gone.all()[0].Cut })
		t.Logf("the removed endpoint's delivery was cut %v after the reload began", gone.all()[0].Ended.Sub(reloading).Round(time.Millisecond))
		if cut := gone.all()[0].Ended.Sub(reloading); cut > 2*time.Second {
			t.Errorf("the removed endpoint's delivery went on %v after the reload began", cut)
		}
		newBrowser(t).signInDev(e, "/", person("Grace Hopper", "grace@example.com", true))
		waitFor(t, "both sign-ins' events at the kept receiver", func() bool { return len(kept.delivered()) == 6 })
		time.Sleep(500 * time.Millisecond) // time for a late delivery to show up
		if n := len(gone.all()); n != 1 {
			t.Errorf("the removed endpoint got %d requests, want only the one cut short", n)
		}
		inOrderOnce(t, "kept", kept.delivered())
	})
}

// A reload that changes an endpoint's secret signs every delivery from
// then on with the new secret only, including the rest of a backlog that
// was being delivered.
func TestWebhooks_AChangedSecretSignsTheNextDelivery(t *testing.T) {
	onBothStores(t, func(t *testing.T, storage string) {
		h := newHookReceiver(t)
		h.setDelay(300 * time.Millisecond)
		rotated := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("n3w!"), 8))
		e := newEnv(t, options{Global: storage + webhookBlock("app", h, hookSecret)})
		for i := range 3 {
			newBrowser(t).signInDev(e, "/", person(fmt.Sprint("Backlog ", i), fmt.Sprintf("b%d@example.com", i), true))
		}
		waitFor(t, "the first delivery", func() bool { return len(h.delivered()) >= 1 })
		if err := e.Load(options{Global: storage + webhookBlock("app", h, rotated)}); err != nil {
			t.Fatal(err)
		}
		reloaded := time.Now()
		waitFor(t, "the 9 events", func() bool { return len(h.delivered()) == 9 })
		after := 0
		for _, d := range h.all() {
			if d.Arrived.Before(reloaded) {
				continue
			}
			after++
			if verifyHook(rotated, d.Header, d.Body) != nil || verifyHook(hookSecret, d.Header, d.Body) == nil {
				t.Errorf("%s (%s), sent %v after the reload, is not signed with the new secret alone: %s",
					d.Type, d.ID, d.Arrived.Sub(reloaded).Round(time.Millisecond), d.Header.Get("webhook-signature"))
			}
		}
		if after == 0 {
			t.Fatal("no delivery after the reload: the test proves nothing")
		}
		inOrderOnce(t, "app", h.delivered())
	})
}
