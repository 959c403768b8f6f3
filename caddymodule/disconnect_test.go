package caddymodule_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Disconnecting a linked account (the account page, the backend API; the
// CLI and the admin API share the store's unlink) ends every session that
// was signed in through it: whoever signed in with the identity the user
// removed (a compromised or shared account at the provider, an identity
// linked by mistake: the very case the link-by-email notice tells people to
// "disconnect any that is not yours" for) keeps nothing of the account, on
// the very next request. The user's own session, signed in through another
// identity, goes on. Found open by a red-team run.
func TestDisconnect_EndsTheSessionsSignedInThroughTheAccount(t *testing.T) {
	for _, how := range []string{"account page", "backend API"} {
		t.Run(how, func(t *testing.T) {
			e, _ := newLinkEnv(t, "", "")
			if err := e.Load(options{Global: e.corp + "\n\t\tapi_key " + apiKey + "\n\t\tredirect_urls myapp://cb"}); err != nil {
				t.Fatal(err)
			}
			owner := newBrowser(t)
			owner.signInDev(e, "/", ada)
			if resp, _ := owner.connectCorp(e); resp.StatusCode != http.StatusOK {
				t.Fatalf("connecting corp: status %d", resp.StatusCode)
			}
			me := owner.me(e)
			corpID := accountID(me, "oauth_custom_corp")
			if corpID == "" {
				t.Fatal("corp is not linked")
			}

			// Someone else who holds the corp identity signs in through it,
			// in two browsers.
			intruder, intruder2 := newBrowser(t), newBrowser(t)
			for _, b := range []*browser{intruder, intruder2} {
				b.follow(b.get(location(t, b.startSignIn(e, "/", "corp"))))
				if got := b.me(e)["id"]; got != me["id"] {
					t.Fatalf("the corp sign-in landed in %v, want the owner's %v", got, me["id"])
				}
			}
			// And through a native app.
			token, _ := signInNative(t, e)
			bearer := http.Header{"Authorization": {"Bearer " + token}, "Accept": {"application/json"}}
			for what, status := range map[string]int{
				"browser": func() int { resp, _ := intruder.get(e.Base + "/"); return resp.StatusCode }(),
				"app":     func() int { resp, _ := advDo(t, http.MethodGet, e.Base+"/", bearer, nil); return resp.StatusCode }(),
			} {
				if status != http.StatusOK {
					t.Fatalf("the intruder's %s session before the disconnect: status %d", what, status)
				}
			}

			// The owner removes the corp identity from the account.
			switch how {
			case "account page":
				_, csrf := owner.accountPage(e)
				resp, _ := owner.post(e.Base+"/_auth/account/disconnect", url.Values{"csrf_token": {csrf}, "account_id": {corpID}})
				if loc := location(t, resp); !strings.HasSuffix(loc, "/_auth/account?notice=disconnected") {
					t.Fatalf("disconnect went to %s", loc)
				}
			case "backend API":
				if status, _, _ := apiCall(t, e, http.MethodDelete, "/users/"+me["id"].(string)+"/external_accounts/"+corpID); status != http.StatusOK {
					t.Fatalf("DELETE external account: status %d", status)
				}
			}
			if got := providersOf(owner.me(e)); len(got) != 1 || got[0] != "oauth_custom_dev" {
				t.Fatalf("the owner's accounts after the disconnect: %q", got)
			}

			for _, b := range []*browser{intruder, intruder2} {
				if b.signedIn(e) {
					t.Error("a session signed in through the disconnected corp account still works")
				}
				if resp, _ := b.get(e.Base + "/"); resp.StatusCode == http.StatusOK {
					t.Error("a session signed in through the disconnected corp account still reaches the app")
				}
			}
			if resp, _ := advDo(t, http.MethodGet, e.Base+"/", bearer, nil); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("the app's session signed in through the disconnected corp account: status %d, want 401", resp.StatusCode)
			}
			if !owner.signedIn(e) {
				t.Error("the owner's own session, signed in through the dev identity, ended")
			}
		})
	}
}

// The user's own sessions go on after a disconnect, but without an address
// that only the disconnected account vouched for: the upstream, the
// identity token and /me stop presenting it at once.
func TestDisconnect_TheOwnersSessionGoesOnWithoutTheAddressTheAccountVouchedFor(t *testing.T) {
	e, op := newLinkEnv(t, "", "")
	if err := e.Load(options{Global: e.corp, Proxy: "header_up X-Placeholder-Email \"{http.auth.user.email}\""}); err != nil {
		t.Fatal(err)
	}
	op.SetClaims(map[string]any{"sub": "corp-ada", "email": "ada@corp.example", "email_verified": true})
	owner := newBrowser(t)
	owner.signInDev(e, "/", person("Ada", "ada@home.example", false))
	if resp, _ := owner.connectCorp(e); resp.StatusCode != http.StatusOK {
		t.Fatalf("connecting corp: status %d", resp.StatusCode)
	}
	checkEmailUpstream(t, e, owner, "ada@corp.example")

	_, csrf := owner.accountPage(e)
	resp, _ := owner.post(e.Base+"/_auth/account/disconnect", url.Values{"csrf_token": {csrf}, "account_id": {accountID(owner.me(e), "oauth_custom_corp")}})
	if loc := location(t, resp); !strings.HasSuffix(loc, "/_auth/account?notice=disconnected") {
		t.Fatalf("disconnect went to %s", loc)
	}
	if !owner.signedIn(e) {
		t.Fatal("the owner's session, signed in through the dev identity, ended")
	}
	checkEmailUpstream(t, e, owner, "")
}
