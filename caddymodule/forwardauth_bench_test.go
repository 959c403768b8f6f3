package caddymodule_test

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkProxy_Verify is nginx's verify request (X-Original-URL, the
// browser's headers and cookie) to the gateway site of BenchmarkProxy,
// answered with the identity headers: compare with BenchmarkProxy/gateway,
// the same decision for a request Caddy itself sends on (which also pays
// the upstream's round trip).
//
//	go test ./caddymodule -run '^$' -bench 'Proxy(/gateway$|_Verify)' -benchmem
func BenchmarkProxy_Verify(b *testing.B) {
	s := startBenchSites(b)
	c := benchClient()
	req, _ := http.NewRequest(http.MethodGet, s.urls["gateway"]+"_auth/verify", nil)
	req.Header.Set("Cookie", s.cookie)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("X-Original-URL", s.urls["gateway"]+"reports?year=2026")
	req.Header.Set("X-Original-Method", http.MethodGet)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Auth-User-Id") == "" {
			b.Fatalf("status %d, want 200 with the identity", resp.StatusCode)
		}
	}
}
