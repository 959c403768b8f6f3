package provider

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
)

// What providers answer, fuzzed: token responses (code exchange and
// refresh), userinfo and emails documents, and ID tokens.
//
//	go test ./caddymodule/internal/provider -run '^$' -fuzz '^FuzzTokenResponse$' -fuzztime 60s
//	go test ./caddymodule/internal/provider -run '^$' -fuzz '^FuzzUserinfo$' -fuzztime 60s
//	go test ./caddymodule/internal/provider -run '^$' -fuzz '^FuzzIDToken$' -fuzztime 60s
//
// The fuzz engine runs targets in several processes, each with its own keys
// and servers: inputs carry placeholders ({{id_token}}, {iss}, {client},
// {nonce}) that each process fills with its own values.

// Distinctive secrets of the fuzzed exchanges: no error may carry them.
const (
	fzClientID = "fz-client"
	fzSecret   = "fz-secret-b81d44e0"
	fzCode     = "fz-code-7f3a9c1e55"
	fzRefresh  = "fz-refresh-51c0aa93"
	fzVerifier = "fz-verifier-0123456789abcdefghijklmnopqrstuvwxyz"
	fzNonce    = "fz-nonce-c0ffee42"
	fzKid      = "fz-key"
	fzSub      = "fz-sub-1"
)

var (
	fzKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
		var k [2]*rsa.PrivateKey
		for i := range k {
			var err error
			if k[i], err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
		return k
	})
	fzStatuses = []int{200, 200, 200, 201, 204, 302, 400, 401, 403, 429, 500, 502, 503}
)

// fzAnswer is what a fuzzed endpoint says next.
type fzAnswer struct {
	status int
	ctype  string
	body   []byte
}

// fzOP is one provider server for the fuzz targets: discovery (advertising
// none and HS256, which must be ignored), a JWKS with one key, and token,
// userinfo and emails endpoints that answer what the target sets.
type fzOP struct {
	srv *httptest.Server

	mu      sync.Mutex
	answers map[string]fzAnswer
	calls   map[string]int
}

func newFzOP(tb testing.TB) *fzOP {
	tb.Helper()
	op := &fzOP{answers: map[string]fzAnswer{}, calls: map[string]int{}}
	op.srv = httptest.NewServer(http.HandlerFunc(op.serve))
	tb.Cleanup(op.srv.Close)
	return op
}

func (op *fzOP) url(path string) string { return op.srv.URL + path }

func (op *fzOP) set(path string, a fzAnswer) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.answers[path] = a
}

func (op *fzOP) count(path string) int {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.calls[path]
}

func (op *fzOP) serve(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	op.mu.Lock()
	op.calls[r.URL.Path]++
	a, ok := op.answers[r.URL.Path]
	op.mu.Unlock()
	switch {
	case r.URL.Path == "/.well-known/openid-configuration":
		writeFzJSON(w, map[string]any{
			"issuer": op.url(""), "authorization_endpoint": op.url("/authorize"), "token_endpoint": op.url("/token"),
			"userinfo_endpoint": op.url("/userinfo"), "jwks_uri": op.url("/jwks"),
			"id_token_signing_alg_values_supported": []string{"none", "HS256", "RS256"},
		})
	case r.URL.Path == "/jwks":
		writeFzJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: fzKeys()[0].Public(), KeyID: fzKid, Algorithm: "RS256", Use: "sig"}}})
	case ok:
		if a.ctype != "" {
			w.Header().Set("Content-Type", a.ctype)
		}
		w.WriteHeader(a.status)
		w.Write(a.body)
	default:
		http.NotFound(w, r)
	}
}

func writeFzJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// fzIDToken signs claims as the provider does, adding the defaults a valid
// ID token of this flow has.
func fzIDToken(issuer string, claims map[string]any) string {
	now := time.Now().Unix()
	c := map[string]any{"iss": issuer, "sub": fzSub, "aud": fzClientID, "nonce": fzNonce, "iat": now, "exp": now + 3600}
	for k, v := range claims {
		c[k] = v
	}
	payload, _ := json.Marshal(c)
	return fzSign(map[string]any{"alg": "RS256", "kid": fzKid, "typ": "JWT"}, payload, "RS256", fzKeys()[0])
}

