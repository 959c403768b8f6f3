package caddymodule_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/socialgate/socialgate/caddymodule"
	"github.com/socialgate/socialgate/caddymodule/internal/testop"
	"github.com/socialgate/socialgate/internal/testkit"
)

// These tests drive the gateway through a real Caddy server over real HTTP.
// Caddy's running config is process-global, so they never run in parallel.

// env is one running gateway: Caddy on a loopback port in front of a
// recording upstream, with its own store and dev provider.
type env struct {
	t        *testing.T
	Base     string // the protected site, http://127.0.0.1:PORT
	DevURL   string // the dev provider's issuer
	Storage  string
	Upstream *upstream
	port     int
	devPort  int
	handler  string // lines inside the site's socialgate block
	corp     string // a provider block kept across reloads
}

// secrets are values that must never appear in the gateway's logs: every
// cookie the gateway set, every code and nonce that passed through a test
// browser, and what tests register with watchSecrets.
var secrets struct {
	sync.Mutex
	values  []string
	sources []func() []string
}

func recordSecret(v string) {
	if len(v) < 12 { // short values (like "1") match by chance
		return
	}
	secrets.Lock()
	secrets.values = append(secrets.values, v)
	secrets.Unlock()
}

// watchSecrets adds a source of secrets (a provider's issued tokens).
func watchSecrets(source func() []string) {
	secrets.Lock()
	secrets.sources = append(secrets.sources, source)
	secrets.Unlock()
}

// checkLogForSecrets fails the test if the debug log holds any secret.
func checkLogForSecrets(t *testing.T, logFile string) {
	data, err := os.ReadFile(logFile)
	if err != nil {
		return // nothing was logged
	}
	secrets.Lock()
	values := append([]string{apiKey}, secrets.values...)
	for _, src := range secrets.sources {
		values = append(values, src()...)
	}
	secrets.Unlock()
	for _, line := range strings.Split(string(data), "\n") {
		for _, v := range values {
			if len(v) >= 12 && strings.Contains(line, v) {
				var entry struct{ Logger, Msg string }
				json.Unmarshal([]byte(line), &entry)
				t.Errorf("the debug log leaks a secret (%.6s…) in logger %q, message %q", v, entry.Logger, entry.Msg)
			}
		}
	}
}

// options shape the Caddyfile of an env.
type options struct {
	Server string // extra lines in the global options, outside socialgate
	Global string // extra lines inside the socialgate global option
	Site   string // extra lines in the site block, before socialgate
	Proxy  string // extra lines inside reverse_proxy
	NoDev  bool   // run without the dev provider
	Dev    string // lines inside the dev provider's block
	TLS    bool   // serve the site over HTTPS (testCert); Base is https://
	// Body replaces the site block's socialgate and reverse_proxy, with
	// localhost:3000 standing for the upstream (as in the recipes of docs/recipes.md).
	Body string
}

func newEnv(t *testing.T, o options) *env {
	t.Helper()
	e := &env{t: t, Storage: t.TempDir(), Upstream: newUpstream(t), port: testkit.FreePort(t), devPort: testkit.FreePort(t)}
	e.Base = fmt.Sprintf("%s://127.0.0.1:%d", e.scheme(o), e.port)
	e.DevURL = fmt.Sprintf("http://127.0.0.1:%d", e.devPort)
	if err := e.Load(o); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	e.stopAtCleanup()
	return e
}

// stopAtCleanup stops Caddy when the test ends, then checks that its debug
// log holds no secret.
func (e *env) stopAtCleanup() {
	e.t.Cleanup(func() {
		stopCaddy()
		checkLogForSecrets(e.t, filepath.Join(e.Storage, "debug.log"))
	})
}

// startOP starts a local provider whose issued tokens the leak check knows.
func startOP(t *testing.T, o testop.Options) *testop.Server {
	op := testop.Start(t, o)
	watchSecrets(op.Secrets)
	return op
}

func stopCaddy() { caddy.Stop() }

// Caddyfile renders the env's config with o.
// ownStorage matches options that name their own store.
var ownStorage = regexp.MustCompile(`(?m)^\s*storage\s`)

