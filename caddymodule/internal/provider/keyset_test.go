package provider

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/socialgate/socialgate/caddymodule/internal/store/storetest"
)

// jwksServer is a provider's JWKS endpoint that a test rotates, breaks and
// makes hang. Keys are ES256 (cheap to make); a kid that was never
// published signs with a key of its own.
type jwksServer struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	keys      map[string]*ecdsa.PrivateKey // every key made, by kid
	published []string                     // kids in the JWKS, in order
	answer    func(w http.ResponseWriter)  // replaces the JWKS when set
	header    http.Header                  // sent with the JWKS
	hang      chan struct{}                // when set, requests wait for it to close
	calls     int
}

func newJWKSServer(t *testing.T, kids ...string) *jwksServer {
	s := &jwksServer{t: t, keys: map[string]*ecdsa.PrivateKey{}, header: http.Header{}}
	s.publish(kids...)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.mu.Lock()
		if s.hang != nil {
			close(s.hang)
			s.hang = nil
		}
		s.mu.Unlock()
		s.srv.Close()
	})
	return s
}

func (s *jwksServer) key(kid string) *ecdsa.PrivateKey {
	if k := s.keys[kid]; k != nil {
		return k
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	s.keys[kid] = k
	return k
}

// publish sets the kids the JWKS lists (making their keys as needed).
func (s *jwksServer) publish(kids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, kid := range kids {
		s.key(kid)
	}
	s.published = kids
}

func (s *jwksServer) set(edit func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	edit(s)
}

func (s *jwksServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls++
	hang, answer := s.hang, s.answer
	set := jose.JSONWebKeySet{}
	for _, kid := range s.published {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: s.keys[kid].Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"})
	}
	for k, v := range s.header {
		w.Header()[k] = v
	}
	s.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	}
	if answer != nil {
		answer(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(set)
}

// token is an ID token whose header names kid, signed by signer's key.
func (s *jwksServer) token(kid, signer string) string {
	s.mu.Lock()
	key := s.key(signer)
	s.mu.Unlock()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		s.t.Fatal(err)
	}
	now := time.Now()
	raw, err := jwt.Signed(sig).Claims(map[string]any{"iss": s.srv.URL, "aud": testClientID, "sub": "u1",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).Serialize()
	if err != nil {
		s.t.Fatal(err)
	}
	return raw
}

// verifierFor is what a provider verifies ID tokens with, fetching keys from
// s on the test's clock, with timeout as the provider's HTTP timeout.
func verifierFor(s *jwksServer, clock *storetest.Clock, timeout time.Duration) *discovered {
	p := &Provider{client: &http.Client{Timeout: timeout}}
	algs := []string{oidc.RS256, oidc.ES256}
	d := &discovered{issuer: s.srv.URL, signingAlgs: algs, keys: newKeySet(s.srv.URL, p.do, algs)}
	d.keys.keys.now = clock.Now
	return d
}

// verdict names the outcome of a verification.
func verdict(err error) string {
	switch {
	case err == nil:
		return "verified"
	case errors.Is(err, ErrRejected) && !errors.Is(err, ErrUnavailable):
		return "rejected"
	case errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrRejected):
		return "unavailable"
	}
	return "unclassified: " + err.Error()
}

func down(status int) func(*jwksServer) {
	return func(s *jwksServer) {
		s.answer = func(w http.ResponseWriter) { http.Error(w, "down", status) }
	}
}

func answering(ctype, body string) func(*jwksServer) {
	return func(s *jwksServer) {
		s.answer = func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", ctype)
			w.Write([]byte(body))
		}
	}
}

func healthy(s *jwksServer) { s.answer = nil }

func cacheControl(v string) func(*jwksServer) {
	return func(s *jwksServer) { s.header.Set("Cache-Control", v) }
}