// fzSign builds a compact JWS whose header says what header says, signed
// the way method says (RS256 with key, HS256 with key as the secret, none).
func fzSign(header map[string]any, payload []byte, method string, key any) string {
	h, _ := json.Marshal(header)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(payload)
	var sig []byte
	switch method {
	case "none":
	case "HS256":
		mac := hmac.New(sha256.New, key.([]byte))
		mac.Write([]byte(input))
		sig = mac.Sum(nil)
	default:
		sum := sha256.Sum256([]byte(input))
		sig, _ = rsa.SignPKCS1v15(nil, key.(*rsa.PrivateKey), crypto.SHA256, sum[:])
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// fzProfiles turns fuzzed profiles into sessions, the way a callback does,
// to check what reaches the identity headers.
type fzProfiles struct {
	st       *badger.Store
	sessions *session.Manager
}

type fzQuiet struct{}

func (fzQuiet) Errorf(string, ...any)   {}
func (fzQuiet) Warningf(string, ...any) {}
func (fzQuiet) Infof(string, ...any)    {}
func (fzQuiet) Debugf(string, ...any)   {}

func newFzProfiles(tb testing.TB) *fzProfiles {
	st, err := badger.Open(badger.Options{InMemory: true, Logger: fzQuiet{}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	m, err := session.NewManager(st, [][]byte{bytes.Repeat([]byte("k"), 32)}, time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return &fzProfiles{st: st, sessions: m}
}

// check records a verified result as a callback would and checks the
// session that the identity headers are built from.
func (fp *fzProfiles) check(t *testing.T, p *Provider, res *Result) {
	t.Helper()
	prof := res.Profile
	if prof.Subject == "" {
		t.Fatalf("a result without a subject: %+v", prof)
	}
	if prof.EmailVerified && prof.Email == "" {
		t.Fatalf("email_verified without an email: %+v", prof)
	}
	if p.pre.email == emailNever && prof.EmailVerified {
		t.Fatalf("%s never verifies emails, yet the profile says verified: %+v", p.Name(), prof)
	}
	ctx := context.Background()
	out, err := fp.st.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: p.Name(), Issuer: res.Issuer,
		Subject: prof.Subject, Email: prof.Email, EmailVerified: prof.EmailVerified, Name: prof.Name,
		Username: prof.Username, ImageURL: prof.ImageURL}})
	if err != nil {
		// The callback would answer 500 for a profile the provider code accepted.
		t.Fatalf("a profile Exchange accepted cannot be recorded: %v\nprofile %+v", err, prof)
	}
	s, err := fp.sessions.Start(ctx, httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil), out.User, nil, session.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"X-Auth-User-Id": s.UserID, "X-Auth-User-Email": s.Email, "X-Auth-User-Name": s.Name} {
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] == 0x7f {
				t.Fatalf("%s would carry control byte %#x: %q (profile %+v)", name, v[i], v, prof)
			}
		}
	}
}

// checkErr holds for every failed exchange or refresh: a kind the caller
// can tell apart, and no secret of the request in the message.
func checkErr(t *testing.T, err error, answered string) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrRejected) {
		t.Fatalf("error %q is neither ErrUnavailable nor ErrRejected", err)
	}
	if errors.Is(err, ErrInvalidGrant) && !errors.Is(err, ErrRejected) {
		t.Fatalf("ErrInvalidGrant without ErrRejected: %v", err)
	}
	for _, secret := range []string{fzCode, fzSecret, fzRefresh, fzVerifier, fzNonce} {
		// A provider may echo what it likes; the gateway must not add it.
		if strings.Contains(err.Error(), secret) && !strings.Contains(answered, secret) {
			t.Fatalf("error %q carries a secret of the request", err)
		}
	}
}

func fzCallback() Callback {
	return Callback{Code: fzCode, RedirectURL: "https://app.example/_auth/oauth/x/callback", Verifier: fzVerifier,
		Nonce: fzNonce, Scopes: []string{"extra"}}
}

