package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// Red-team findings, each reproduced through a real Caddy. Every test here
// fails on the code it was written against and passes once the finding is
// fixed. Run them alone: go test -run 'TestRedTeam' ./caddymodule/

// Finding 1: POST /_auth/sign-out with a native app's session token
// (Authorization: Bearer) answers like a successful sign-out (303 to the
// sign-in page, "signed out" in the log, sessions{event="ended"}), but only
// the sessions of the request's cookies are deleted (session.Manager.End):
// the token keeps working. "Sign-out deletes the server-side record, so a
// replayed cookie is dead" holds for cookies only.
func TestRedTeam_SignOutWithASessionTokenEndsItsSession(t *testing.T) {
	e, _ := newAdvEnv(t, "")
	token, _ := signInNative(t, e)
	bearer := http.Header{"Authorization": {"Bearer " + token}, "Accept": {"application/json"}}
	if resp, _ := advDo(t, http.MethodGet, e.Base+"/p", bearer, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the fresh session token: status %d", resp.StatusCode)
	}

	// The app signs out as a browser would: the sign-out page gives the
	// session's CSRF token, the POST ends the session.
	resp, page := advDo(t, http.MethodGet, e.Base+"/_auth/sign-out", http.Header{"Authorization": {"Bearer " + token}}, nil)
	csrf := htmlUnescape(between(page, `name="csrf_token" value="`, `"`))
	if resp.StatusCode != http.StatusOK || csrf == "" {
		t.Fatalf("the sign-out page for the token: status %d, csrf %q", resp.StatusCode, csrf)
	}
	resp, _ = advDo(t, http.MethodPost, e.Base+"/_auth/sign-out", http.Header{
		"Authorization": {"Bearer " + token}, "Content-Type": {"application/x-www-form-urlencoded"},
	}, strings.NewReader(url.Values{"csrf_token": {csrf}}.Encode()))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: status %d", resp.StatusCode)
	}

	if resp, _ := advDo(t, http.MethodGet, e.Base+"/p", bearer, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after a successful sign-out the session token still reaches the app: status %d, want 401", resp.StatusCode)
	}
}

// Finding 3: disconnecting a linked account (account page, backend API or
// CLI) leaves every session that was signed in through that account alive.
// Whoever signed in with the identity the user just removed (a compromised
// or shared account at the provider, an identity linked by mistake: the
// very case the link-by-email notice tells people to "disconnect any that
// is not yours" for) keeps the user's account for the session's whole
// lifetime. store.DeleteExternalAccount removes the account and its email
// vouching but no session, though each session records its AccountID.
func TestRedTeam_DisconnectEndsTheSessionsSignedInThroughTheAccount(t *testing.T) {
	e, _ := newLinkEnv(t, "", "")
	owner := newBrowser(t)
	owner.signInDev(e, "/", ada)
	if resp, _ := owner.connectCorp(e); resp.StatusCode != http.StatusOK {
		t.Fatalf("connecting corp: status %d", resp.StatusCode)
	}
	me := owner.me(e)
	corpID := accountID(me, "oauth_corp")
	if corpID == "" {
		t.Fatal("corp is not linked")
	}

	// Someone else who holds the corp identity signs in through it.
	intruder := newBrowser(t)
	intruder.follow(intruder.get(location(t, intruder.startSignIn(e, "/", "corp"))))
	if got := intruder.me(e)["id"]; got != me["id"] {
		t.Fatalf("the corp sign-in landed in %v, want the owner's %v", got, me["id"])
	}

	// The owner removes the corp identity from the account.
	_, csrf := owner.accountPage(e)
	resp, _ := owner.post(e.Base+"/_auth/account/disconnect", url.Values{"csrf_token": {csrf}, "account_id": {corpID}})
	if loc := location(t, resp); !strings.HasSuffix(loc, "/_auth/account?notice=disconnected") {
		t.Fatalf("disconnect went to %s", loc)
	}
	if got := providersOf(owner.me(e)); len(got) != 1 || got[0] != "oauth_dev" {
		t.Fatalf("the owner's accounts after the disconnect: %q", got)
	}

	if intruder.signedIn(e) {
		t.Error("the session signed in through the disconnected corp account still works")
	}
	if resp, _ := intruder.get(e.Base + "/"); resp.StatusCode == http.StatusOK {
		t.Error("the session signed in through the disconnected corp account still reaches the app")
	}
}

// Finding 4: the README's "Run behind another proxy" recipe (trusted_proxies
// + client_ip_headers X-Forwarded-For, "so the abuse limits see real client
// addresses") makes every rate limit, and the audit log's client_ip, follow
// an address the client picks. Without trusted_proxies_strict, Caddy takes
// the left-most X-Forwarded-For value, which is the one the client sent:
// front proxies (nginx's $proxy_add_x_forwarded_for, cloud load balancers)
// append the real peer after it. The gateway reads that value
// (handler.go clientIP → ratelimit), so one client gets a fresh bucket per
// request.
func TestRedTeam_BehindTheREADMEsProxyRecipeTheRateLimitSeesTheRealClient(t *testing.T) {
	var servers []string
	in := false
	for _, line := range strings.Split(readmeBlock(t, "**Run behind another proxy.**"), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "servers {":
			in = true
		case in && line == "}":
			in = false
		case in:
			// The front proxy runs on loopback here.
			servers = append(servers, strings.ReplaceAll(line, "10.0.0.0/8", "127.0.0.0/8"))
		}
	}
	if len(servers) == 0 {
		t.Fatal("the README's proxy recipe has no servers block")
	}
	op := startOP(t, testop.Options{})
	e := newEnv(t, options{
		Server: "servers {\n\t\t" + strings.Join(servers, "\n\t\t") + "\n\t}",
		Global: fmt.Sprintf("provider oidc corp {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret test-secret\n\t\t}\n\t\trate_limit start 3 1m", op.URL()),
	})
	addr := strings.TrimPrefix(e.Base, "http://")

	// One real client, 198.51.100.7, behind the front proxy (127.0.0.1),
	// which appends the address it saw to what the client sent.
	statuses := []int{}
	for i := range 6 {
		resp, _ := advRawFrom(t, "127.0.0.1", addr, "POST /_auth/oauth/corp/start HTTP/1.1\r\nHost: "+addr+
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n"+
			fmt.Sprintf("X-Forwarded-For: 203.0.113.%d, 198.51.100.7\r\n", i+1)+"Connection: close\r\n\r\n")
		statuses = append(statuses, resp.StatusCode)
	}
	limited := 0
	for _, s := range statuses {
		if s == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited != 3 {
		t.Errorf("6 starts of one client (3 allowed per minute), each claiming another address before the proxy's: statuses %v, want the last 3 refused with 429", statuses)
	}
}
