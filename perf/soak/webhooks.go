package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// receiver is a webhook receiver on loopback. It verifies every delivery's
// signature against the secrets it knows and records each event's first
// arrival; slowShare of its answers wait a random time up to slowest first.
type receiver struct {
	name      string
	url       string
	secrets   []string
	slowShare float64
	slowest   time.Duration
	srv       *http.Server

	mu         sync.Mutex
	first      map[string]time.Time // event id → first delivery
	lag        []time.Duration      // first delivery − the event's timestamp
	deliveries int                  // every delivery, repeats included
	slowed     int
	badSig     int
	badBody    int
}

// receivers are the soak's two: fast, and slow one time in five.
type receivers struct{ fast, slow *receiver }

func startReceivers() (*receivers, error) {
	fast, err := startReceiver("fast", []string{fastSecret}, 0, 0)
	if err != nil {
		return nil, err
	}
	slow, err := startReceiver("slow", slowSecrets[:], 0.2, 3*time.Second)
	if err != nil {
		fast.srv.Close()
		return nil, err
	}
	return &receivers{fast: fast, slow: slow}, nil
}

func (r *receivers) close() {
	r.fast.srv.Close()
	r.slow.srv.Close()
}

func startReceiver(name string, secrets []string, slowShare float64, slowest time.Duration) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{name: name, url: fmt.Sprintf("http://%s/%s", ln.Addr(), name), secrets: secrets,
		slowShare: slowShare, slowest: slowest, first: map[string]time.Time{}}
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	var ev struct {
		Type      string `json:"type"`
		Timestamp int64  `json:"timestamp"`
	}
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	r.deliveries++
	switch {
	case err != nil || json.Unmarshal(body, &ev) != nil || id == "" || ev.Timestamp == 0:
		r.badBody++
	case !r.signed(req.Header, body):
		r.badSig++
	default:
		if _, seen := r.first[id]; !seen {
			r.first[id] = now
			r.lag = append(r.lag, now.Sub(time.UnixMilli(ev.Timestamp)))
		}
	}
	slow := r.slowShare > 0 && rand.Float64() < r.slowShare
	if slow {
		r.slowed++
	}
	r.mu.Unlock()
	if slow {
		select {
		case <-time.After(time.Duration(rand.Int64N(int64(r.slowest)))):
		case <-req.Context().Done():
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// signed checks a Standard Webhooks signature against each known secret,
// as the README's recipe does.
func (r *receiver) signed(h http.Header, body []byte) bool {
	for _, secret := range r.secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			continue
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + string(body)))
		want := []byte("v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		for _, sig := range strings.Fields(h.Get("webhook-signature")) {
			if hmac.Equal([]byte(sig), want) {
				return true
			}
		}
	}
	return false
}

// receiverStats is a snapshot of a receiver.
type receiverStats struct {
	ids                                 map[string]bool
	lag                                 []time.Duration
	deliveries, slowed, badSig, badBody int
}

func (r *receiver) stats() receiverStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := receiverStats{ids: make(map[string]bool, len(r.first)), lag: append([]time.Duration(nil), r.lag...),
		deliveries: r.deliveries, slowed: r.slowed, badSig: r.badSig, badBody: r.badBody}
	for id := range r.first {
		s.ids[id] = true
	}
	return s
}

// endpointState is the part of GET /_auth/api/v1/webhooks the soak reads.
type endpointState struct {
	Name        string  `json:"name"`
	LastEventID *string `json:"last_event_id"`
	Pending     string  `json:"pending_event_id"` // "" when no event is being retried
	Attempts    int     `json:"attempts"`
	Delivered   int64   `json:"delivered"`
	Failed      int64   `json:"failed"`
	LastError   *string `json:"last_error"`
}

// webhookStates asks a gateway's backend API for each endpoint's state.
func webhookStates(site string) (map[string]endpointState, error) {
	req, _ := http.NewRequest(http.MethodGet, strings.TrimSuffix(site, "/")+"/_auth/api/v1/webhooks", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /webhooks: status %d", resp.StatusCode)
	}
	var list []endpointState
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	out := map[string]endpointState{}
	for _, e := range list {
		out[e.Name] = e
	}
	return out, nil
}
