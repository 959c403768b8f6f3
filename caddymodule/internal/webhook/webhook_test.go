package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

// Two secrets in the spec's format: whsec_ + base64 of 32 bytes.
var (
	secretA = "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa1}, 32))
	secretB = "whsec_" + base64.StdEncoding.EncodeToString([]byte("another-secret-of-24-bytes!"))
)

// verify checks a delivery the way the Standard Webhooks spec tells a
// receiver to, written from the spec rather than from the package: HMAC-
// SHA256 with the base64-decoded secret over "id.timestamp.body", base64,
// compared in constant time with each "v1," entry of webhook-signature, and
// a timestamp within five minutes.
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	return verifyAs("webhook-", secret, h, body, now)
}

// verifyAs is verify with the headers named prefix+id, +timestamp and
// +signature: "svix-" is Svix's scheme, which Clerk's receivers (its
// verifyWebhook, the svix libraries) verify, the same but for the names.
func verifyAs(prefix, secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get(prefix+"id"), h.Get(prefix+"timestamp"), h.Get(prefix+"signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing headers: id %q timestamp %q signature %q", id, ts, sigs)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return fmt.Errorf("timestamp %q is not within 5 minutes of %v", ts, now)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(sigs) {
		version, sig, _ := strings.Cut(s, ",")
		if version == "v1" && subtle.ConstantTimeCompare([]byte(sig), []byte(want)) == 1 {
			return nil
		}
	}
	return fmt.Errorf("no signature in %q matches", sigs)
}

// delivery is one request a receiver got.
type delivery struct {
	Header http.Header
	Body   []byte
	Event  struct {
		Type       string         `json:"type"`
		Object     string         `json:"object"`
		Timestamp  int64          `json:"timestamp"`
		Data       map[string]any `json:"data"`
		InstanceID string         `json:"instance_id"`
		Attributes struct {
			HTTPRequest *struct{ ClientIP, UserAgent *string } `json:"http_request"`
		} `json:"event_attributes"`
	}
}

func (d *delivery) ID() string { return d.Header.Get("Webhook-Id") }

// receiver is a webhook endpoint on loopback that records every request and
// answers with what answer says (200 by default).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivery
	answer func(d *delivery) int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{answer: func(*delivery) int { return http.StatusOK }}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var d delivery
		d.Header = r.Header.Clone()
		d.Body, _ = io.ReadAll(r.Body)
		if err := json.Unmarshal(d.Body, &d.Event); err != nil {
			t.Errorf("a delivery is not JSON: %v: %s", err, d.Body)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, d)
		status := rc.answer(&d)
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) setAnswer(f func(d *delivery) int) {
	rc.mu.Lock()
	rc.answer = f
	rc.mu.Unlock()
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

func types(ds []delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Event.Type)
	}
	return out
}

// clock is the dispatcher's clock in a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a store, a dispatcher on it with a test clock, and helpers.
type fixture struct {
	t   *testing.T
	st  store.Store
	d   *webhook.Dispatcher
	clk *clock
}

