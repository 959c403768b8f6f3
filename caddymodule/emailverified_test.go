package caddymodule_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// An address reaches the upstream as the user's only when a provider
// verified it under its own rules: X-Auth-User-Email, the identity token's
// email, the placeholder and /_auth/me's primary address carry verified
// addresses only, and X-Auth-User-Email-Verified and email_verified say
// which case the upstream is in, whatever the client sends.
func TestIdentity_AnUnverifiedEmailNeverReachesTheUpstreamAsTheUsers(t *testing.T) {
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	corp := startOP(t, testop.Options{Claims: map[string]any{"sub": "c1", "email": "ceo@example.com", "email_verified": false}})
	ms := startOP(t, testop.Options{})
	e := newEnv(t, options{
		Global: fmt.Sprintf(`provider oidc corp {
			issuer %s
			client_id test-client
			client_secret test-secret
		}
		provider microsoft {
			issuer %s
			client_id test-client
			client_secret test-secret
		}`, corp.URL(), ms.URL()),
		Proxy: "header_up X-Placeholder-Email \"{http.auth.user.email}\"",
	})
	cases := []struct {
		name, provider string
		claims         map[string]any // the microsoft look-alike's
		email          string         // what the upstream may see
	}{
		{"oidc provider asserting an unverified address", "corp", nil, ""},
		// Any tenant admin sets a work account's email ("nOAuth").
		{"microsoft without xms_edov", "microsoft", map[string]any{"sub": "m1", "oid": "00000000-0000-0000-0000-0000000000a1",
			"tid": tenant, "email": "ceo@contoso.com", "email_verified": true}, ""},
		{"microsoft with xms_edov", "microsoft", map[string]any{"sub": "m2", "oid": "00000000-0000-0000-0000-0000000000a2",
			"tid": tenant, "email": "ada@contoso.com", "xms_edov": true}, "ada@contoso.com"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.claims != nil {
				ms.SetClaims(tc.claims)
			}
			b, status := signInWith(t, e, tc.provider)
			if status != http.StatusOK {
				t.Fatalf("sign-in: status %d", status)
			}
			checkEmailUpstream(t, e, b, tc.email)
		})
	}
	t.Run("dev provider, verified", func(t *testing.T) {
		b := newBrowser(t)
		b.signInDev(e, "/", ada)
		checkEmailUpstream(t, e, b, "ada@example.com")
	})
}

// checkEmailUpstream sends a request as b with forged identity headers and
// checks that the upstream, the identity token and /_auth/me carry email
// as the user's address ("" for none) and say whether it is verified.
func checkEmailUpstream(t *testing.T, e *env, b *browser, email string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.Base+"/app", nil)
	req.Header["X-Auth-User-Email-Verified"] = []string{"true"}
	req.Header["x_auth_user_email_verified"] = []string{"true"}
	req.Header["X-Auth-User-Email"] = []string{"forged@example.com"}
	if resp, _ := b.do(req); resp.StatusCode != http.StatusOK {
		t.Fatalf("request: status %d", resp.StatusCode)
	}
	h := e.Upstream.Last(t)
	verified := fmt.Sprint(email != "")
	if got := h.Values("X-Auth-User-Email"); (email == "" && len(got) != 0) || (email != "" && (len(got) != 1 || got[0] != email)) {
		t.Errorf("X-Auth-User-Email = %q, want %q", got, email)
	}
	if got := h.Values("X-Auth-User-Email-Verified"); len(got) != 1 || got[0] != verified {
		t.Errorf("X-Auth-User-Email-Verified = %q, want [%s]", got, verified)
	}
	if got := h.Get("X-Placeholder-Email"); got != email {
		t.Errorf("{http.auth.user.email} = %q, want %q", got, email)
	}
	claims := identityClaims(t, b, e, h.Get("X-Auth-Jwt"))
	if got, _ := claims["email"].(string); got != email || claims["email_verified"] != (email != "") {
		t.Errorf("identity token: email %v, email_verified %v; want %q, %v", claims["email"], claims["email_verified"], email, email != "")
	}
	if got := b.me(e)["primary_email_address"]; got != email {
		t.Errorf("/_auth/me primary_email_address = %v, want %q", got, email)
	}
}
