package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

func ids(ds []delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID())
	}
	return out
}

func TestReplay_SendsAGivenUpEventAgainAndWhatFollows(t *testing.T) {
	rc := newReceiver(t)
	rc.setAnswer(func(d *delivery) int {
		if d.Event.Type == store.EventUserCreated {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	ep := endpoint("app", rc.URL, secretA) // 3 attempts
	ep.Retain = time.Hour
	f := newFixture(t, nil, ep)
	f.signIn("kim")
	for range 3 {
		f.round()
		f.clk.Advance(6 * time.Minute)
	}
	first := rc.deliveries()
	if want := []string{"user.created", "user.created", "user.created", "external_account.created"}; !slices.Equal(types(first), want) {
		t.Fatalf("before the replay: %q, want %q", types(first), want)
	}
	givenUp := f.status("app").RecentFailures[0]
	from, ok := store.EventTime(givenUp.EventID)
	if !ok {
		t.Fatalf("the given-up event's id %q has no time", givenUp.EventID)
	}

	rc.setAnswer(func(*delivery) int { return http.StatusOK })
	if err := f.d.Replay(context.Background(), "app", from); err != nil {
		t.Fatal(err)
	}
	f.round()
	f.round() // a replay is carried out once
	again := rc.deliveries()[len(first):]
	if want := []string{"user.created", "external_account.created"}; !slices.Equal(types(again), want) {
		t.Fatalf("the replay sent %q, want %q", types(again), want)
	}
	if want := []string{givenUp.EventID, first[3].ID()}; !slices.Equal(ids(again), want) {
		t.Errorf("replayed webhook-ids %v, want the events' own %v", ids(again), want)
	}
	for _, d := range again {
		if err := verify(secretA, d.Header, d.Body, f.clk.Now()); err != nil {
			t.Errorf("replayed %s: %v", d.Event.Type, err)
		}
	}
	st := f.status("app")
	if st.Delivered != 3 || st.Failed != 1 || st.Cursor != first[3].ID() || st.Attempts != 0 {
		t.Errorf("state after the replay = %+v", st.State)
	}
}

func TestReplay_FromATimeSendsEveryEventSinceInOrder(t *testing.T) {
	rc := newReceiver(t)
	ep := endpoint("app", rc.URL, secretA)
	ep.Retain = time.Hour
	f := newFixture(t, nil, ep)
	lee := f.signIn("lee")
	time.Sleep(2 * time.Millisecond)
	mid := time.Now()
	time.Sleep(2 * time.Millisecond)
	f.newSession(lee.User.ID)
	f.newSession(lee.User.ID)
	f.round()
	before := len(rc.deliveries())
	if before != 4 {
		t.Fatalf("%d deliveries before the replay, want 4", before)
	}
	f.clk.Advance(time.Second) // the dispatcher's clock, set at the start, passes mid
	if err := f.d.Replay(context.Background(), "app", mid); err != nil {
		t.Fatal(err)
	}
	f.round()
	again := rc.deliveries()[before:]
	if want := []string{"session.created", "session.created"}; !slices.Equal(types(again), want) {
		t.Errorf("replaying from between the sign-in and the sessions sent %q, want %q", types(again), want)
	}
	if !slices.Equal(ids(again), ids(rc.deliveries()[2:4])) {
		t.Errorf("replayed ids %v, want %v", ids(again), ids(rc.deliveries()[2:4]))
	}
}

func TestReplay_RefusesUnknownEndpointsAndStartsItDoesNotKeep(t *testing.T) {
	rc := newReceiver(t)
	kept, none := endpoint("kept", rc.URL, secretA), endpoint("none", rc.URL, secretA)
	kept.Retain = time.Hour
	f := newFixture(t, nil, kept, none)
	ctx := context.Background()
	if err := f.d.Replay(ctx, "other", f.clk.Now()); !errors.Is(err, webhook.ErrUnknownEndpoint) {
		t.Errorf("unknown endpoint: %v", err)
	}
	if err := f.d.Replay(ctx, "kept", f.clk.Now().Add(time.Second)); !errors.Is(err, webhook.ErrFutureStart) {
		t.Errorf("a start in the future: %v", err)
	}
	var nr *webhook.NotRetainedError
	err := f.d.Replay(ctx, "kept", f.clk.Now().Add(-2*time.Hour))
	if !errors.As(err, &nr) || !strings.Contains(err.Error(), "keeps events for 1h0m0s: replay from ") {
		t.Errorf("before the retention: %v", err)
	}
	if nr != nil && nr.Earliest.Before(f.clk.Now().Add(-time.Hour)) {
		t.Errorf("earliest %v is older than the retention", nr.Earliest)
	}
	if err := f.d.Replay(ctx, "none", f.clk.Now()); !errors.As(err, &nr) || !strings.Contains(err.Error(), "keeps no delivered events") {
		t.Errorf("an endpoint without retention: %v", err)
	}
	if _, err := f.st.GetMeta(ctx, "webhook.replay.kept"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused replay was stored: %v", err)
	}
}

func TestPrune_KeepsRetainedEventsUntilTheirTime(t *testing.T) {
	rc := newReceiver(t)
	ep := endpoint("app", rc.URL, secretA)
	ep.Retain = time.Hour
	f := newFixture(t, nil, ep)
	ctx := context.Background()
	// A registry written before retention existed holds bare times.
	if err := f.st.PutMeta(ctx, "webhook.endpoints", []byte(`{"app":"2026-11-01T00:00:00Z","gone":"2026-11-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	f.signIn("max")
	f.round()
	f.clk.Advance(2 * time.Minute)
	f.round() // every event delivered, a minute since the last pruning: all retained
	if evs, _ := f.st.Events(ctx, "", 10); len(evs) != 2 {
		t.Fatalf("%d events kept within the retention, want 2", len(evs))
	}
	f.clk.Advance(2 * time.Hour)
	f.round()
	evs, _ := f.st.Events(ctx, "", 10)
	if len(evs) != 1 || evs[0].Type != store.EventAccountCreated {
		t.Errorf("after the retention %d events are kept; want the last one (it is the cursor)", len(evs))
	}
}
