// Package webhook delivers the store's events (its outbox, see
// store.Event) to HTTP endpoints, signed per Standard Webhooks
// (https://www.standardwebhooks.com) under both its header names and
// Svix's, as Clerk's are: each endpoint gets every event it
// wants, in order, at least once, from a position kept in the store, so a
// crash, a restart or an endpoint that is down loses nothing. It knows
// nothing of Caddy.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/confcheck"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// DefaultRetries are the waits between the attempts at one event: eight
// attempts over about ten hours, then the event is given up.
var DefaultRetries = []time.Duration{
	5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	time.Hour, 3 * time.Hour, 6 * time.Hour,
}

// DefaultRetain is how long a configured endpoint's events are kept for
// Replay unless it says otherwise: a day, which outlasts DefaultRetries.
const DefaultRetain = 24 * time.Hour

// DefaultTimeout bounds one delivery: a 2xx answer must arrive within it.
const DefaultTimeout = 10 * time.Second

// SecretPrefix starts every Standard Webhooks signing secret.
const SecretPrefix = "whsec_"

// Secret sizes allowed by the Standard Webhooks spec, in bytes.
const (
	minSecretLen = 24
	maxSecretLen = 64
)

// maxAnswer bounds how much of a receiver's answer is read (and discarded).
const maxAnswer = 64 << 10

// Endpoint is where events are delivered.
type Endpoint struct {
	// Name identifies the endpoint; its position in the outbox is kept
	// under it.
	Name string
	// URL receives each event as a POST.
	URL string
	// Secrets are the signing keys (decoded, see ParseSecret), newest first;
	// each signs every delivery, so a receiver can rotate keys.
	Secrets [][]byte
	// Events are the event types the endpoint wants; empty means all.
	Events []string
	// Retries are the waits between attempts at one event; after the last,
	// the event is given up. Nil means DefaultRetries.
	Retries []time.Duration
	// Timeout bounds each delivery: a 2xx answer must arrive within it.
	// Zero means the dispatcher's (see Options.Timeout).
	Timeout time.Duration
	// Retain is how long the outbox keeps events after they happen,
	// delivered or not, so that Replay can send them again. Zero keeps an
	// event only until every endpoint is done with it.
	Retain time.Duration
}

// Check reports what makes the endpoint unusable.
func (e *Endpoint) Check() error {
	if err := confcheck.ServerURL(e.URL); err != nil {
		return fmt.Errorf("webhook %s: %w", e.Name, err)
	}
	if len(e.Secrets) == 0 {
		return fmt.Errorf("webhook %s: a secret is required", e.Name)
	}
	for _, t := range e.Events {
		if !slices.Contains(store.EventTypes, t) {
			return fmt.Errorf("webhook %s: unknown event type %q (want one of %s)", e.Name, t, strings.Join(store.EventTypes, ", "))
		}
	}
	for _, r := range e.Retries {
		if r <= 0 {
			return fmt.Errorf("webhook %s: retry waits must be positive", e.Name)
		}
	}
	if e.Timeout < 0 {
		return fmt.Errorf("webhook %s: the timeout must not be negative", e.Name)
	}
	if e.Retain < 0 {
		return fmt.Errorf("webhook %s: retain must not be negative", e.Name)
	}
	return nil
}

func (e *Endpoint) wants(eventType string) bool {
	return len(e.Events) == 0 || slices.Contains(e.Events, eventType)
}

func (e *Endpoint) retries() []time.Duration {
	if e.Retries == nil {
		return DefaultRetries
	}
	return e.Retries
}

// ParseSecret decodes a Standard Webhooks secret: whsec_ then the base64 of
// 24 to 64 random bytes.
func ParseSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, errors.New("a secret starts with " + SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("after " + SecretPrefix + " a secret is base64")
	}
	if len(key) < minSecretLen || len(key) > maxSecretLen {
		return nil, fmt.Errorf("a secret decodes to %d bytes; use %d to %d random bytes", len(key), minSecretLen, maxSecretLen)
	}
	return key, nil
}

// Sign returns the webhook-signature header: v1,<base64 HMAC-SHA256 of
// "id.timestamp.body"> for each secret, space-separated.
func Sign(secrets [][]byte, id string, timestamp int64, body []byte) string {
	sigs := make([]string, 0, len(secrets))
	for _, key := range secrets {
		mac := hmac.New(sha256.New, key)
		fmt.Fprintf(mac, "%s.%d.", id, timestamp)
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " ")
}

// send posts one event to ep: success is a 2xx answer. Redirects are not
// followed (the spec counts them as failures). Errors never carry the URL,
// which may hold a secret of its own.
func send(ctx context.Context, client *http.Client, ep *Endpoint, id string, now time.Time, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return errors.New("the URL is invalid")
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "socialgate-webhooks")
	sig := Sign(ep.Secrets, id, ts, body)
	// Standard Webhooks' names, and Svix's, which Clerk's verifiers
	// (verifyWebhook of @clerk/backend, svix libraries) require: one
	// signature, under both.
	for _, prefix := range []string{"webhook-", "svix-"} {
		req.Header.Set(prefix+"id", id)
		req.Header.Set(prefix+"timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set(prefix+"signature", sig)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the endpoint answered %d", resp.StatusCode)
	}
	return nil
}

// newClient is the default client: bounded, and never following redirects.
func newClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// RedactURL is u without its query, fragment and user info: enough to tell
// endpoints apart in the API, without what commonly holds a secret.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return (&url.URL{Scheme: p.Scheme, Host: p.Host, Path: p.Path}).String()
}
