package caddymodule_test

import (
	"net/http"
	"testing"
)

// Found by the adversarial suite (cookie tossing). The session cookie is
// named socialgate_session whatever the scheme (no __Host- prefix), so a
// sibling subdomain, or anyone who can answer one plain-HTTP request for
// the host, can set a cookie of that name with a more specific path. The
// browser then sends two socialgate_session cookies, the tossed one first,
// and the gateway takes the first one (session.go cookieSessionID,
// r.Cookie): the victim's requests under that path reach the upstream as
// the attacker's user, and whatever the victim does there lands in the
// attacker's account. A request that carries two different session
// cookies is ambiguous; it must not be taken for either user.
func TestCookieTossing_TwoLiveSessionCookiesAreNoSession(t *testing.T) {
	e, _ := newAdvEnv(t, "")
	victim, attacker := newBrowser(t), newBrowser(t)
	victim.signInDev(e, "/", ada)
	attacker.signInDev(e, "/", person("Mallory", "mallory@example.com", true))
	victimID := signedInAs(t, e, sessionCookie(victim, e))
	attackerID := signedInAs(t, e, sessionCookie(attacker, e))

	// The attacker's cookie, tossed into the victim's browser for /app.
	victim.c.Jar.SetCookies(mustURL(e.Base+"/app/"), []*http.Cookie{{Name: "socialgate_session",
		Value: attacker.cookie(e.Base, "socialgate_session"), Path: "/app"}})
	before := len(e.Upstream.Requests())
	resp, _ := victim.get(e.Base + "/app/settings")
	if len(e.Upstream.Requests()) > before {
		if got := e.Upstream.Last(t).Get("X-Auth-User-Id"); got == attackerID {
			t.Errorf("the victim's request (user %s) reached the upstream as the attacker's user %s", victimID, got)
		} else {
			t.Errorf("a request with two session cookies reached the upstream as %q", got)
		}
	}
	if resp.StatusCode == http.StatusOK {
		t.Errorf("a request with two different session cookies was let through (status %d)", resp.StatusCode)
	}
}