func newFixture(t *testing.T, st store.Store, eps ...webhook.Endpoint) *fixture {
	t.Helper()
	if st == nil {
		b, err := badger.Open(badger.Options{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		st = b
	}
	clk := &clock{t: time.Now()}
	d := webhook.New(webhook.Options{Store: st, Payload: func(e *store.Event) any { return api.Event(e, "ins_test") }, Now: clk.Now, Timeout: 2 * time.Second})
	d.Configure(eps)
	return &fixture{t: t, st: st, d: d, clk: clk}
}

func endpoint(name, url string, secrets ...string) webhook.Endpoint {
	ep := webhook.Endpoint{Name: name, URL: url, Retries: []time.Duration{time.Minute, 5 * time.Minute}}
	for _, s := range secrets {
		key, err := webhook.ParseSecret(s)
		if err != nil {
			panic(err)
		}
		ep.Secrets = append(ep.Secrets, key)
	}
	return ep
}

// round runs one round of deliveries and fails the test on a store error.
func (f *fixture) round() {
	f.t.Helper()
	if _, err := f.d.Round(context.Background()); err != nil {
		f.t.Fatalf("Round: %v", err)
	}
}

func (f *fixture) signIn(subject string) store.SignInResult {
	f.t.Helper()
	res, err := f.st.SignIn(context.Background(), store.SignIn{Account: store.ExternalAccount{
		Provider: "github", Issuer: "https://github.com", Subject: subject,
		Email: subject + "@example.com", EmailVerified: true, Name: "Name of " + subject,
		Tokens: store.TokenSet{AccessToken: "gho_access_" + subject, RefreshToken: "ghr_refresh_" + subject, IDToken: "eyJ.id." + subject},
	}})
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

func (f *fixture) newSession(userID string) *store.Session {
	f.t.Helper()
	s := &store.Session{UserID: userID, ExpiresAt: time.Now().Add(time.Hour)}
	if err := f.st.CreateSession(context.Background(), s); err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f *fixture) status(name string) webhook.Status {
	f.t.Helper()
	all, err := f.d.Status(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	for _, s := range all {
		if s.Name == name {
			return s
		}
	}
	f.t.Fatalf("no status for %s in %+v", name, all)
	return webhook.Status{}
}

func TestDelivery_IsSignedPerStandardWebhooksWithEverySecret(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, nil, endpoint("app", rc.URL, secretA, secretB))
	alice := f.signIn("alice")
	f.round()

	got := rc.deliveries()
	if want := []string{store.EventUserCreated, store.EventAccountCreated}; !slices.Equal(types(got), want) {
		t.Fatalf("delivered %q, want %q", types(got), want)
	}
	events, _ := f.st.Events(context.Background(), "", 10)
	for i, d := range got {
		for _, secret := range []string{secretA, secretB} {
			for _, prefix := range []string{"webhook-", "svix-"} {
				if err := verifyAs(prefix, secret, d.Header, d.Body, f.clk.Now()); err != nil {
					t.Errorf("%s with the %s headers: %v", d.Event.Type, prefix, err)
				}
			}
		}
		if err := verify("whsec_"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), d.Header, d.Body, f.clk.Now()); err == nil {
			t.Errorf("%s verifies with a secret the endpoint does not have", d.Event.Type)
		}
		if d.Event.InstanceID != "ins_test" || d.Event.Attributes.HTTPRequest == nil {
			t.Errorf("delivery %d: instance_id %q, event_attributes.http_request %v: not Clerk's envelope", i, d.Event.InstanceID, d.Event.Attributes.HTTPRequest)
		}
		if d.ID() != events[i].ID || d.Event.Object != "event" || d.Event.Timestamp != events[i].CreatedAt.UnixMilli() {
			t.Errorf("delivery %d: id %s object %q timestamp %d; want event %s", i, d.ID(), d.Event.Object, d.Event.Timestamp, events[i].ID)
		}
		if ct := d.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	}
	user, account := got[0].Event.Data, got[1].Event.Data
	if user["object"] != "user" || user["id"] != alice.User.ID || user["primary_email_address"] != "alice@example.com" {
		t.Errorf("user.created data = %v", user)
	}
	if account["object"] != "external_account" || account["id"] != alice.Account.ID || account["user_id"] != alice.User.ID || account["provider"] != "oauth_github" ||
		account["identification_id"] != nil {
		t.Errorf("external_account.created data = %v", account)
	}
}

func TestDelivery_PayloadsOfEveryEventType(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, nil, endpoint("app", rc.URL, secretA))
	ctx := context.Background()
	bob := f.signIn("bob")
	ended, revoked := f.newSession(bob.User.ID), f.newSession(bob.User.ID)
	f.st.DeleteSession(ctx, ended.ID)
	f.st.RevokeSession(ctx, revoked.ID)
	f.st.UpdateExternalAccount(ctx, bob.Account.ID, func(a *store.ExternalAccount) error {
		a.Status = store.StatusNeedsReauthorization
		return nil
	})
	if err := f.st.DeleteUser(ctx, bob.User.ID); err != nil {
		t.Fatal(err)
	}
	f.round()
	got := rc.deliveries()
	want := []string{"user.created", "external_account.created", "session.created", "session.created", "session.ended",
		"session.revoked", "external_account.reauthorization_required", "external_account.deleted", "user.deleted"}
	if !slices.Equal(types(got), want) {
		t.Fatalf("delivered %q, want %q", types(got), want)
	}
	check := func(i int, field string, want any) {
		t.Helper()
		if v := got[i].Event.Data[field]; v != want {
			t.Errorf("%s: data.%s = %v, want %v", got[i].Event.Type, field, v, want)
		}
	}
	check(2, "status", "active")
	check(2, "object", "session")
	check(4, "status", "ended")
	check(4, "id", ended.ID)
	check(5, "status", "revoked")
	if v, _ := got[6].Event.Data["verification"].(map[string]any); v["status"] != store.StatusNeedsReauthorization {
		t.Errorf("reauthorization_required data.verification = %v", got[6].Event.Data["verification"])
	}
	if d := got[8].Event.Data; len(d) != 3 || d["id"] != bob.User.ID || d["deleted"] != true || d["object"] != "user" {
		t.Errorf("user.deleted data = %v, want {object, id, deleted}", d)
	}
}

func TestDelivery_CarriesNoTokenMaterial(t *testing.T) {
	rc := newReceiver(t)
	f := newFixture(t, nil, endpoint("app", rc.URL, secretA))
	ctx := context.Background()
	cy := f.signIn("cy")
	f.signIn("cy") // a second sign-in with new tokens
	f.st.UpdateExternalAccount(ctx, cy.Account.ID, func(a *store.ExternalAccount) error {
		a.Tokens = store.TokenSet{AccessToken: "gho_access_rotated", RefreshToken: "ghr_refresh_rotated"}
		a.Status = store.StatusNeedsReauthorization
		a.Email = "cy@new.example"
		return nil
	})
	f.st.DeleteExternalAccount(ctx, cy.User.ID, cy.Account.ID, nil)
	f.round()
	got := rc.deliveries()
	if len(got) < 5 {
		t.Fatalf("only %q delivered", types(got))
	}
	for _, d := range got {
		for _, secret := range []string{"gho_", "ghr_", "eyJ", "access_token", "refresh_token", "id_token"} {
			if bytes.Contains(d.Body, []byte(secret)) {
				t.Errorf("%s carries %q: %s", d.Event.Type, secret, d.Body)
			}
		}
	}
}

func TestDelivery_RetriesWithBackoffAfterFailures(t *testing.T) {
	rc := newReceiver(t)
	failures := 2
	rc.setAnswer(func(*delivery) int {
		if failures > 0 {
			failures--
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	f := newFixture(t, nil, endpoint("app", rc.URL, secretA)) // waits: 1m, then 5m
	f.signIn("dee")
	f.round()
	if n := len(rc.deliveries()); n != 1 {
		t.Fatalf("first round: %d requests, want 1 (a failure stops the round)", n)
	}
	st := f.status("app")
	if st.Attempts != 1 || st.LastError != "the endpoint answered 500" || st.Cursor != "" ||
		st.NextAttemptAt.Before(f.clk.Now().Add(time.Minute)) || st.NextAttemptAt.After(f.clk.Now().Add(67*time.Second)) {
		t.Errorf("after one failure: %+v", st.State)
	}
	f.clk.Advance(50 * time.Second)
	f.round()
	if n := len(rc.deliveries()); n != 1 {
		t.Errorf("a round before the wait is over sent %d requests, want none", n-1)
	}
	f.clk.Advance(20 * time.Second)
	f.round() // second attempt fails: next in 5m
	f.clk.Advance(4 * time.Minute)
	f.round()
	if n := len(rc.deliveries()); n != 2 {
		t.Errorf("%d requests 5m into the second wait, want 2", n)
	}
	f.clk.Advance(2 * time.Minute)
	f.round()
	got := rc.deliveries()
	if !slices.Equal(types(got), []string{"user.created", "user.created", "user.created", "external_account.created"}) {
		t.Fatalf("delivered %q", types(got))
	}
	if got[0].ID() != got[2].ID() || got[0].Header.Get("Webhook-Timestamp") == got[2].Header.Get("Webhook-Timestamp") {
		t.Errorf("a retry keeps the id and gets a new timestamp: %s@%s then %s@%s",
			got[0].ID(), got[0].Header.Get("Webhook-Timestamp"), got[2].ID(), got[2].Header.Get("Webhook-Timestamp"))
	}
	for _, d := range got { // each as its receiver checked it, at the time it arrived
		sent, _ := strconv.ParseInt(d.Header.Get("Webhook-Timestamp"), 10, 64)
		if err := verify(secretA, d.Header, d.Body, time.Unix(sent, 0)); err != nil {
			t.Errorf("attempt at %s: %v", d.Event.Type, err)
		}
	}
	if st := f.status("app"); st.Attempts != 0 || st.Delivered != 2 || st.Failed != 0 || st.Pending != "" {
		t.Errorf("after the success: %+v", st.State)
	}
}

func TestDelivery_KeepsOrderAcrossAnOutage(t *testing.T) {
	rc := newReceiver(t)
	rc.setAnswer(func(*delivery) int { return http.StatusServiceUnavailable })
	f := newFixture(t, nil, endpoint("app", rc.URL, secretA))
	eve := f.signIn("eve")
	for range 3 {
		f.newSession(eve.User.ID)
	}
	f.round()
	f.clk.Advance(2 * time.Minute)
	f.round()
	rc.setAnswer(func(*delivery) int { return http.StatusNoContent })
	f.clk.Advance(6 * time.Minute)
	f.round()
	var ok []string
	var ids []string
	for _, d := range rc.deliveries()[2:] {
		ok = append(ok, d.Event.Type)
		ids = append(ids, d.ID())
	}
	want := []string{"user.created", "external_account.created", "session.created", "session.created", "session.created"}
	if !slices.Equal(ok, want) || !slices.IsSorted(ids) {
		t.Errorf("after the outage: %q with ids %v, want %q in id order", ok, ids, want)
	}
}

func TestDelivery_GivesUpAfterTheLastRetryAndMovesOn(t *testing.T) {
	rc := newReceiver(t)
	rc.setAnswer(func(d *delivery) int {
		if d.Event.Type == store.EventUserCreated {
			return http.StatusBadRequest
		}
		return http.StatusOK
	})
	f := newFixture(t, nil, endpoint("app", rc.URL, secretA)) // 3 attempts
	fay := f.signIn("fay")
	for range 3 {
		f.round()
		f.clk.Advance(6 * time.Minute)
	}
	got := rc.deliveries()
	if want := []string{"user.created", "user.created", "user.created", "external_account.created"}; !slices.Equal(types(got), want) {
		t.Fatalf("delivered %q, want %q", types(got), want)
	}
	st := f.status("app")
	if st.Failed != 1 || st.Delivered != 1 || len(st.RecentFailures) != 1 || st.Attempts != 0 {
		t.Fatalf("state = %+v", st.State)
	}
	fail := st.RecentFailures[0]
	if fail.EventID != got[0].ID() || fail.Type != store.EventUserCreated || fail.Attempts != 3 || fail.Error != "the endpoint answered 400" {
		t.Errorf("recorded failure = %+v", fail)
	}
	f.newSession(fay.User.ID)
	f.round()
	if got := rc.deliveries(); got[len(got)-1].Event.Type != store.EventSessionCreated {
		t.Errorf("the next event after a given-up one was not delivered: %q", types(got))
	}
}

func TestDelivery_SendsOnlyTheWantedEventTypes(t *testing.T) {
	all, sessions := newReceiver(t), newReceiver(t)
	ep := endpoint("sessions", sessions.URL, secretA)
	ep.Events = []string{store.EventSessionCreated, store.EventSessionRevoked}
	f := newFixture(t, nil, endpoint("all", all.URL, secretB), ep)
	gil := f.signIn("gil")
	s := f.newSession(gil.User.ID)
	f.st.RevokeSession(context.Background(), s.ID)
	f.round()
	if got := types(sessions.deliveries()); !slices.Equal(got, []string{"session.created", "session.revoked"}) {
		t.Errorf("the filtered endpoint got %q", got)
	}
	if got := types(all.deliveries()); len(got) != 4 {
		t.Errorf("the unfiltered endpoint got %q", got)
	}
	events, _ := f.st.Events(context.Background(), "", 10)
	if st := f.status("sessions"); st.Cursor != events[len(events)-1].ID {
		t.Errorf("the filtered endpoint's cursor is %q, want past every event (%s)", st.Cursor, events[len(events)-1].ID)
	}
}

func TestDelivery_RedirectsAndSlowAnswersAreFailures(t *testing.T) {
	rc := newReceiver(t)
	rc.setAnswer(func(*delivery) int { return http.StatusFound })
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	f := newFixture(t, nil, endpoint("redirects", rc.URL, secretA), endpoint("slow", slow.URL+"/hook?token=s3cret", secretA))
	f.signIn("hal")
	start := time.Now()
	f.round()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the round took %v; the timeout is 2s", took)
	}
	if st := f.status("redirects"); st.Attempts != 1 || st.LastError != "the endpoint answered 302" {
		t.Errorf("redirect: %+v", st.State)
	}
	st := f.status("slow")
	if st.Attempts != 1 || !strings.Contains(st.LastError, "Timeout") || strings.Contains(st.LastError, "s3cret") {
		t.Errorf("slow endpoint: %+v", st.State)
	}
	if st.URL != slow.URL+"/hook" {
		t.Errorf("status URL %q, want it without its query", st.URL)
	}
}

func TestPrune_KeepsWhatAnEndpointHasStillToGet(t *testing.T) {
	up, down := newReceiver(t), newReceiver(t)
	down.setAnswer(func(*delivery) int { return http.StatusBadGateway })
	f := newFixture(t, nil, endpoint("up", up.URL, secretA), endpoint("down", down.URL, secretA))
	ctx := context.Background()
	f.signIn("ida")
	f.round() // prunes nothing: "down" has every event still to get
	if evs, _ := f.st.Events(ctx, "", 10); len(evs) != 2 {
		t.Fatalf("%d events kept, want 2", len(evs))
	}
	down.setAnswer(func(*delivery) int { return http.StatusOK })
	f.clk.Advance(2 * time.Minute)
	f.round() // delivers to "down", then prunes before its cursor
	evs, _ := f.st.Events(ctx, "", 10)
	if len(evs) != 1 || evs[0].Type != store.EventAccountCreated {
		t.Errorf("after every endpoint has both events, %d are kept; want the last one (it is the cursor)", len(evs))
	}
	if n := len(up.deliveries()); n != 2 {
		t.Errorf("up got %d deliveries, want 2", n)
	}
}

func TestPrune_WithoutEndpointsDropsEverythingButNothingBeforeAConfiguration(t *testing.T) {
	b, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	d := webhook.New(webhook.Options{Store: b, Payload: func(e *store.Event) any { return api.Event(e, "ins_test") }})
	b.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Issuer: "https://x.example", Subject: "jo"}})
	if _, err := d.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if evs, _ := b.Events(ctx, "", 10); len(evs) != 2 {
		t.Fatalf("before any configuration %d events are kept, want 2", len(evs))
	}
	d.Configure(nil)
	if _, err := d.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if evs, _ := b.Events(ctx, "", 10); len(evs) != 0 {
		t.Errorf("with no endpoint configured %d events are kept, want none", len(evs))
	}
}

