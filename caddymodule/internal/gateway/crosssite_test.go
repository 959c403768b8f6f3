package gateway

import (
	"net/http/httptest"
	"testing"
)

// TestCrossSite_TellsAFormOfAnotherSite: a start posted from another site
// carries no SameSite=Lax cookie and must not set a new binding.
func TestCrossSite_TellsAFormOfAnotherSite(t *testing.T) {
	tests := []struct {
		name           string
		fetchSite, org string
		want           bool
	}{
		{"a client that is no browser", "", "", false},
		{"this site's own form", "same-origin", "http://app.example.com", false},
		{"a sibling subdomain (its requests carry Lax cookies)", "same-site", "http://other.example.com", false},
		{"typed in the address bar", "none", "", false},
		{"another site", "cross-site", "https://evil.example", true},
		{"another site, Sec-Fetch-Site only", "cross-site", "", true},
		{"another site, to a browser without Sec-Fetch-Site", "", "https://evil.example", true},
		{"this host, without Sec-Fetch-Site", "", "https://app.example.com", false},
		{"a hidden origin", "", "null", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "http://app.example.com/_auth/oauth/x/start", nil)
			if tt.fetchSite != "" {
				r.Header.Set("Sec-Fetch-Site", tt.fetchSite)
			}
			if tt.org != "" {
				r.Header.Set("Origin", tt.org)
			}
			if got := crossSite(r); got != tt.want {
				t.Errorf("crossSite = %v, want %v", got, tt.want)
			}
		})
	}
}