// TestKeySet_RotatesWithTheProvider plays key rotations and outages at a
// provider, step by step on a test clock, and checks what each ID token
// gets and how many JWKS requests it took.
func TestKeySet_RotatesWithTheProvider(t *testing.T) {
	type step struct {
		name    string
		advance time.Duration     // the clock moves first
		server  func(*jwksServer) // then the provider changes
		publish []string          // then the JWKS lists these kids (nil: unchanged)
		kid     string            // a token naming this kid
		signer  string            // signed by this kid's key (default: kid's)
		want    string            // verified, rejected or unavailable
		calls   int               // JWKS requests so far
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a key published after the last fetch verifies at its first use", []step{
			{name: "first sign-in", kid: "k1", want: "verified", calls: 1},
			{name: "the provider adds k2 and signs with it", advance: time.Second, publish: []string{"k1", "k2"}, kid: "k2", want: "verified", calls: 2},
			{name: "k1 still verifies", kid: "k1", want: "verified", calls: 2},
			{name: "and k3 a second later", advance: time.Second, publish: []string{"k1", "k2", "k3"}, kid: "k3", want: "verified", calls: 3},
		}},
		{"a made-up key id does not block a new key for longer than 10 s", []step{
			{name: "first sign-in", kid: "k1", want: "verified", calls: 1},
			{name: "made-up kid", kid: "made-up", want: "rejected", calls: 2},
			{name: "the provider adds k2 a second later", advance: time.Second, publish: []string{"k1", "k2"}, kid: "k2", want: "rejected", calls: 2},
			{name: "10 s after the made-up kid", advance: 9 * time.Second, kid: "k2", want: "verified", calls: 3},
			{name: "the next made-up kid at once", kid: "made-up-2", want: "rejected", calls: 4},
			{name: "and another", kid: "made-up-3", want: "rejected", calls: 4},
		}},
		{"made-up key ids cost one JWKS request per 10 s", []step{
			{name: "first sign-in", kid: "k1", want: "verified", calls: 1},
			{name: "made-up kid", kid: "made-up-1", want: "rejected", calls: 2},
			{name: "another made-up kid", kid: "made-up-2", want: "rejected", calls: 2},
			{name: "the same made-up kid", kid: "made-up-1", want: "rejected", calls: 2},
			{name: "9 s later", advance: 9 * time.Second, kid: "made-up-3", want: "rejected", calls: 2},
			{name: "10 s later", advance: time.Second, kid: "made-up-4", want: "rejected", calls: 3},
			{name: "known keys never cause a request", kid: "k1", want: "verified", calls: 3},
		}},
		{"a removed key stops verifying when the set expires", []step{
			{name: "first sign-in", server: cacheControl("public, max-age=60"), kid: "k1", want: "verified", calls: 1},
			{name: "the provider replaces k1 by k2", publish: []string{"k2"}, advance: 30 * time.Second, kid: "k1", want: "verified", calls: 1},
			{name: "after max-age", advance: 31 * time.Second, kid: "k1", want: "rejected", calls: 2},
			{name: "k2 verifies", kid: "k2", want: "verified", calls: 2},
		}},
		{"a removed key stops verifying at the refetch for a new one", []step{
			{name: "first sign-in", server: cacheControl("max-age=3600"), kid: "k1", want: "verified", calls: 1},
			{name: "the provider replaces k1 by k2", publish: []string{"k2"}, kid: "k2", want: "verified", calls: 2},
			{name: "k1 is gone (one refetch: the last one found its key)", kid: "k1", want: "rejected", calls: 3},
			{name: "and stays gone without another request", kid: "k1", want: "rejected", calls: 3},
		}},
		{"the set is fetched again after 15 minutes without caching headers", []step{
			{name: "first sign-in", kid: "k1", want: "verified", calls: 1},
			{name: "14 minutes later", advance: 14 * time.Minute, kid: "k1", want: "verified", calls: 1},
			{name: "15 minutes later", advance: time.Minute, kid: "k1", want: "verified", calls: 2},
		}},
		{"no-store is cached for 5 s", []step{
			{name: "first sign-in", server: cacheControl("no-store"), kid: "k1", want: "verified", calls: 1},
			{name: "4 s later", advance: 4 * time.Second, kid: "k1", want: "verified", calls: 1},
			{name: "5 s later", advance: time.Second, kid: "k1", want: "verified", calls: 2},
		}},
		{"a failed refetch keeps the last good keys and says unavailable for new ones", []step{
			{name: "first sign-in", server: cacheControl("max-age=60"), kid: "k1", want: "verified", calls: 1},
			{name: "JWKS down after the set expired", advance: time.Minute, server: down(http.StatusServiceUnavailable), kid: "k1", want: "verified", calls: 2},
			{name: "a new key meanwhile", publish: []string{"k1", "k2"}, kid: "k2", want: "unavailable", calls: 2},
			{name: "a known key with a bad signature is still a forgery", kid: "k1", signer: "attacker", want: "rejected", calls: 2},
			{name: "retried after 1 s", advance: time.Second, kid: "k2", want: "unavailable", calls: 3},
			{name: "then after 2 s", advance: time.Second, kid: "k2", want: "unavailable", calls: 3},
			{name: "the provider is back", advance: time.Second, server: healthy, kid: "k2", want: "verified", calls: 4},
		}},
		{"a first fetch that fails is retried within seconds, not a minute", []step{
			{name: "JWKS down", server: down(http.StatusInternalServerError), kid: "k1", want: "unavailable", calls: 1},
			{name: "at once", kid: "k1", want: "unavailable", calls: 1},
			{name: "back 1 s later", advance: time.Second, server: healthy, kid: "k1", want: "verified", calls: 2},
		}},
		{"retries back off up to a minute", []step{
			{name: "JWKS down", server: down(http.StatusBadGateway), kid: "k1", want: "unavailable", calls: 1},
			{name: "+1 s", advance: time.Second, kid: "k1", want: "unavailable", calls: 2},
			{name: "+2 s", advance: 2 * time.Second, kid: "k1", want: "unavailable", calls: 3},
			{name: "+4 s", advance: 4 * time.Second, kid: "k1", want: "unavailable", calls: 4},
			{name: "+8 s", advance: 8 * time.Second, kid: "k1", want: "unavailable", calls: 5},
			{name: "+16 s", advance: 16 * time.Second, kid: "k1", want: "unavailable", calls: 6},
			{name: "+32 s", advance: 32 * time.Second, kid: "k1", want: "unavailable", calls: 7},
			{name: "+59 s", advance: 59 * time.Second, kid: "k1", want: "unavailable", calls: 7},
			{name: "+60 s", advance: time.Second, kid: "k1", want: "unavailable", calls: 8},
			{name: "+60 s again", advance: time.Minute, kid: "k1", want: "unavailable", calls: 9},
		}},
		{"garbage answers keep the last good keys", []step{
			{name: "first sign-in", server: cacheControl("max-age=60"), kid: "k1", want: "verified", calls: 1},
			{name: "HTML", advance: time.Minute, server: answering("text/html", "<h1>maintenance</h1>"), kid: "k1", want: "verified", calls: 2},
			{name: "an empty set", advance: 2 * time.Second, server: answering("application/json", `{"keys":[]}`), kid: "k1", want: "verified", calls: 3},
			{name: "over 1 MiB", advance: 4 * time.Second, server: answering("application/json", `{"keys":[`+strings.Repeat(" ", MaxBody)+`]}`), kid: "k1", want: "verified", calls: 4},
			{name: "a new kid meanwhile", publish: []string{"k2"}, kid: "k2", want: "unavailable", calls: 4},
		}},
		{"stale keys serve at most 24 hours past their lifetime", []step{
			{name: "first sign-in", server: cacheControl("max-age=60"), kid: "k1", want: "verified", calls: 1},
			{name: "down for a day", advance: time.Minute + 23*time.Hour, server: down(http.StatusServiceUnavailable), kid: "k1", want: "verified", calls: 2},
			{name: "down for over a day", advance: time.Hour + time.Second, kid: "k1", want: "unavailable", calls: 3},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newJWKSServer(t, "k1")
			clock := storetest.NewClock()
			d := verifierFor(s, clock, 2*time.Second)
			for _, st := range tt.steps {
				clock.Advance(st.advance)
				if st.server != nil {
					s.set(st.server)
				}
				if st.publish != nil {
					s.publish(st.publish...)
				}
				raw := s.token(st.kid, cmp.Or(st.signer, st.kid))
				_, err := d.verify(context.Background(), &oidc.Config{ClientID: testClientID}, raw, "id_token")
				if got := verdict(err); got != st.want {
					t.Fatalf("%s: %s (%v), want %s", st.name, got, err, st.want)
				}
				if n := s.count(); n != st.calls {
					t.Fatalf("%s: %d JWKS requests so far, want %d", st.name, n, st.calls)
				}
			}
		})
	}
}

