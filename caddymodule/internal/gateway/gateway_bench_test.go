package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
	"github.com/socialgate/socialgate/caddymodule/internal/store/storetest"
	"github.com/socialgate/socialgate/internal/testkit"
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

// signedInGateway is a gateway (newTestGW) with one signed-in user whose
// corp account holds a fresh access token, and the Cookie header of its
// session.
type signedInGateway struct {
	gw     *testGW
	cookie string
	sess   *store.Session
}

func newSignedInGateway(b testing.TB, gw *testGW) *signedInGateway {
	b.Helper()
	sess, value := gw.signIn(b, "ada")
	return &signedInGateway{gw: gw, sess: sess, cookie: otherCookies + "; " + session.CookieName + "=" + value}
}

func BenchmarkStripIdentityHeaders(b *testing.B) {
	b.Run("clean", func(b *testing.B) {
		h := browserHeaders(otherCookies)
		b.ReportAllocs()
		for b.Loop() {
			StripIdentityHeaders(h)
		}
	})
	b.Run("spoofed", func(b *testing.B) {
		h := browserHeaders(otherCookies)
		b.ReportAllocs()
		for b.Loop() {
			h["X-Auth-User-Id"] = nil
			h["X_auth_user_email"] = nil
			StripIdentityHeaders(h)
		}
	})
}

func BenchmarkSetIdentityHeaders(b *testing.B) {
	s := &store.Session{ID: "sess_abcdefghijklmnopqrstuvwxyz", UserID: "user_abcdefghijklmnopqrstuvwxyz",
		Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace"}
	h := browserHeaders(otherCookies)
	b.ReportAllocs()
	for b.Loop() {
		setIdentityHeaders(h, s, "eyJ.identity.token", false)
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
				stripGatewayCookies(h)
			}
		})
	}
}

func BenchmarkIdentityToken(b *testing.B) {
	g := newSignedInGateway(b, newTestGW(b, nil))
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		var token string
		for b.Loop() {
			var err error
			if token, err = g.gw.identity.Token(g.sess, nil); err != nil {
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
			if _, err := g.gw.identity.Token(&renamed[i%2], nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAuthenticate(b *testing.B) {
	g := newSignedInGateway(b, newTestGW(b, nil))
	r := httptest.NewRequest(http.MethodGet, "/dashboard", nil)
	r.Header = browserHeaders(g.cookie)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.gw.authenticate(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPassThrough is the Caddy handler's ServeHTTP for a signed-in
// request up to next.ServeHTTP, without Caddy's replacer: the identity
// headers stripped, Guard, and the pass's headers set, on each store. The
// store's cache serves the session, so the rows should differ by noise
// only. The header map is reused, so from the second iteration on the
// strip deletes the identity headers the previous one set (a little more
// work than a fresh request).
func BenchmarkPassThrough(b *testing.B) {
	b.Run("badger", func(b *testing.B) { benchPassThrough(b, newSignedInGateway(b, newTestGW(b, nil))) })
	b.Run("postgres", func(b *testing.B) { benchPassThrough(b, newSignedInGateway(b, newPostgresGW(b))) })
}

func benchPassThrough(b *testing.B, g *signedInGateway) {
	policy, err := g.gw.Policy(Route{})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/dashboard", nil)
	r.Header = browserHeaders(g.cookie)
	cookie := r.Header["Cookie"]
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		r.Header["Cookie"] = cookie
		StripIdentityHeaders(r.Header)
		if g.gw.Owns(r.URL.Path) {
			b.Fatal("the gateway owns /dashboard")
		}
		pass, ok, err := g.gw.Guard(w, r, "/dashboard", policy)
		if !ok || err != nil {
			b.Fatal("not passed", err)
		}
		pass.SetHeaders(pass.Request.Header)
	}
}

// newPostgresGW is newTestGW on a fresh schema of a private PostgreSQL
// server; without PostgreSQL the benchmark or test is skipped (it fails in
// CI, which installs PostgreSQL).
func newPostgresGW(b testing.TB) *testGW {
	b.Helper()
	dsn := testkit.OwnPostgres(b)
	clk := storetest.NewClock()
	pg, err := postgres.Open(context.Background(), postgres.Options{DSN: dsn, EncryptionKey: make([]byte, 32), Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pg.Close() })
	return newTestGWOn(b, pg, clk, nil)
}

// BenchmarkAdmitted is what allow_emails and allow_groups add to a request:
// the linked accounts from the cache, and a match of their verified
// addresses and groups.
func BenchmarkAdmitted(b *testing.B) {
	g := newSignedInGateway(b, newTestGW(b, nil))
	rules, err := access.Parse([]string{"*@example.com", "grace@partner.example"}, []string{"dev:admins"}, []string{"dev"})
	if err != nil {
		b.Fatal(err)
	}
	g.gw.admit = rules
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := g.gw.admitted(ctx, g.sess, nil); !ok || err != nil {
			b.Fatal("not admitted", err)
		}
	}
}

func BenchmarkResolve(b *testing.B) {
	g := newSignedInGateway(b, newTestGW(b, nil))
	ctx := context.Background()
	require, err := g.gw.Policy(Route{Require: []Requirement{{Provider: "corp"}}})
	if err != nil {
		b.Fatal(err)
	}
	forward, err := g.gw.Policy(Route{Forward: []Forward{{Provider: "corp"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("require", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, unmet, err := g.gw.resolve(ctx, g.sess, require); err != nil || unmet != nil {
				b.Fatal(unmet, err)
			}
		}
	})
	b.Run("forward_token", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			toks, unmet, err := g.gw.resolve(ctx, g.sess, forward)
			if err != nil || unmet != nil || len(toks) != 1 || toks[0].Value == "" {
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
	gw := newTestGW(b, nil)
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
				gw.challenge(w, r, r.URL.RequestURI())
			}
			if !slices.Contains([]string{"no-store", ""}, w.h.Get("Cache-Control")) {
				b.Fatal("unexpected answer")
			}
		})
	}
}
