package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestGuard_CachedSessionNeedsNoStore: a signed-in request whose session
// the store's cache holds is decided in memory on either store, so the
// pass-through costs the same on both (BenchmarkPassThrough). With the
// store closed under the cache, every store call fails: the requests after
// the first must still pass, with the identity the first got.
func TestGuard_CachedSessionNeedsNoStore(t *testing.T) {
	for _, tc := range []struct {
		name string
		gw   func(t *testing.T) *testGW
	}{
		{"badger", func(t *testing.T) *testGW { return newTestGW(t, nil) }},
		{"postgres", func(t *testing.T) *testGW { return newPostgresGW(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newSignedInGateway(t, tc.gw(t))
			policy, err := g.gw.Policy(Route{})
			if err != nil {
				t.Fatal(err)
			}
			guard := func() Pass {
				t.Helper()
				r := httptest.NewRequest(http.MethodGet, "/dashboard", nil)
				r.Header = browserHeaders(g.cookie)
				pass, ok, err := g.gw.Guard(httptest.NewRecorder(), r, "/dashboard", policy)
				if !ok || err != nil {
					t.Fatalf("a signed-in request did not pass: ok %v, err %v", ok, err)
				}
				return pass
			}
			first := guard()
			if err := g.gw.raw.Close(); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				pass := guard()
				if pass.Session.ID != first.Session.ID || pass.Identity != first.Identity {
					t.Fatalf("a cached request passed as session %s, want %s with the same identity token", pass.Session.ID, first.Session.ID)
				}
			}
		})
	}
}
