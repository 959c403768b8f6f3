package devprovider

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A Host keeps the providers a later Set repeats, with their keys (and so
// their codes and tokens), makes anew the ones whose options changed, and
// keeps serving what it served when a Set fails.
func TestHost_SetKeepsUnchangedProviders(t *testing.T) {
	var h Host
	srv := httptest.NewServer(&h)
	t.Cleanup(srv.Close)
	if status, _, _ := get(t, srv.URL+jwksPath, nil); status != http.StatusNotFound {
		t.Fatalf("before the first Set: %d, want 404", status)
	}
	options := func(lifetime time.Duration, scopes ...string) map[string]Options {
		return map[string]Options{
			"dev": {Issuer: srv.URL, Clients: []Client{{ID: "socialgate-dev", Secret: "s1"}}},
			"corp": {Issuer: srv.URL + "/corp", Clients: []Client{{ID: "socialgate-corp", Secret: "s2"}},
				AccessTokenLifetime: lifetime, Scopes: scopes, SubjectPrefix: "corp-"},
		}
	}
	keys := func() (dev, corp string) { return jwks(t, srv.URL), jwks(t, srv.URL+"/corp") }

	if err := h.Set(options(time.Hour, "repo")); err != nil {
		t.Fatal(err)
	}
	dev, corp := keys()
	for _, c := range []struct {
		name            string
		set             map[string]Options
		wantErr         string
		devNew, corpNew bool
	}{
		{name: "the same options", set: options(time.Hour, "repo")},
		{name: "corp's lifetime changed", set: options(2*time.Hour, "repo"), corpNew: true},
		{name: "corp's scopes changed", set: options(2 * time.Hour), corpNew: true},
		{name: "an issuer that is no URL", set: map[string]Options{"dev": {Issuer: "http://localhost:x", Clients: []Client{{ID: "a", Secret: "b"}}}},
			wantErr: "provider dev: issuer"},
		{name: "two issuers with one path", set: map[string]Options{"dev": options(0)["dev"],
			"copy": {Issuer: srv.URL, Clients: []Client{{ID: "a", Secret: "b"}}}}, wantErr: "share the path"},
	} {
		err := h.Set(c.set)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: %v, want an error with %q", c.name, err, c.wantErr)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		newDev, newCorp := keys()
		if (newDev != dev) != c.devNew || (newCorp != corp) != c.corpNew {
			t.Errorf("%s: dev's keys new: %v (want %v), corp's: %v (want %v)", c.name, newDev != dev, c.devNew, newCorp != corp, c.corpNew)
		}
		dev, corp = newDev, newCorp
	}
}

// jwks is the provider at issuer's JWKS, which its keys make its own.
func jwks(t *testing.T, issuer string) string {
	t.Helper()
	status, _, body := get(t, issuer+jwksPath, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s%s: %d", issuer, jwksPath, status)
	}
	return body
}