func (e *env) Caddyfile(o options) string {
	dev := fmt.Sprintf("dev_provider 127.0.0.1:%d {\n\t\t\t%s\n\t\t}", e.devPort, o.Dev)
	if o.NoDev {
		dev = ""
	}
	// One store: the env's directory, unless the options name another.
	storage := "storage " + e.Storage + "/socialgate"
	if ownStorage.MatchString(o.Global) {
		storage = ""
	}
	site := o.Site
	if o.TLS {
		site = tlsDirective(e.t, e.Storage) + "\n\t" + site
	}
	return fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	log {
		output file %[1]s/debug.log
		level DEBUG
		%[8]s
	}
	storage file_system %[1]s/caddy
	%[7]s
	socialgate {
		%[10]s
		%[2]s
		%[3]s
	}
}
%[9]s://127.0.0.1:%[4]d {
	%[5]s
	%[6]s
}
`, e.Storage, dev, o.Global, e.port, site, e.body(o), o.Server, logFilter(e.t), e.scheme(o), storage)
}

// body is the site block's socialgate and reverse_proxy.
func (e *env) body(o options) string {
	if o.Body != "" {
		return strings.ReplaceAll(o.Body, "localhost:3000", e.Upstream.Addr())
	}
	return fmt.Sprintf("socialgate {\n\t\t%s\n\t}\n\treverse_proxy %s {\n\t\t%s\n\t}", e.handler, e.Upstream.Addr(), o.Proxy)
}

func (e *env) scheme(o options) string {
	if o.TLS {
		return "https"
	}
	return "http"
}

// Load adapts and loads a config for this env (a reload when one is running).
func (e *env) Load(o options) error {
	if err := loadCaddyfile(e.Caddyfile(o)); err != nil {
		return err
	}
	e.settle()
	return nil
}

// settle waits until the site answers three requests in a row on fresh
// connections: right after a reload, Caddy's retiring servers may still
// reset a connection or two (each config binds its own SO_REUSEPORT socket).
func (e *env) settle() {
	tr := testTransport().Clone()
	tr.DisableKeepAlives = true
	c := &http.Client{Transport: tr, Timeout: time.Second}
	deadline := time.Now().Add(3 * time.Second)
	for ok := 0; ok < 3 && time.Now().Before(deadline); {
		resp, err := c.Get(e.Base + "/_auth/health")
		if err == nil {
			resp.Body.Close()
			ok++
			continue
		}
		ok = 0
		time.Sleep(20 * time.Millisecond)
	}
}

func loadCaddyfile(src string) error {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return fmt.Errorf("adapting: %w", err)
	}
	err = caddy.Load(cfg, true)
	waitRetiredListeners()
	// A reload retires the old servers and their keep-alive connections; a
	// client that reuses one may be reset (Caddy's behaviour, not ours): the
	// test clients start on fresh connections instead.
	http.DefaultClient.CloseIdleConnections()
	browsers.Range(func(b, _ any) bool {
		b.(*browser).c.CloseIdleConnections()
		return true
	})
	return err
}

// browsers are the live test browsers, whose idle connections a reload closes.
var browsers sync.Map

// upstream records every request that reaches the app behind the gateway.
type upstream struct {
	srv      *httptest.Server
	mu       sync.Mutex
	seen     []http.Header
	trailers []http.Header // of each request, after its body
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // trailers come after the body
		for k, v := range r.Header {
			if k == "Authorization" || k == "X-Auth-Jwt" || strings.HasPrefix(k, "X-Auth-Token-") {
				for _, s := range v {
					recordSecret(strings.TrimPrefix(s, "Bearer "))
				}
			}
		}
		u.mu.Lock()
		h := r.Header.Clone()
		h.Set("X-Test-Path", r.URL.RequestURI())
		u.seen = append(u.seen, h)
		u.trailers = append(u.trailers, r.Trailer.Clone())
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "upstream saw %s as %s", r.URL.Path, r.Header.Get("X-Auth-User-Id"))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) Addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

// Requests returns the headers of every request the upstream received.
func (u *upstream) Requests() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.seen...)
}

// LastTrailer returns the trailers of the latest upstream request.
func (u *upstream) LastTrailer() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.trailers) == 0 {
		return nil
	}
	return u.trailers[len(u.trailers)-1]
}

// Last returns the headers of the latest upstream request.
func (u *upstream) Last(t *testing.T) http.Header {
	t.Helper()
	r := u.Requests()
	if len(r) == 0 {
		t.Fatal("the upstream received no request")
	}
	return r[len(r)-1]
}

// browser is testkit's browser, which keeps cookies and does not follow
// redirects by itself, so tests see every hop; what it adds is the test's:
// a failed request fails t, a GET is retried around Caddy's reloads, and
// every secret it sees is recorded for the leak checks.
type browser struct {
	t  *testing.T
	c  *http.Client // tb's client
	tb *testkit.Browser
}

func newBrowser(t *testing.T) *browser {
	tb := testkit.NewBrowser(testTransport())
	tb.Client.Timeout = 0 // the test's own timeout bounds it
	b := &browser{t: t, c: tb.Client, tb: tb}
	browsers.Store(b, true)
	t.Cleanup(func() { browsers.Delete(b) })
	return b
}

// do sends a request and returns the response with its body read.
func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "text/html,application/xhtml+xml")
	}
	resp, err := b.c.Do(req)
	// Like a real browser, retry an idempotent request whose connection
	// broke before any answer (Caddy resets a few around reloads).
	for try := 0; err != nil && req.Method == http.MethodGet && try < 3; try++ {
		time.Sleep(20 * time.Millisecond)
		resp, err = b.c.Do(req)
	}
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		recordSecret(c.Value)
	}
	if loc, err := resp.Location(); err == nil {
		q := loc.Query()
		for _, k := range []string{"code", "state", "nonce", "code_challenge", "rotating_token_nonce", "code_verifier"} {
			recordSecret(q.Get(k))
		}
	}
	return resp, string(body)
}

func (b *browser) get(rawURL string) (*http.Response, string) {
	b.t.Helper()
	return b.send(http.MethodGet, rawURL, nil)
}

func (b *browser) post(rawURL string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	return b.send(http.MethodPost, rawURL, form)
}

// send is do of testkit.NewRequest: a form when form is not nil.
func (b *browser) send(method, rawURL string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, err := testkit.NewRequest(context.Background(), method, rawURL, form)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// location resolves a redirect's Location against the request URL.
func location(t *testing.T, resp *http.Response) string {
	t.Helper()
	loc, err := testkit.Next(resp)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// follow follows redirects with GETs until a non-redirect answer.
func (b *browser) follow(resp *http.Response, body string) (*http.Response, string) {
	b.t.Helper()
	for i := 0; resp.StatusCode >= 300 && resp.StatusCode <= 399; i++ {
		if i == 10 {
			b.t.Fatal("too many redirects")
		}
		resp, body = b.get(location(b.t, resp))
	}
	return resp, body
}

// startSignIn opens a protected path, lands on the sign-in page and presses
// the button of provider; it returns the provider's authorization redirect.
func (b *browser) startSignIn(e *env, path, providerName string) *http.Response {
	b.t.Helper()
	resp, _ := b.get(e.Base + path)
	signIn := location(b.t, resp)
	if !strings.Contains(signIn, "/_auth/sign-in?return_to=") {
		b.t.Fatalf("unauthenticated browser sent to %s, want the sign-in page", signIn)
	}
	resp, page := b.get(signIn)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("sign-in page: status %d", resp.StatusCode)
	}
	action, returnTo, err := testkit.SignInButton(page, providerName)
	if err != nil {
		b.t.Fatalf("%v:\n%s", err, page)
	}
	resp, _ = b.post(e.Base+action, url.Values{"return_to": {returnTo}})
	return resp
}

// signInDev signs in through the dev provider as the given person and
// returns the final response (the protected page).
func (b *browser) signInDev(e *env, path string, person url.Values) (*http.Response, string) {
	b.t.Helper()
	authURL := location(b.t, b.startSignIn(e, path, "dev"))
	if !strings.HasPrefix(authURL, e.DevURL+"/authorize?") {
		b.t.Fatalf("start sent the browser to %s, want the dev provider", authURL)
	}
	resp, body, _ := b.atDevProvider(authURL, person)
	return b.follow(resp, body)
}

// atDevProvider opens authURL, the sign-in page of one of the dev provider's
// identities, and signs in there as the given person. It returns the
// provider's answer (a redirect back) and the page it showed.
func (b *browser) atDevProvider(authURL string, person url.Values) (*http.Response, string, string) {
	b.t.Helper()
	resp, page := b.get(authURL)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Ada Lovelace") {
		b.t.Fatalf("dev provider page %s: status %d", authURL, resp.StatusCode)
	}
	u, _ := url.Parse(authURL)
	form := u.Query()
	for k, v := range person {
		form[k] = v
	}
	u.RawQuery = ""
	resp, body := b.post(u.String(), form)
	return resp, body, page
}

var ada = testkit.Ada

func person(name, email string, verified bool) url.Values {
	v := url.Values{"name": {name}, "email": {email}}
	if verified {
		v.Set("email_verified", "on")
	}
	return v
}

// cookie returns the value of the browser's cookie name for rawURL.
func (b *browser) cookie(rawURL, name string) string {
	return b.tb.Cookie(rawURL, name)
}

// apiGet sends a non-browser request and decodes a JSON answer.
func apiGet(t *testing.T, c *http.Client, rawURL string, header http.Header) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	req.Header.Set("Accept", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// postJSON posts body as JSON, without cookies, and decodes the JSON answer.
func postJSON(t *testing.T, rawURL string, body any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(rawURL, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