// fzProvider builds a provider of kind pointed at op.
func fzProvider(tb testing.TB, op *fzOP, name, kind string, cfg Config) *Provider {
	tb.Helper()
	cfg.Name, cfg.Kind, cfg.ClientID, cfg.ClientSecret = name, kind, fzClientID, fzSecret
	if cfg.Issuer == "" && (kind == KindOIDC) {
		cfg.Issuer = op.url("")
	}
	if kind != KindOIDC {
		cfg.AuthURL, cfg.TokenURL = op.url("/authorize"), op.url("/token")
		if kind != "notion" {
			cfg.UserinfoURL = op.url("/userinfo")
		}
		if kind == "github" || kind == "bitbucket" {
			cfg.EmailsURL = op.url("/emails")
		}
	}
	p, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

var fzContentTypes = []string{
	"application/json", "application/json; charset=utf-8", "application/x-www-form-urlencoded", "text/plain",
	"text/html", "", "application/jwt", "application/json; charset=\"", "APPLICATION/JSON", "multipart/form-data; boundary=x",
}

// fzFill replaces the placeholders of a fuzzed body with this process's values.
func fzFill(op *fzOP, body []byte) []byte {
	if !bytes.Contains(body, []byte("{{")) {
		return body
	}
	return []byte(strings.NewReplacer(
		"{{id_token}}", fzIDToken(op.url(""), nil),
		"{{id_token_other_sub}}", fzIDToken(op.url(""), map[string]any{"sub": "someone-else"}),
		"{{server}}", op.url(""),
	).Replace(string(body)))
}

func FuzzTokenResponse(f *testing.F) {
	op := newFzOP(f)
	op.set("/userinfo", fzAnswer{200, "application/json", []byte(`{"id":42,"sub":"` + fzSub + `","login":"ada","email":"ada@example.com","name":"Ada"}`)})
	op.set("/emails", fzAnswer{200, "application/json", []byte(`[{"email":"ada@example.com","primary":true,"verified":true}]`)})
	providers := []*Provider{
		fzProvider(f, op, "github", "github", Config{}),
		fzProvider(f, op, "discord", "discord", Config{}),
		fzProvider(f, op, "notion", "notion", Config{}),
		fzProvider(f, op, "corp", KindOIDC, Config{}),
		fzProvider(f, op, "slack", "slack", Config{Issuer: op.url("")}),
	}
	fp := newFzProfiles(f)
	for _, s := range []struct {
		status, ctype uint8
		body          string
	}{
		{0, 0, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-2","scope":"read write","id_token":"{{id_token}}"}`},
		{0, 2, `access_token=at-1&token_type=bearer&scope=user%3Aemail%2Cread%3Aorg&expires_in=3600`},
		{0, 3, `access_token=at-1&refresh_token=rt-rotated`},
		{0, 0, `{"access_token":"at-1","expires_in":"3600","scope":["a","b"],"owner":{"user":{"id":"u-1","name":"N","person":{"email":"n@example.com"}}},"id_token":"{{id_token}}"}`},
		{0, 0, `{"error":"invalid_grant","error_description":"` + fzCode + ` is dead"}`},
		{0, 0, `{"ok":false,"error":"invalid_refresh_token"}`},
		{6, 0, `{"error":"invalid_grant"}`},
		{6, 0, `{"error":"bad_verification_code\r\nX: 1","message":"x"}`},
		{11, 0, `{"error":"server_error"}`},
		{10, 4, `<html><body>Bad Gateway</body></html>`},
		{0, 0, `{"access_token":""}`},
		{0, 0, `{"access_token":123,"expires_in":-1}`},
		{0, 0, `{"access_token":"at","expires_in":1e300}`},
		{0, 0, `{"access_token":"at","expires_in":"NaN"}`},
		{0, 0, `{"access_token":"at","expires_in":9223372036854775807}`},
		{0, 0, `["access_token"]`},
		{0, 0, `null`},
		{0, 0, `{"access_token":"at\u0000\r\nSet-Cookie: x=1","token_type":"Bearer","id_token":"{{id_token_other_sub}}"}`},
		{0, 0, `{"access_token":"at","id_token":"` + strings.Repeat("A", 5000) + `"}`},
		{0, 0, `{"access_token":"at","id_token":{"a":1}}`},
		{0, 5, `{"access_token":"at","token_type":"Bearer"}`},
		{0, 7, `{"access_token":"at"}`},
		{0, 8, `{"access_token":"at"}`},
		{4, 0, ``},
		{5, 0, `{"access_token":"at"}`},
		{0, 2, `access_token=%zz`},
		{0, 2, `error=invalid_grant&error=x`},
		{9, 0, `{"error":"slow_down"}`},
		{0, 0, `{"access_token":"at","scope":{"x":1},"refresh_token":["a"]}`},
		{0, 0, `{"access_token":"at",` + strings.Repeat(`"k":1,`, 2000) + `"z":0}`},
	} {
		for pick := uint8(0); pick < uint8(len(providers)); pick++ {
			f.Add(pick, s.status, s.ctype, []byte(s.body))
		}
	}
	f.Fuzz(func(t *testing.T, pick, status, ctype uint8, body []byte) {
		p := providers[int(pick)%len(providers)]
		body = fzFill(op, body)
		a := fzAnswer{fzStatuses[int(status)%len(fzStatuses)], fzContentTypes[int(ctype)%len(fzContentTypes)], body}
		op.set("/token", a)
		answered := string(body)
		res, err := p.Exchange(context.Background(), fzCallback())
		if err != nil {
			checkErr(t, err, answered)
		} else {
			if a.status < 200 || a.status > 299 {
				t.Fatalf("Exchange accepted an HTTP %d answer", a.status)
			}
			if res.Token == nil || res.Token.AccessToken == "" {
				t.Fatalf("Exchange succeeded without an access token: %+v", res.Token)
			}
			fp.check(t, p, res)
		}
		tok, err := p.Refresh(context.Background(), "", fzRefresh)
		if err != nil {
			checkErr(t, err, answered)
			return
		}
		if a.status < 200 || a.status > 299 || tok.AccessToken == "" {
			t.Fatalf("Refresh accepted HTTP %d with access token %q", a.status, tok.AccessToken)
		}
		// A rotated refresh token in a JSON answer is never lost.
		var doc map[string]any
		if json.Unmarshal(body, &doc) == nil && strings.Contains(a.ctype, "json") && !strings.Contains(strings.ToLower(a.ctype), "x-www") {
			if rt, ok := doc["refresh_token"].(string); ok && tok.RefreshToken != rt {
				t.Fatalf("the answer rotated the refresh token to %q, Refresh returned %q", rt, tok.RefreshToken)
			}
		}
		// An expiry, when there is one, is ahead and bounded (expires_in
		// above 2^31 s or not a number means none).
		if !tok.Expiry.IsZero() && (!tok.Expiry.After(time.Now()) || tok.Expiry.After(time.Now().Add((1<<31+60)*time.Second))) {
			t.Fatalf("expiry %v from %q", tok.Expiry, body)
		}
	})
}

func FuzzUserinfo(f *testing.F) {
	op := newFzOP(f)
	op.set("/token", fzAnswer{200, "application/json", []byte(`{"access_token":"at-u","token_type":"Bearer","id_token":"` +
		fzIDToken(op.url(""), map[string]any{"email": nil}) + `"}`)})
	providers := []*Provider{
		fzProvider(f, op, "spotify", "spotify", Config{}),
		fzProvider(f, op, "github", "github", Config{}),
		fzProvider(f, op, "bitbucket", "bitbucket", Config{}),
		fzProvider(f, op, "corp", KindOIDC, Config{}),
		fzProvider(f, op, "forge", KindOAuth2, Config{Mapping: Mapping{ID: "data.user.id", Email: "data.user.emails.0.address",
			EmailVerified: "data.user.emails.0.ok", Name: "data.user.name", Username: "data.user.login",
			Picture: "https://cdn.example/{data.user.id}/{data.user.avatar}.png"}}),
		fzProvider(f, op, "x", "x", Config{}),
	}
	fp := newFzProfiles(f)
	for _, s := range []struct {
		status, ctype uint8
		emails        bool
		body          string
	}{
		{0, 0, false, `{"id":"smedjan","display_name":"Sven","email":"s@example.com","images":[{"url":"https://i.example/a"}]}`},
		{0, 0, false, `{"id":583231,"login":"octocat","name":"The Octocat","email":"octocat@github.com"}`},
		{0, 0, true, `[{"email":"a@example.com","primary":true,"verified":true},{"email":"b@example.com","primary":false,"verified":true}]`},
		{0, 0, true, `{"values":[{"email":"a@example.com","is_primary":true,"is_confirmed":"true"}]}`},
		{0, 0, true, `[{"email":"","primary":true,"verified":true}]`},
		{0, 0, true, `[{"email":{"x":1},"primary":"yes","verified":1}]`},
		{0, 0, false, `{"sub":"` + fzSub + `","email":"u@example.com","email_verified":true,"name":"U"}`},
		{0, 0, false, `{"sub":"someone-else","email":"u@example.com","email_verified":true}`},
		{0, 0, false, `{"sub":1234,"email_verified":"yes"}`},
		{0, 0, false, `{"sub":"` + fzSub + `","email_verified":"TRUE","email":"a@b"}`},
		{0, 0, false, `{"data":{"user":{"id":12345678901234567890,"name":"Ada\r\nX-Auth-User-Id: admin","login":"ada","avatar":"../../x?y#z","emails":[{"address":"ada@example.com","ok":"true"}]}}}`},
		{0, 0, false, `{"data":{"user":{"id":"a/b\u0000c","name":"\u0000\u0007\u001b[31m\u007f","emails":[{"address":"","ok":true}]}}}`},
		{0, 0, false, `{"data":{"user":{"id":1.5e300,"emails":[]}}}`},
		{0, 0, false, `{"data":[{"user":1}]}`},
		{0, 0, false, `{"data":{"id":"2244994945","name":"Developers","username":"XDevelopers"}}`},
		{0, 0, false, `{"id":"` + strings.Repeat("9", 600) + `"}`},
		{0, 0, false, `{"id":"1","name":"` + strings.Repeat("\u00e9", 400) + `"}`},
		{0, 0, false, `{"id":true}`},
		{0, 0, false, `{"id":"1","email":"x@example.com","email_verified":true}`},
		{0, 4, false, `<html>rate limited</html>`},
		{9, 0, false, `{"error":"rate_limited"}`},
		{5, 0, false, `{"id":"1"}`},
		{0, 0, false, `"me"`},
		{0, 0, false, `[]`},
		{0, 0, false, `{"id":"1"} trailing`},
		{0, 0, false, `{"id":"1","id":"2"}`},
		{0, 0, false, `{"ID":"1","Sub":"` + fzSub + `"}`},
	} {
		for pick := uint8(0); pick < uint8(len(providers)); pick++ {
			f.Add(pick, s.status, s.ctype, s.emails, []byte(s.body))
		}
	}
	f.Fuzz(func(t *testing.T, pick, status, ctype uint8, emails bool, body []byte) {
		p := providers[int(pick)%len(providers)]
		a := fzAnswer{fzStatuses[int(status)%len(fzStatuses)], fzContentTypes[int(ctype)%len(fzContentTypes)], body}
		path := "/userinfo"
		op.set("/emails", fzAnswer{200, "application/json", []byte(`[{"email":"u@example.com","primary":true,"verified":true}]`)})
		if emails {
			path = "/emails"
			op.set("/userinfo", fzAnswer{200, "application/json", []byte(`{"id":7,"sub":"` + fzSub + `","login":"u","uuid":"{u}","username":"u"}`)})
		}
		op.set(path, a)
		res, err := p.Exchange(context.Background(), fzCallback())
		if err != nil {
			checkErr(t, err, string(body))
			return
		}
		if consulted := path == "/userinfo" || p.pre.email == emailFromList; consulted && a.status != http.StatusOK {
			t.Fatalf("Exchange accepted an HTTP %d %s", a.status, path)
		}
		if p.pre.oidc && path == "/userinfo" {
			// OIDC Core 5.3.2: userinfo names the ID token's subject.
			var doc struct {
				Sub any `json:"sub"`
			}
			if json.Unmarshal(body, &doc) != nil || doc.Sub != fzSub {
				t.Fatalf("Exchange accepted a userinfo whose sub is %v, not the ID token's", doc.Sub)
			}
		}
		fp.check(t, p, res)
	})
}

// idVerdict is what an ID token deserves, worked out in the test.
type idVerdict int

const (
	idValid   idVerdict = iota
	idInvalid           // must be rejected
	idUnsure            // too close to a time boundary to say
)

// occurrences returns the values of every top-level member whose name
// matches name case-insensitively, in order: encoding/json fills a struct
// field from each of them in turn (go-oidc and the gateway both decode
// claims into structs), so the last one wins and any of the wrong type
// fails the whole decoding.
func occurrences(members [][2]json.RawMessage, name string) []json.RawMessage {
	var out []json.RawMessage
	for _, m := range members {
		var k string
		json.Unmarshal(m[0], &k)
		if strings.EqualFold(k, name) {
			out = append(out, m[1])
		}
	}
	return out
}

// members lists a JSON object's members in order, or false.
func members(payload []byte) ([][2]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var out [][2]json.RawMessage
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k, _ := json.Marshal(t)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out = append(out, [2]json.RawMessage{k, v})
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return out, true
}

// seconds reads a JSON number, or with allowString a string holding one
// (go-oidc reads times as json.Number, which takes both).
func seconds(raw json.RawMessage, allowString bool) (float64, bool) {
	s := string(raw)
	if allowString && strings.HasPrefix(s, `"`) {
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil && !math.IsInf(f, 0)
}

// stringClaim reads a string claim: every occurrence a string or null (a
// null leaves the field as it was), the last string wins.
func stringClaim(ms [][2]json.RawMessage, name string) (string, bool) {
	v := ""
	for _, raw := range occurrences(ms, name) {
		var s *string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		if s != nil {
			v = *s
		}
	}
	return v, true
}

// timeClaim reads a time claim: every occurrence must parse, the last
// wins; null is allowed only where the field is a pointer (nullable).
func timeClaim(ms [][2]json.RawMessage, name string, allowString, nullable bool) (t float64, present, ok bool) {
	for _, raw := range occurrences(ms, name) {
		if string(raw) == "null" && nullable {
			present = false
			continue
		}
		f, good := seconds(raw, allowString)
		if !good {
			return 0, false, false
		}
		t, present = f, true
	}
	return t, present, true
}

// judgeIDToken decides an ID token from first principles (OIDC Core
// 3.1.3.7): one RS256 signature by the provider's key (kid absent or its
// own), iss exactly the issuer, aud containing the client, azp the client
// when present and required with several audiences, exp in the future, nbf
// and iat not in the future (5 minutes of skew), sub present, nonce the
// flow's. It returns the verified payload.
func judgeIDToken(raw, issuer string, now time.Time) (idVerdict, string, [][2]json.RawMessage) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return idInvalid, "not one RS256 signature", nil
	}
	if kid := jws.Signatures[0].Header.KeyID; kid != "" && kid != fzKid {
		return idInvalid, "unknown kid", nil
	}
	payload, err := jws.Verify(&fzKeys()[0].PublicKey)
	if err != nil {
		return idInvalid, "signature", nil
	}
	ms, ok := members(payload)
	if !ok {
		return idInvalid, "payload is not an object", nil
	}
	if iss, ok := stringClaim(ms, "iss"); !ok || iss != issuer {
		return idInvalid, "iss", ms
	}
	var aud []string
	for _, raw := range occurrences(ms, "aud") {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			aud = []string{one}
		} else if json.Unmarshal(raw, &aud) != nil {
			return idInvalid, "aud type", ms
		}
	}
	hasClient := false
	for _, a := range aud {
		hasClient = hasClient || a == fzClientID
	}
	if !hasClient {
		return idInvalid, "aud", ms
	}
	azp, ok := stringClaim(ms, "azp")
	if !ok || (azp != "" && azp != fzClientID) || (len(aud) > 1 && azp == "") {
		return idInvalid, "azp", ms
	}
	if sub, ok := stringClaim(ms, "sub"); !ok || sub == "" {
		return idInvalid, "sub", ms
	}
	if nonce, ok := stringClaim(ms, "nonce"); !ok || nonce != fzNonce {
		return idInvalid, "nonce", ms
	}
	verdict := idValid
	unix := float64(now.Unix())
	const skew = 5 * 60
	e, present, ok := timeClaim(ms, "exp", true, false)
	switch {
	case !ok || !present || e < unix-2:
		return idInvalid, "exp", ms
	case e < unix+2:
		verdict = idUnsure
	}
	n, present, ok := timeClaim(ms, "nbf", true, true)
	switch {
	case !ok || present && n > unix+skew+2:
		return idInvalid, "nbf", ms
	case present && n > unix+skew-2:
		verdict = idUnsure
	}
	// iat: go-oidc reads it as a time, the gateway as a bare number.
	if _, _, ok := timeClaim(ms, "iat", true, false); !ok {
		return idInvalid, "iat type", ms
	}
	i, present, ok := timeClaim(ms, "iat", false, false)
	switch {
	case !ok || !present || i > unix+skew+2:
		return idInvalid, "iat", ms
	case i > unix+skew-2:
		verdict = idUnsure
	}
	return verdict, "", ms
}

