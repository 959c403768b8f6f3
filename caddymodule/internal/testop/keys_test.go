package testop_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// getJWKS fetches a JWKS and returns it with its Cache-Control header.
func getJWKS(t *testing.T, url string) (jose.JSONWebKeySet, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatalf("decoding the JWKS: %v", err)
	}
	return set, resp.Header.Get("Cache-Control")
}

// publishedKids fetches the JWKS and returns its kids and Cache-Control.
func publishedKids(t *testing.T, s *testop.Server) ([]string, string) {
	t.Helper()
	set, cc := getJWKS(t, s.URL()+"/jwks")
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids, cc
}

func TestKeys_RotateRemoveSignWithAndOutage(t *testing.T) {
	s := testop.Start(t, testop.Options{JWKSCacheControl: "public, max-age=7"})
	cfg := config(s, oidc.ScopeOpenID)
	first := s.Kid()
	kids, cc := publishedKids(t, s)
	if !slices.Equal(kids, []string{first}) || cc != "public, max-age=7" {
		t.Fatalf("JWKS kids %v, Cache-Control %q; want [%s], the configured header", kids, cc, first)
	}

	second := s.RotateKey()
	if kids, _ := publishedKids(t, s); !slices.Equal(kids, []string{first, second}) || second == first {
		t.Fatalf("after RotateKey: kids %v, want [%s %s]", kids, first, second)
	}
	verifier := provider(t, s).Verifier(&oidc.Config{ClientID: "test-client"})
	raw := signIn(t, cfg).idToken
	if kid := parseJWT(t, raw).header["kid"]; kid != second {
		t.Errorf("id_token kid %v after RotateKey, want %s", kid, second)
	}
	if _, err := verifier.Verify(t.Context(), raw); err != nil {
		t.Errorf("an id_token of the new key does not verify: %v", err)
	}

	s.RemoveKey(first)
	s.SignWith(first)
	if kids, _ := publishedKids(t, s); !slices.Equal(kids, []string{second}) {
		t.Fatalf("after RemoveKey: kids %v, want [%s]", kids, second)
	}
	raw = signIn(t, cfg).idToken
	if kid := parseJWT(t, raw).header["kid"]; kid != first {
		t.Errorf("id_token kid %v after SignWith, want %s", kid, first)
	}
	if _, err := provider(t, s).Verifier(&oidc.Config{ClientID: "test-client"}).Verify(t.Context(), raw); err == nil {
		t.Error("an id_token of a removed key verifies against the JWKS")
	}

	s.SetFault(testop.FaultJWKSUnavailable)
	resp, err := http.Get(s.URL() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("JWKS under FaultJWKSUnavailable: %d, want 503", resp.StatusCode)
	}
	if tok := signIn(t, cfg); tok.idToken == "" {
		t.Error("FaultJWKSUnavailable stopped the token endpoint too")
	}
}
