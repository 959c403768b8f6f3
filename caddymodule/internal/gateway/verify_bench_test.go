package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkVerify is what an external proxy's verify request costs the
// gateway, from ServeHTTP to the identity headers written (nginx's form:
// X-Original-URL), to compare with BenchmarkPassThrough, the same decision
// for a request that Caddy itself sends on.
func BenchmarkVerify(b *testing.B) {
	gw := newTestGW(b, func(cfg *Config) {
		cfg.ForwardAuth = &ForwardAuth{URL: "https://auth.example.com", Trusted: func(*http.Request) bool { return true }}
	})
	g := newSignedInGateway(b, gw)
	r := httptest.NewRequest(http.MethodGet, "/_auth/verify", nil)
	r.Header = browserHeaders(g.cookie)
	r.Header["X-Original-Url"] = []string{"http://app1.example.com/dashboard"}
	r.Header["X-Original-Method"] = []string{"GET"}
	cookie := r.Header["Cookie"]
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		r.Header["Cookie"] = cookie // Guard strips it from the request it lets through
		clear(w.h)
		gw.ServeHTTP(w, r)
		if w.h["X-Auth-User-Id"] == nil {
			b.Fatal("not passed")
		}
	}
}
