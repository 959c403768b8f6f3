package gateway_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
	"github.com/socialgate/socialgate/caddymodule/internal/gateway"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/store/cache"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
)

// The pieces of the Caddy handler's request path (handler.go ServeHTTP),
// without Caddy: header hygiene, session lookup, the identity token, route
// requirements, and the answer to a request without a session.
//
//	go test ./caddymodule/internal/gateway -run '^$' -bench . -benchmem

// browserHeaders is what Chrome sends on a navigation to a signed-in site;
// cookie is the Cookie header, set by the caller.
func browserHeaders(cookie string) http.Header {
	return http.Header{
		"Accept":                    {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"},
		"Accept-Encoding":           {"gzip, deflate, br, zstd"},
		"Accept-Language":           {"en-GB,en;q=0.9,de;q=0.8"},
		"Cache-Control":             {"max-age=0"},
		"Connection":                {"keep-alive"},
		"Cookie":                    {cookie},
		"Sec-Ch-Ua":                 {`"Chromium";v="130", "Google Chrome";v="130", "Not?A_Brand";v="99"`},
		"Sec-Ch-Ua-Mobile":          {"?0"},
		"Sec-Ch-Ua-Platform":        {`"Linux"`},
		"Sec-Fetch-Dest":            {"document"},
		"Sec-Fetch-Mode":            {"navigate"},
		"Sec-Fetch-Site":            {"same-origin"},
		"Sec-Fetch-User":            {"?1"},
		"Upgrade-Insecure-Requests": {"1"},
		"User-Agent":                {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"},
	}
}

const otherCookies = "_ga=GA1.1.1234567890.1700000000; theme=dark; csrftoken=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4"

// signedInGateway is a gateway on an in-memory store with one signed-in
// user whose dev account holds a fresh access token, and the Cookie header
// of its session.
type signedInGateway struct {
	gw     *gateway.Gateway
	cookie string
	sess   *store.Session
}

func newSignedInGateway(b *testing.B) *signedInGateway {
	b.Helper()
	st, err := badger.Open(badger.Options{InMemory: true, Logger: quiet{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ctx := context.Background()
	res, err := st.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{
		Provider: "dev", Issuer: "http://127.0.0.1:9999", Subject: "ada",
		Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace",
		ApprovedScopes: []string{"openid", "email", "profile"},
		Tokens:         store.TokenSet{AccessToken: "dev-access-token", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)},
	}})
	if err != nil {
		b.Fatal(err)
	}
	cached := cache.New(st, nil).Store(5 * time.Second) // as configured by default (session_cache)
	sessions, err := session.NewManager(cached, [][]byte{bytes.Repeat([]byte("k"), 32)}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	sessions.RememberVerified()
	rec := httptest.NewRecorder()
	sess, err := sessions.Start(ctx, rec, httptest.NewRequest(http.MethodGet, "/", nil), res.User, nil, session.Auth{})
	if err != nil {
		b.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys, err := assertion.NewKeySet([]assertion.Key{{Private: key}}, assertion.DefaultKeyDelay)
	if err != nil {
		b.Fatal(err)
	}
	identity, err := assertion.New(assertion.Options{Keys: keys, Issuer: "socialgate"})
	if err != nil {
		b.Fatal(err)
	}
	gw := gateway.New(gateway.Config{Store: cached, Sessions: sessions, Identity: identity,
		Tokens: tokens.New(tokens.Options{Store: cached})})
	return &signedInGateway{gw: gw, sess: sess, cookie: otherCookies + "; " + rec.Result().Cookies()[0].String()}
}

func BenchmarkStripIdentityHeaders(b *testing.B) {
	b.Run("clean", func(b *testing.B) {
		h := browserHeaders(otherCookies)
		b.ReportAllocs()
		for b.Loop() {
			gateway.StripIdentityHeaders(h)
		}
	})
	b.Run("spoofed", func(b *testing.B) {
		h := browserHeaders(otherCookies)
		b.ReportAllocs()
		for b.Loop() {
			h["X-Auth-User-Id"] = nil
			h["X_auth_user_email"] = nil
			gateway.StripIdentityHeaders(h)
		}
	})
}

func BenchmarkSetIdentityHeaders(b *testing.B) {
	s := &store.Session{ID: "sess_abcdefghijklmnopqrstuvwxyz", UserID: "user_abcdefghijklmnopqrstuvwxyz",
		Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace"}
	h := browserHeaders(otherCookies)
	b.ReportAllocs()
	for b.Loop() {
		gateway.SetIdentityHeaders(h, s, "eyJ.identity.token")
	}
}

func BenchmarkStripGatewayCookies(b *testing.B) {
	for _, bc := range []struct{ name, cookie string }{
		{"session-and-others", otherCookies + "; " + session.CookieName + "=MTczMjAwMDAwMHxabc-def_ghi=="},
		{"session-only", session.CookieName + "=MTczMjAwMDAwMHxabc-def_ghi=="},
		{"none", otherCookies},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := browserHeaders(bc.cookie)
			original := h["Cookie"]
			b.ReportAllocs()
			for b.Loop() {
				h["Cookie"] = original
				gateway.StripGatewayCookies(h)
			}
		})
	}
}

func BenchmarkIdentityToken(b *testing.B) {
	g := newSignedInGateway(b)
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		var token string
		for b.Loop() {
			var err error
			if token, err = g.gw.Identity.Token(g.sess, nil); err != nil {
				b.Fatal(err)
			}
		}
		// Every upstream request carries it, and Caddy's reverse_proxy
		// encodes every header into its logger per request.
		b.ReportMetric(float64(len(token)), "header-bytes")
	})
	// What the first request of a session (and one every 4 minutes) pays:
	// each iteration's session says another name, so each is signed.
	b.Run("signing", func(b *testing.B) {
		renamed := [2]store.Session{*g.sess, *g.sess}
		renamed[1].Name += " II"
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := g.gw.Identity.Token(&renamed[i%2], nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAuthenticate(b *testing.B) {
	g := newSignedInGateway(b)
	r := httptest.NewRequest(http.MethodGet, "/dashboard", nil)
	r.Header = browserHeaders(g.cookie)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.gw.Authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPassThrough is handler.go's ServeHTTP for a signed-in request up
// to next.ServeHTTP, without Caddy's replacer and context lookups. The
// header map is reused, so from the second iteration on the strip deletes
// the identity headers the previous one set (a little more work than a
// fresh request).
func BenchmarkPassThrough(b *testing.B) {
	g := newSignedInGateway(b)
	r := httptest.NewRequest(http.MethodGet, "/dashboard", nil)
	r.Header = browserHeaders(g.cookie)
	cookie := r.Header["Cookie"]
	owned := gateway.NewOwned()
	b.ReportAllocs()
	for b.Loop() {
		r.Header["Cookie"] = cookie
		gateway.StripIdentityHeaders(r.Header)
		if g.gw.Owns(r.URL.Path) {
			b.Fatal("the gateway owns /dashboard")
		}
		if owned.Smuggled(r) {
			b.Fatal("Connection: keep-alive refused")
		}
		owned.GuardTrailers(r)
		sess, err := g.gw.Authenticate(r)
		if err != nil {
			b.Fatal(err)
		}
		if ok, err := g.gw.Admitted(r.Context(), sess, nil); !ok || err != nil {
			b.Fatal("not admitted", err)
		}
		identity, err := g.gw.Identity.Token(sess, nil)
		if err != nil {
			b.Fatal(err)
		}
		gateway.SetIdentityHeaders(r.Header, sess, identity)
		gateway.StripGatewayCookies(r.Header)
		g.gw.StripSessionTokens(r.Header)
	}
}

// BenchmarkAdmitted is what allow_emails and allow_groups add to a request:
// the linked accounts from the cache, and a match of their verified
// addresses and groups.
func BenchmarkAdmitted(b *testing.B) {
	g := newSignedInGateway(b)
	rules, err := access.Parse([]string{"*@example.com", "grace@partner.example"}, []string{"dev:admins"}, []string{"dev"})
	if err != nil {
		b.Fatal(err)
	}
	g.gw.Admit = rules
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := g.gw.Admitted(ctx, g.sess, nil); !ok || err != nil {
			b.Fatal("not admitted", err)
		}
	}
}

func BenchmarkResolve(b *testing.B) {
	g := newSignedInGateway(b)
	ctx := context.Background()
	require := []gateway.Requirement{{Provider: "dev"}}
	b.Run("require", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, unmet, err := g.gw.Resolve(ctx, g.sess, require, nil); err != nil || unmet != nil {
				b.Fatal(unmet, err)
			}
		}
	})
	b.Run("forward_token", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			toks, unmet, err := g.gw.Resolve(ctx, g.sess, nil, []string{"dev"})
			if err != nil || unmet != nil || toks["dev"] == "" {
				b.Fatal(unmet, err)
			}
		}
	})
}

// discard is a ResponseWriter that keeps only its header map, cleared per
// request, so the benchmark measures the gateway and not a recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func BenchmarkChallenge(b *testing.B) {
	gw := gateway.New(gateway.Config{})
	for _, bc := range []struct{ name, accept string }{
		{"browser-redirect", "text/html,application/xhtml+xml"},
		{"api-401", "application/json"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/reports/2024?tab=summary&sort=desc", nil)
			r.Header.Set("Accept", bc.accept)
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				gw.Challenge(w, r, r.URL.RequestURI())
			}
			if !slices.Contains([]string{"no-store", ""}, w.h.Get("Cache-Control")) {
				b.Fatal("unexpected answer")
			}
		})
	}
}

type quiet struct{}

func (quiet) Errorf(string, ...any)   {}
func (quiet) Warningf(string, ...any) {}
func (quiet) Infof(string, ...any)    {}
func (quiet) Debugf(string, ...any)   {}
