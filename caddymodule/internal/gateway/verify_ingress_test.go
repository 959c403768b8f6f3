package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/session"
)

// ingress-nginx's generated auth location always sets X-Auth-Request-Redirect
// on its question: verify lets exactly that name through, in every spelling
// its namespace rule reads as one, and still refuses the rest of
// X-Auth-Request-* (the headers oauth2-proxy answers, which apps moved from
// it may trust).
func TestVerify_IngressNginxRedirectHintIsNotTheClientsIdentity(t *testing.T) {
	tg := newVerifyGW(t)
	_, cookie := tg.signIn(t, "ada")
	c := session.DomainCookieName + "=" + cookie
	for _, name := range []string{"X-Auth-Request-Redirect", "x-auth-request-redirect", "X_Auth_Request_Redirect", "X.Auth.Request.Redirect", "X-AUTH_REQUEST.redirect"} {
		h := nginxAsks("https://app1.example.com/reports", c)
		h[name] = []string{"/reports"}
		w := tg.ask("/_auth/verify", proxy, h)
		if w.Code != http.StatusOK || w.Header().Get("X-Auth-User-Id") == "" {
			t.Errorf("with ingress-nginx's %s: %d %s, want 200 with the identity", name, w.Code, w.Body)
		}
	}
	for _, name := range []string{"X-Auth-Request-User", "X-Auth-Request-Email", "x_auth_request_email", "X-Auth-Request-Redirect-To", "X-Auth-Request-Redirec", "X-Auth-Request-Access-Token"} {
		h := nginxAsks("https://app1.example.com/", c, "Accept", "application/json", "X-Auth-Request-Redirect", "/")
		h[name] = []string{"root@example.com"}
		w := tg.ask("/_auth/verify", proxy, h)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"header_not_allowed"`) {
			t.Errorf("with the client's %s: %d %s, want 400 header_not_allowed", name, w.Code, w.Body)
		}
	}
}