func TestConfigure_TheNewestIsInForceAndReleaseBringsTheOlderBack(t *testing.T) {
	old, replacement := newReceiver(t), newReceiver(t)
	f := newFixture(t, nil, endpoint("app", old.URL, secretA))
	f.signIn("kay")
	release := f.d.Configure([]webhook.Endpoint{endpoint("app", replacement.URL, secretA)})
	f.round()
	if len(old.deliveries()) != 0 || len(replacement.deliveries()) != 2 {
		t.Errorf("with a newer configuration: old got %d, new got %d; want 0 and 2", len(old.deliveries()), len(replacement.deliveries()))
	}
	release()
	f.signIn("lou")
	f.round()
	if len(old.deliveries()) != 2 || len(replacement.deliveries()) != 2 {
		t.Errorf("after releasing the newer: old got %d, new got %d; want 2 and 2", len(old.deliveries()), len(replacement.deliveries()))
	}
}

func TestStop_CutsADeliveryShortWithoutCountingIt(t *testing.T) {
	arrived := make(chan struct{}, 10)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // the server notices the client leave only once the body is read
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(hang.Close)
	f := newFixture(t, nil, endpoint("app", hang.URL, secretA))
	f.signIn("max")
	f.d.Start()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery started")
	}
	f.d.Stop()
	if st := f.status("app"); st.Attempts != 0 || st.LastError != "" || st.Cursor != "" {
		t.Errorf("after a stop mid-delivery: %+v", st.State)
	}
}

