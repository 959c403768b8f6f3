package caddymodule_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// newOIDCEnv runs the gateway with one oidc provider "corp" at a local
// issuer that can be told to misbehave.
func newOIDCEnv(t *testing.T, extraGlobal string) (*env, *testop.Server) {
	op := startOP(t, testop.Options{})
	e := newEnv(t, options{NoDev: true, Global: fmt.Sprintf(`provider oidc corp {
			issuer %s
			client_id test-client
			client_secret test-secret
		}
		%s`, op.URL(), extraGlobal)})
	return e, op
}

// signInCorp runs the whole flow through the auto-approving provider and
// returns the final answer.
func signInCorp(b *browser, e *env) (*http.Response, string) {
	authorize := location(b.t, b.startSignIn(e, "/inbox", "corp"))
	resp, body := b.get(authorize)
	return b.follow(resp, body)
}

// callbackURL starts a flow and returns the callback URL the provider sends
// the browser to, without visiting it.
func callbackURL(b *browser, e *env) string {
	authorize := location(b.t, b.startSignIn(e, "/inbox", "corp"))
	resp, _ := b.get(authorize)
	return location(b.t, resp)
}

func TestOIDC_SignsInThroughAnIssuer(t *testing.T) {
	e, op := newOIDCEnv(t, "")
	b := newBrowser(t)
	resp, body := signInCorp(b, e)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/inbox" {
		t.Fatalf("status %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	h := e.Upstream.Last(t)
	if h.Get("X-Auth-User-Email") != "u1@example.com" || h.Get("X-Auth-User-Name") != "User One" {
		t.Errorf("identity headers: %v", h)
	}
	q := op.LastAuthorizeQuery()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" {
		t.Errorf("authorization request lacks PKCE S256 or nonce: %v", q)
	}
	if strings.Contains(q.Get("state"), q.Get("nonce")) || q.Get("code_verifier") != "" {
		t.Error("the state or the query carries flow secrets")
	}
	for _, s := range []string{"openid", "email", "profile", "offline_access"} {
		if !strings.Contains(" "+q.Get("scope")+" ", " "+s+" ") {
			t.Errorf("scope %q not requested: %q", s, q.Get("scope"))
		}
	}
}

func TestOAuth2_MapsUserinfoFields(t *testing.T) {
	op := startOP(t, testop.Options{Mode: testop.OAuth2, UserinfoBody: map[string]any{
		"data": map[string]any{"uid": 12345, "mail": "plain@example.com", "mail_ok": "true", "display": "Plain User"},
	}})
	e := newEnv(t, options{NoDev: true, Global: fmt.Sprintf(`provider oauth2 plain {
			authorize_url %s
			token_url %s
			userinfo_url %s
			client_id test-client
			client_secret test-secret
			scopes read
			fields {
				id data.uid
				email data.mail
				email_verified data.mail_ok
				name data.display
			}
		}`, op.AuthorizeURL(), op.TokenURL(), op.UserinfoURL())})
	b := newBrowser(t)
	authorize := location(t, b.startSignIn(e, "/", "plain"))
	resp, body := b.follow(b.get(authorize))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	h := e.Upstream.Last(t)
	if h.Get("X-Auth-User-Email") != "plain@example.com" || h.Get("X-Auth-User-Name") != "Plain User" {
		t.Errorf("identity headers: %v", h)
	}
	_, me := apiGet(t, b.c, e.Base+"/_auth/me", nil)
	eac := me["external_accounts"].([]any)[0].(map[string]any)
	if eac["provider_user_id"] != "12345" || eac["approved_scopes"] != "read" {
		t.Errorf("external account = %v", eac)
	}
	if q := op.LastAuthorizeQuery(); q.Get("scope") != "read" || q.Get("nonce") != "" {
		t.Errorf("oauth2 authorization request: scope %q nonce %q", q.Get("scope"), q.Get("nonce"))
	}
}

// assertRefused checks that a callback answer signed nobody in and cost no
// call to the provider's token endpoint beyond tokenCallsBefore.
func assertRefused(t *testing.T, e *env, b *browser, resp *http.Response, wantStatus int) {
	t.Helper()
	if resp.StatusCode != wantStatus {
		t.Errorf("status %d, want %d", resp.StatusCode, wantStatus)
	}
	if b.cookie(e.Base, "socialgate_session") != "" {
		t.Error("a refused callback set a session cookie")
	}
	status, _ := apiGet(t, b.c, e.Base+"/private", nil)
	if status != http.StatusUnauthorized {
		t.Errorf("after a refused callback the browser is signed in (status %d)", status)
	}
}

