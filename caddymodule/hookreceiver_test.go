package caddymodule_test

import (
	"bytes"
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
)

// hookSecret is the endpoint's signing secret: whsec_ + base64 of 32 bytes.
var hookSecret = "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("k3y!"), 8))

// hookReceiver is a webhook endpoint on loopback that records every request
// and answers 200, or 503 while it is down, after its delay (or as soon as
// the gateway gives up on the request).
type hookReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	got   []hookDelivery
	down  bool
	delay time.Duration
}

type hookDelivery struct {
	ID, Type string
	Status   int // 0 while the request is in flight
	Verified error
	Header   http.Header
	Body     []byte
	Data     map[string]any
	// Arrived and Ended are when the request arrived and when it was
	// answered or cut: Cut reports that the gateway left before the answer.
	Arrived, Ended time.Time
	Cut            bool
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // before the wait: a server notices the client leave only once the body is read
		var ev struct {
			Type   string         `json:"type"`
			Object string         `json:"object"`
			Data   map[string]any `json:"data"`
		}
		json.Unmarshal(body, &ev)
		d := hookDelivery{ID: r.Header.Get("webhook-id"), Type: ev.Type, Header: r.Header.Clone(), Body: body, Data: ev.Data,
			Verified: verifyHook(hookSecret, r.Header, body), Arrived: time.Now()}
		h.mu.Lock()
		status, delay, i := http.StatusOK, h.delay, len(h.got)
		if h.down {
			status = http.StatusServiceUnavailable
		}
		h.got = append(h.got, d)
		h.mu.Unlock()
		cut := false
		if delay > 0 {
			select {
			case <-r.Context().Done():
				cut = true
			case <-time.After(delay):
			}
		}
		h.mu.Lock()
		h.got[i].Status, h.got[i].Cut, h.got[i].Ended = status, cut, time.Now()
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) setDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

// setDelay makes the receiver answer each request after d.
func (h *hookReceiver) setDelay(d time.Duration) {
	h.mu.Lock()
	h.delay = d
	h.mu.Unlock()
}

func (h *hookReceiver) all() []hookDelivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

// delivered returns the deliveries the receiver accepted, in order.
func (h *hookReceiver) delivered() []hookDelivery {
	var out []hookDelivery
	for _, d := range h.all() {
		if d.Status == http.StatusOK && !d.Cut {
			out = append(out, d)
		}
	}
	return out
}

// patience bounds a test's wait for background work or a process to
// start: it only bounds how long a failure takes to show, so it is long; a
// passing test waits as little as the work takes, and a loaded machine
// (CI, a whole-suite run) may take many times the usual.
const patience = time.Minute

// waitFor polls until cond holds, for at most patience.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(patience); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// verifyHook checks a delivery as the Standard Webhooks spec tells a
// receiver to: HMAC-SHA256 keyed with the base64-decoded secret over
// "id.timestamp.body", matching one "v1," signature in constant time, with a
// timestamp within five minutes.
func verifyHook(secret string, h http.Header, body []byte) error {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return fmt.Errorf("bad webhook-id %q or webhook-timestamp %q", id, ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := []byte("v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if subtle.ConstantTimeCompare([]byte(sig), want) == 1 {
			return nil
		}
	}
	return fmt.Errorf("no valid signature in %q", h.Get("webhook-signature"))
}

// hookOptions configure a gateway with the receiver as its webhook "app",
// retrying every 300ms, and the API key.
func hookOptions(h *hookReceiver) options {
	return options{Global: "api_key " + apiKey + webhookBlock("app", h, hookSecret)}
}

// hookRetries is webhookBlock's retries line: twelve quick retries, so that
// an event outlives a receiver's short outage.
const hookRetries = "retries 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms"

// webhookBlock is a webhook block for the receiver, signed with secret,
// retrying as hookRetries says, with extra lines.
func webhookBlock(name string, h *hookReceiver, secret string, extra ...string) string {
	recordSecret(secret)
	return fmt.Sprintf(`
		webhook %s %s/hooks {
			secret %s
			%s
			%s
		}`, name, h.srv.URL, secret, hookRetries, strings.Join(extra, "\n\t\t\t"))
}

func hookTypes(ds []hookDelivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Type)
	}
	return out
}

// webhookState returns the API's delivery state of endpoint "app".
func webhookState(t *testing.T, e *env) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.Base+"/_auth/api/v1/webhooks", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK || len(list) != 1 {
		t.Fatalf("GET /webhooks: status %d, %d endpoints, %v", resp.StatusCode, len(list), err)
	}
	return list[0]
}