func TestStart_DeliversPromptlyAfterAWrite(t *testing.T) {
	rc := newReceiver(t)
	b, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d := webhook.New(webhook.Options{Store: b, Payload: func(e *store.Event) any { return api.Event(e, "ins_test") }, Poll: 20 * time.Millisecond})
	d.Configure([]webhook.Endpoint{endpoint("app", rc.URL, secretA)})
	d.Start()
	defer d.Stop()
	b.SignIn(context.Background(), store.SignIn{Account: store.ExternalAccount{Issuer: "https://x.example", Subject: "ned"}})
	deadline := time.Now().Add(5 * time.Second)
	for len(rc.deliveries()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := types(rc.deliveries()); !slices.Equal(got, []string{"user.created", "external_account.created"}) {
		t.Errorf("delivered %q", got)
	}
}

func TestParseSecret_AcceptsOnlyStandardWebhooksSecrets(t *testing.T) {
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n)) }
	for _, tc := range []struct {
		secret string
		ok     bool
	}{
		{"whsec_" + b64(24), true},
		{"whsec_" + b64(32), true},
		{"whsec_" + b64(64), true},
		{"whsec_" + b64(23), false},
		{"whsec_" + b64(65), false},
		{b64(32), false},
		{"whsec_not base64!", false},
		{"whsk_" + b64(32), false},
		{"", false},
	} {
		if _, err := webhook.ParseSecret(tc.secret); (err == nil) != tc.ok {
			t.Errorf("ParseSecret(%.12q…) = %v, want ok %v", tc.secret, err, tc.ok)
		}
	}
}