// fzTweak re-spells a compact token the ways parsers disagree on.
func fzTweak(raw string, how uint8) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return raw
	}
	switch how % 12 {
	case 1:
		parts[0] += "="
	case 2:
		parts[2] += "=="
	case 3:
		if n := len(parts[2]); n > 0 {
			b := []byte(parts[2])
			b[n-1] ^= 1
			parts[2] = string(b)
		}
	case 4:
		if p, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			parts[1] = base64.StdEncoding.EncodeToString(p)
		}
	case 5:
		parts[1] = " " + parts[1] + "\n"
	case 6:
		parts[2] = ""
	case 7:
		return raw + "."
	case 8:
		return parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[2]
	case 9:
		parts[0], parts[1] = parts[1], parts[0]
	case 10:
		return strings.ToUpper(raw[:1]) + raw[1:]
	case 11:
		return "Bearer " + raw
	}
	return strings.Join(parts, ".")
}

func FuzzIDToken(f *testing.F) {
	op := newFzOP(f)
	static := fzProvider(f, op, "static", KindOIDC, Config{AuthURL: op.url("/authorize"), TokenURL: op.url("/token"), JWKSURL: op.url("/jwks")})
	discovered := fzProvider(f, op, "discovered", KindOIDC, Config{})
	op.set("/userinfo", fzAnswer{404, "", nil}) // discovery names it; a valid token never gets there unless sub matches
	pubPEM := func() []byte {
		der, _ := x509.MarshalPKIXPublicKey(fzKeys()[0].Public())
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	type seed struct {
		raw                          string
		mode                         uint8
		alg, kid, iss, aud, azp, sub string
		nonce                        string
		exp, iat                     int64
		flags                        uint16
		hdrExtra, extra              string
	}
	good := seed{alg: "RS256", kid: fzKid, iss: "{iss}", aud: "{client}", sub: fzSub, nonce: "{nonce}", exp: 3600, iat: -10}
	with := func(edit func(s *seed)) seed { s := good; edit(&s); return s }
	seeds := []seed{
		good,
		with(func(s *seed) { s.kid = "" }),
		with(func(s *seed) { s.flags |= 1 << 14 }), // through discovery
		with(func(s *seed) { s.alg, s.flags = "none", 1<<11 }),
		with(func(s *seed) { s.alg, s.flags = "HS256", 1<<10 }),
		with(func(s *seed) { s.alg, s.flags = "HS256", 1<<10|1<<14 }),
		with(func(s *seed) { s.flags = 1 << 9 }),               // another key, same kid
		with(func(s *seed) { s.kid, s.flags = "other", 1<<9 }), // unknown kid
		with(func(s *seed) { s.alg = "RS512" }),                // header lies about the algorithm
		with(func(s *seed) { s.alg = "rs256" }),
		with(func(s *seed) { s.iss = "{iss}/" }),
		with(func(s *seed) { s.iss = "{ISS}" }),
		with(func(s *seed) { s.flags = 1 << 0 }), // no iss
		with(func(s *seed) { s.aud = "someone-else" }),
		with(func(s *seed) { s.flags = 1 << 2 }), // aud as a list of one
		with(func(s *seed) { s.flags = 1 << 3 }), // a second audience, no azp
		with(func(s *seed) { s.flags, s.azp = 1<<3, "{client}" }),
		with(func(s *seed) { s.flags, s.azp = 1<<3, "someone-else" }),
		with(func(s *seed) { s.azp = "someone-else" }),
		with(func(s *seed) { s.flags = 1 << 5 }), // no sub
		with(func(s *seed) { s.sub = "" }),
		with(func(s *seed) { s.flags = 1 << 6 }), // no nonce
		with(func(s *seed) { s.nonce = "another-flow" }),
		with(func(s *seed) { s.flags = 1 << 7 }), // no exp
		with(func(s *seed) { s.exp = -3600 }),
		with(func(s *seed) { s.flags = 1 << 8 }), // no iat
		with(func(s *seed) { s.iat = 3600 }),     // iat in the future
		with(func(s *seed) { s.iat = 290 }),
		with(func(s *seed) { s.flags = 1 << 12 }), // nbf = now + iat delta
		with(func(s *seed) { s.flags, s.iat = 1<<12, 7200 }),
		with(func(s *seed) { s.extra = `{"iat":1e300}` }), // beyond int64: TestIDToken_RejectsIatBeyondInt64
		with(func(s *seed) { s.extra = `{"iat":9.3e18}` }),
		with(func(s *seed) { s.extra = `{"iat":-1e300}` }),
		with(func(s *seed) { s.extra = `{"iat":"0"}` }),
		with(func(s *seed) { s.extra = `{"iat":null}` }),
		with(func(s *seed) { s.extra = `{"exp":"99999999999"}` }),
		with(func(s *seed) { s.extra = `{"exp":1e300}` }),
		with(func(s *seed) { s.extra = `{"exp":null}` }),
		with(func(s *seed) { s.extra = `{"nbf":null}` }),
		with(func(s *seed) { s.extra = `{"ISS":"https://evil.example"}` }),
		with(func(s *seed) { s.extra = `{"Sub":"admin","NONCE":"x"}` }),
		with(func(s *seed) { s.extra = `{"ſub":"admin"}` }),
		with(func(s *seed) { s.extra = `{"aud":null}` }),
		with(func(s *seed) { s.extra = `{"aud":["{client}",7]}` }),
		with(func(s *seed) { s.extra = `{"azp":null}` }),
		with(func(s *seed) { s.extra = `{"email_verified":"yes"}` }),
		with(func(s *seed) { s.extra = `{"email_verified":"TRUE","email":"a@b"}` }),
		with(func(s *seed) { s.extra = `{"_claim_names":{"email":"src1"}}` }),
		with(func(s *seed) { s.hdrExtra = `{"crit":["exp"]}` }),
		with(func(s *seed) { s.hdrExtra = `{"b64":false,"crit":["b64"]}` }),
		with(func(s *seed) { s.hdrExtra = `{"jku":"https://evil.example/jwks","x5u":"https://evil.example/x"}` }),
		with(func(s *seed) { s.hdrExtra = `{"typ":"at+jwt","cty":"JWT"}` }),
		with(func(s *seed) { s.hdrExtra = `{"jwk":{"kty":"oct","k":"AAAA"}}` }),
		{raw: "", mode: 0x80}, {raw: "a.b.c", mode: 0x80}, {raw: "eyJhbGciOiJub25lIn0.e30.", mode: 0x80},
		{raw: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.AAAA", mode: 0x80}, {raw: strings.Repeat(".", 100), mode: 0x80},
		{raw: `{"protected":"e30","payload":"e30","signature":""}`, mode: 0x80},
	}
	for how := uint8(1); how < 12; how++ {
		s := good
		s.mode = how
		seeds = append(seeds, s)
	}
	for _, s := range seeds {
		f.Add(s.raw, s.mode, s.alg, s.kid, s.iss, s.aud, s.azp, s.sub, s.nonce, s.exp, s.iat, s.flags, s.hdrExtra, s.extra)
	}
	f.Fuzz(func(t *testing.T, raw string, mode uint8, alg, kid, iss, aud, azp, sub, nonce string,
		exp, iat int64, flags uint16, hdrExtra, extra string) {
		issuer := op.url("")
		p := static
		if flags&(1<<14) != 0 {
			p = discovered
		}
		fill := strings.NewReplacer("{iss}", issuer, "{ISS}", strings.ToUpper(issuer), "{client}", fzClientID, "{nonce}", fzNonce)
		now := time.Now()
		structured := mode&0x80 == 0
		token := raw
		if structured {
			claims := map[string]any{}
			set := func(bit uint, k string, v any) {
				if flags&(1<<bit) == 0 {
					claims[k] = v
				}
			}
			set(0, "iss", fill.Replace(iss))
			var audience any = fill.Replace(aud)
			if flags&(1<<2) != 0 {
				audience = []string{fill.Replace(aud)}
			}
			if flags&(1<<3) != 0 {
				audience = []string{fill.Replace(aud), "other-client"}
			}
			set(1, "aud", audience)
			if azp != "" {
				set(4, "azp", fill.Replace(azp))
			}
			set(5, "sub", sub)
			set(6, "nonce", fill.Replace(nonce))
			set(7, "exp", now.Unix()+exp%(1<<40))
			set(8, "iat", now.Unix()+iat%(1<<40))
			if flags&(1<<12) != 0 {
				claims["nbf"] = now.Unix() + iat%(1<<40)
			}
			var more map[string]any
			if json.Unmarshal([]byte(fill.Replace(extra)), &more) == nil {
				for k, v := range more {
					claims[k] = v
				}
			}
			payload, _ := json.Marshal(claims)
			header := map[string]any{"alg": alg, "kid": kid, "typ": "JWT"}
			if kid == "" {
				delete(header, "kid")
			}
			var moreHdr map[string]any
			if json.Unmarshal([]byte(hdrExtra), &moreHdr) == nil {
				for k, v := range moreHdr {
					header[k] = v
				}
			}
			method, key := "RS256", any(fzKeys()[0])
			switch {
			case flags&(1<<11) != 0:
				method = "none"
			case flags&(1<<10) != 0:
				method, key = "HS256", pubPEM()
			case flags&(1<<9) != 0:
				key = fzKeys()[1]
			}
			token = fzTweak(fzSign(header, payload, method, key), mode)
		}
		body, _ := json.Marshal(map[string]any{"access_token": "at-id", "token_type": "Bearer", "id_token": token})
		op.set("/token", fzAnswer{200, "application/json", body})
		verdict, why, ms := judgeIDToken(token, issuer, now)
		if p == discovered {
			// The discovered provider reads userinfo: make it agree with
			// whatever the token claims, so that acceptance shows.
			sub := []byte(`null`)
			if payload := unverifiedPayload(token); payload != nil {
				if all, ok := members(payload); ok {
					if occ := occurrences(all, "sub"); len(occ) > 0 {
						sub = occ[len(occ)-1]
					}
				}
			}
			op.set("/userinfo", fzAnswer{200, "application/json", []byte(`{"sub":` + string(sub) + `}`)})
		}
		res, err := p.Exchange(context.Background(), fzCallback())
		if err == nil {
			if verdict == idInvalid {
				t.Fatalf("an ID token that must be rejected (%s) was accepted:\n%s\npayload %s", why, token, unverifiedPayload(token))
			}
			if want, _ := stringClaim(ms, "sub"); res.Profile.Subject != want || res.IDToken != token {
				t.Fatalf("accepted as subject %q, the token says %q", res.Profile.Subject, want)
			}
			return
		}
		checkErr(t, err, token)
		if errors.Is(err, ErrUnavailable) {
			t.Fatalf("a bad ID token must be ErrRejected, not %v", err)
		}
		// A well-formed token that passes every rule must be accepted.
		plain := structured && mode%12 == 0 && hdrExtra == "" && extra == "" && alg == "RS256" && flags&(1<<9|1<<10|1<<11) == 0
		if plain && verdict == idValid {
			t.Fatalf("a valid ID token was refused: %v\n%s", err, token)
		}
	})
}

// unverifiedPayload returns a compact token's payload, unverified, or nil.
func unverifiedPayload(token string) []byte {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	p, _ := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(parts[1]), "="))
	return p
}