func TestCachePolicy_FollowsCachingHeaders(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none: 15 minutes", nil, 15 * time.Minute},
		{"max-age", map[string]string{"Cache-Control": "max-age=600"}, 10 * time.Minute},
		{"Google's", map[string]string{"Cache-Control": "public, max-age=21405, must-revalidate, no-transform"}, 21405 * time.Second},
		{"quoted max-age", map[string]string{"Cache-Control": `max-age="600"`}, 10 * time.Minute},
		{"max-age less Age", map[string]string{"Cache-Control": "max-age=600", "Age": "100"}, 500 * time.Second},
		{"max-age wins over Expires", map[string]string{"Cache-Control": "max-age=600", "Expires": at(time.Hour), "Date": at(0)}, 10 * time.Minute},
		{"no-store", map[string]string{"Cache-Control": "no-store"}, 5 * time.Second},
		{"no-cache beside max-age", map[string]string{"Cache-Control": "max-age=600, no-cache"}, 5 * time.Second},
		{"max-age=0", map[string]string{"Cache-Control": "max-age=0"}, 5 * time.Second},
		{"Age beyond max-age", map[string]string{"Cache-Control": "max-age=60", "Age": "3600"}, 5 * time.Second},
		{"a year: capped at 24 hours", map[string]string{"Cache-Control": "max-age=31536000"}, 24 * time.Hour},
		{"beyond int64", map[string]string{"Cache-Control": "max-age=99999999999999999999"}, 15 * time.Minute},
		{"negative max-age is ignored", map[string]string{"Cache-Control": "max-age=-5"}, 15 * time.Minute},
		{"Expires against Date", map[string]string{"Expires": at(2 * time.Hour), "Date": at(time.Hour)}, time.Hour},
		{"Expires against now without Date", map[string]string{"Expires": at(30 * time.Minute)}, 30 * time.Minute},
		{"Expires in the past", map[string]string{"Expires": at(-time.Hour)}, 5 * time.Second},
		{"Expires that does not parse", map[string]string{"Expires": "0"}, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if got := jwksCache.lifetime(h, now); got != tt.want {
				t.Errorf("lifetime = %v, want %v", got, tt.want)
			}
		})
	}
}