func TestEndpointCheck_RefusesWhatCannotWork(t *testing.T) {
	key, _ := webhook.ParseSecret(secretA)
	for name, ep := range map[string]webhook.Endpoint{
		"relative URL":               {Name: "a", URL: "/hooks", Secrets: [][]byte{key}},
		"ftp URL":                    {Name: "a", URL: "ftp://example.com/", Secrets: [][]byte{key}},
		"plain http on the internet": {Name: "a", URL: "http://hooks.example.com/", Secrets: [][]byte{key}},
		"no secret":                  {Name: "a", URL: "https://example.com/"},
		"unknown event":              {Name: "a", URL: "https://example.com/", Secrets: [][]byte{key}, Events: []string{"user.signed_in"}},
		"zero wait":                  {Name: "a", URL: "https://example.com/", Secrets: [][]byte{key}, Retries: []time.Duration{0}},
	} {
		if err := ep.Check(); err == nil {
			t.Errorf("%s: Check accepted %+v", name, ep)
		}
	}
	for _, u := range []string{"https://example.com/hooks", "http://127.0.0.1:8080/hooks", "http://receiver:3000/hooks", "http://10.0.0.7/hooks"} {
		ok := webhook.Endpoint{Name: "a", URL: u, Secrets: [][]byte{key}, Events: store.EventTypes}
		if err := ok.Check(); err != nil {
			t.Errorf("Check refused a good endpoint: %v", err)
		}
	}
}