func TestCallback_RejectsBadStateBeforeCallingTheProvider(t *testing.T) {
	e, op := newOIDCEnv(t, "flow_timeout 1s")
	cases := []struct {
		name     string
		callback func(t *testing.T, victim *browser) string
	}{
		{"no state", func(t *testing.T, b *browser) string {
			u, _ := url.Parse(callbackURL(b, e))
			q := u.Query()
			q.Del("state")
			u.RawQuery = q.Encode()
			return u.String()
		}},
		{"forged state", func(t *testing.T, b *browser) string {
			u, _ := url.Parse(callbackURL(b, e))
			q := u.Query()
			q.Set("state", strings.Repeat("A", 43))
			u.RawQuery = q.Encode()
			return u.String()
		}},
		{"malformed state", func(t *testing.T, b *browser) string {
			u, _ := url.Parse(callbackURL(b, e))
			q := u.Query()
			q.Set("state", q.Get("state")+"'\"<>")
			u.RawQuery = q.Encode()
			return u.String()
		}},
		{"replayed state", func(t *testing.T, b *browser) string {
			cb := callbackURL(b, e)
			resp, _ := b.get(cb)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use of the callback: status %d", resp.StatusCode)
			}
			b.c.Jar.SetCookies(mustURL(e.Base), []*http.Cookie{{Name: "socialgate_session", Value: "", MaxAge: -1}})
			return cb
		}},
		{"expired state", func(t *testing.T, b *browser) string {
			cb := callbackURL(b, e)
			time.Sleep(2100 * time.Millisecond)
			return cb
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t)
			cb := tc.callback(t, b)
			before := op.Calls("token")
			resp, body := b.get(cb)
			assertRefused(t, e, b, resp, http.StatusBadRequest)
			if op.Calls("token") != before {
				t.Error("the gateway called the token endpoint for a bad state")
			}
			if !strings.Contains(body, "invalid or has expired") {
				t.Errorf("error page does not explain: %s", body)
			}
		})
	}

	t.Run("state minted in another browser", func(t *testing.T) {
		victim, attacker := newBrowser(t), newBrowser(t)
		cb := callbackURL(attacker, e)
		newBrowser(t).get(e.Base + "/") // the victim has cookies of its own
		before := op.Calls("token")
		resp, _ := victim.get(cb)
		assertRefused(t, e, victim, resp, http.StatusBadRequest)
		if op.Calls("token") != before {
			t.Error("the gateway called the token endpoint for another browser's state")
		}
	})
}

func TestCallback_RejectsBadProviderResponses(t *testing.T) {
	e, op := newOIDCEnv(t, "")
	faults := []testop.Fault{
		testop.FaultAlgNone, testop.FaultHS256WithPublicKey, testop.FaultWrongAudience,
		testop.FaultExtraAudienceNoAzp, testop.FaultWrongAzp, testop.FaultWrongIssuer,
		testop.FaultIssuerTrailingSlash, testop.FaultIssuerCase, testop.FaultWrongNonce,
		testop.FaultMissingNonce, testop.FaultMissingIat, testop.FaultMissingSub,
		testop.FaultExpired, testop.FaultUnknownKid, testop.FaultUserinfoSubMismatch,
		testop.FaultWrongIssParam, testop.FaultTokenError, testop.FaultTokenHTML, testop.FaultTokenHuge,
	}
	for _, f := range faults {
		t.Run(f.String(), func(t *testing.T) {
			op.SetFault(f)
			defer op.SetFault(testop.FaultNone)
			b := newBrowser(t)
			before := len(e.Upstream.Requests())
			resp, body := signInCorp(b, e)
			assertRefused(t, e, b, resp, http.StatusBadGateway)
			if len(e.Upstream.Requests()) != before {
				t.Error("the upstream was reached")
			}
			if strings.Contains(body, "code=") || strings.Contains(body, "eyJ") {
				t.Error("the error page shows a code or a token")
			}
		})
	}

	// The same browser succeeds once the provider behaves: nothing was poisoned.
	resp, _ := signInCorp(newBrowser(t), e)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("clean sign-in after the faults: status %d", resp.StatusCode)
	}
}

func TestCallback_ProviderErrorIsShownPlainly(t *testing.T) {
	e, _ := newOIDCEnv(t, "")
	b := newBrowser(t)
	u, _ := url.Parse(callbackURL(b, e))
	q := u.Query()
	q.Del("code")
	q.Set("error", "access_denied")
	u.RawQuery = q.Encode()
	resp, body := b.get(u.String())
	assertRefused(t, e, b, resp, http.StatusForbidden)
	if !strings.Contains(body, "cancelled") {
		t.Errorf("page does not say the sign-in was cancelled: %s", body)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// A token endpoint that refuses the gateway (401 invalid_client: a client
// secret it does not take) is reported as the provider's refusal, with
// its OAuth error code, not as an outage; what its answer echoes stays
// out of the page and the logs. A 5xx is still an outage.
func TestCallback_ATokenEndpointRefusalSaysTheProviderRefused(t *testing.T) {
	e, op := newOIDCEnv(t, "")
	for _, tc := range []struct {
		fault     testop.Fault
		says, not string
		reason    string
	}{
		{testop.FaultTokenInvalidClient, "corp refused this site's request (invalid_client)", "not reachable", "provider_refused"},
		{testop.FaultTokenServerError, "corp is not reachable right now", "refused", "provider_unavailable"},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			op.SetFault(tc.fault)
			defer op.SetFault(testop.FaultNone)
			b := newBrowser(t)
			resp, body := signInCorp(b, e)
			assertRefused(t, e, b, resp, http.StatusBadGateway)
			page := html.UnescapeString(between(body, "<main", "</main>"))
			if !strings.Contains(page, tc.says) || strings.Contains(page, tc.not) {
				t.Errorf("the page says %q, want %q", page, tc.says)
			}
			if strings.Contains(body, "no client may redeem") {
				t.Error("the page shows the token endpoint's error_description")
			}
			if log, _ := os.ReadFile(filepath.Join(e.Storage, "debug.log")); !strings.Contains(string(log), `"reason":"`+tc.reason+`"`) {
				t.Errorf("no sign-in refused with reason %s in the log", tc.reason)
			}
		})
	}
}