// A JWKS that hangs costs one request for everyone at once, bounded by the
// provider timeout, and the last good keys verify meanwhile; a caller that
// gives up does not make the fetch fail for the others.
func TestKeySet_HangingJWKS(t *testing.T) {
	s := newJWKSServer(t, "k1")
	clock := storetest.NewClock()
	d := verifierFor(s, clock, 300*time.Millisecond)
	cfg := func() *oidc.Config { return &oidc.Config{ClientID: testClientID} }
	if _, err := d.verify(context.Background(), cfg(), s.token("k1", "k1"), "id_token"); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	s.set(func(s *jwksServer) { s.hang = release })
	clock.Advance(time.Hour)

	impatient, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	verdicts := make([]string, 10)
	for i := range verdicts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if i == 0 {
				ctx = impatient
			}
			_, err := d.verify(ctx, cfg(), s.token("k1", "k1"), "id_token")
			verdicts[i] = verdict(err)
		}()
	}
	wg.Wait()
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("verifications took %v with a hanging JWKS, want about the 300 ms timeout", elapsed)
	}
	for i, v := range verdicts {
		if v != "verified" {
			t.Errorf("verification %d during the hang: %s, want verified with the last good key", i, v)
		}
	}
	if n := s.count(); n != 2 {
		t.Errorf("%d JWKS requests, want 2 (one before the hang, one shared during it)", n)
	}
	// The hang counted as a failure: retried after 1 s, not at once.
	if _, err := d.verify(context.Background(), cfg(), s.token("k2", "k2"), "id_token"); verdict(err) != "unavailable" {
		t.Errorf("a new kid while the JWKS hangs: %v, want unavailable", err)
	}
	if n := s.count(); n != 2 {
		t.Errorf("%d JWKS requests, want no retry before the backoff ends", n)
	}
}

// Concurrent tokens with a key the set does not have share one refetch:
// twenty with a key published since the last fetch, then twenty with
// made-up key ids.
func TestKeySet_ConcurrentUnknownKidsShareOneFetch(t *testing.T) {
	s := newJWKSServer(t, "k1")
	d := verifierFor(s, storetest.NewClock(), 2*time.Second)
	verifyAll := func(kid, want string) {
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				kid := strings.ReplaceAll(kid, "#", string(rune('a'+i)))
				_, err := d.verify(context.Background(), &oidc.Config{ClientID: testClientID}, s.token(kid, kid), "id_token")
				if verdict(err) != want {
					t.Errorf("%s: %v, want %s", kid, err, want)
				}
			}()
		}
		wg.Wait()
	}
	verifyAll("k1", "verified")
	s.publish("k1", "k2")
	verifyAll("k2", "verified")
	if n := s.count(); n != 2 {
		t.Errorf("%d JWKS requests, want 2 (the first, then one shared refetch)", n)
	}
	verifyAll("made-up-#", "rejected")
	if n := s.count(); n != 3 {
		t.Errorf("%d JWKS requests, want 3: made-up key ids cost one refetch together", n)
	}
}
