package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// clerkJSDir holds Clerk's JavaScript backend SDK, as .ci/run installs it
// (npm ci), and sdk.mjs, which drives it.
const clerkJSDir = "../test/clerkjs"

// clerkResult is one call's outcome as sdk.mjs prints it.
type clerkResult struct {
	OK      bool   `json:"ok"`
	Value   any    `json:"value"`
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// runClerkJS runs sdk.mjs in mode with env and stdin, and returns its
// results by call. Without node or the installed SDK the test is skipped,
// except in CI, where .ci/run installs both.
func runClerkJS(t *testing.T, mode string, env []string, stdin []byte) map[string]clerkResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(clerkJSDir, "node_modules", "@clerk", "backend"))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Clerk's JS SDK is not installed (.ci/run runs npm ci in test/clerkjs): %v", err)
		}
		t.Skipf("Clerk's JS SDK test skipped: %v (install it with: cd test/clerkjs && npm ci)", err)
	}
	cmd := exec.Command(node, "sdk.mjs", mode)
	cmd.Dir = clerkJSDir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node sdk.mjs %s: %v\n%s", mode, err, stderr.String())
	}
	var results map[string]clerkResult
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("node sdk.mjs %s printed %q: %v", mode, out, err)
	}
	return results
}

// jsonOf is v as compact JSON, to compare decoded values in one line.
func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Clerk's own JavaScript SDK (@clerk/backend), pointed at the gateway with
// the API key as its secret key: each call gets what it decodes, on both
// stores. sdk.mjs makes the calls; the user management ones work on a
// user they create (createUser … deleteUser).
func TestClerkJSSDK_CallsDecodeTheGatewaysAnswers(t *testing.T) {
	for _, storage := range storages {
		t.Run(storage, func(t *testing.T) { clerkJSSDKCalls(t, storage) })
	}
}

func clerkJSSDKCalls(t *testing.T, storage string) {
	e, op := clerkEnv(t, storage)
	b := newBrowser(t)
	op.SetClaims(map[string]any{"sub": "ada", "email": "ada@example.com", "email_verified": true, "name": "Ada Lovelace"})
	signInCorp(b, e)
	me := b.me(e)
	userID, eacID := me["id"].(string), accountsOf(me)[0]["id"].(string)
	got := runClerkJS(t, "api", []string{"SG_API_URL=" + e.Base + "/_auth/api", "SG_KEY=" + apiKey, "SG_USER_ID=" + userID}, nil)

	want := map[string]string{
		"users.getUser": `{"banned":false,"emailLinkedTo":["oauth_custom_corp"],"externalAccounts":[{"id":"` + eacID +
			`","identificationId":"` + me["primary_email_address_id"].(string) + `","provider":"oauth_custom_corp"}],` +
			`"firstName":"Ada","fullName":"Ada Lovelace","id":"` + userID + `","lastName":"Lovelace","locked":false,` +
			`"phoneNumbers":0,"primaryEmail":"ada@example.com","web3Wallets":0}`,
		"users.getUserOauthAccessToken":                  `{"tokens":[{"externalAccountId":"` + eacID + `","hasToken":true,"provider":"oauth_custom_corp"}],"totalCount":1}`,
		"redirectUrls.getRedirectUrl":                    `"myapp://js-callback"`,
		"redirectUrls.getRedirectUrlList":                `{"totalCount":1,"urls":["myapp://js-callback"]}`,
		"sessions.revokeSession":                         `"revoked"`,
		"redirectUrls.deleteRedirectUrl":                 `{"deleted":true,"id":"` + got["redirectUrls.createRedirectUrl"].idOf() + `","object":"redirect_url"}`,
		"redirectUrls.createRedirectUrl":                 `{"id":"` + got["redirectUrls.createRedirectUrl"].idOf() + `","url":"myapp://js-callback"}`,
		"sessions.getSessionList":                        "",
		"users.getUser (unknown)":                        "404 resource_not_found",
		"users.getUserOauthAccessToken (not configured)": "404 resource_not_found",
		"sessions.getSession":                            `{"expiresAfterUse":true,"sameId":true,"status":"active","userId":"` + userID + `"}`,
		"sessions.getSessionList (ended)":                `0`,
		"sessions.getSession (revoked)":                  "404 resource_not_found",
		"jwks.getJwks":                                   `[{"alg":"ES256","hasKid":true,"kty":"EC","use":"sig"}]`,
		"users.createUser":                               `{"banned":false,"externalAccounts":0,"externalId":"crm-2","firstName":"Grace","lastName":"Hopper","locked":false,"primaryEmail":"grace@example.com","privateMetadata":{"stripe":"cus_1"},"publicMetadata":{"plan":"pro","prefs":{"lang":"en","theme":"dark"}},"username":"grace_h","verification":"verified"}`,
		"users.createUser (taken)":                       "422 form_identifier_exists",
		"users.createUser (password)":                    "422 form_param_unknown",
		"users.updateUser":                               `{"banned":false,"externalAccounts":0,"externalId":"crm-2","firstName":"Amazing Grace","lastName":"Hopper","locked":false,"primaryEmail":"grace@example.com","privateMetadata":{"stripe":"cus_1"},"publicMetadata":{"plan":"pro","prefs":{"lang":"en","theme":"dark"}},"username":"grace_b","verification":"verified"}`,
		"users.updateUserMetadata":                       `{"banned":false,"externalAccounts":0,"externalId":"crm-2","firstName":"Amazing Grace","lastName":"Hopper","locked":false,"primaryEmail":"grace@example.com","privateMetadata":{"stripe":"cus_1"},"publicMetadata":{"plan":"pro","prefs":{"font":"mono","theme":"dark"},"seats":3},"username":"grace_b","verification":"verified"}`,
		"users.replaceUserMetadata":                      `{"banned":false,"externalAccounts":0,"externalId":"crm-2","firstName":"Amazing Grace","lastName":"Hopper","locked":false,"primaryEmail":"grace@example.com","privateMetadata":{"crm":7},"publicMetadata":{"plan":"pro","prefs":{"font":"mono","theme":"dark"},"seats":3},"username":"grace_b","verification":"verified"}`,
		"users.updateUser (metadata)":                    `{"lastName":"Hopper-Murray","privateMetadata":{"crm":7},"publicMetadata":{"plan":"free"}}`,
		"users.getUserList (email)":                      `{"ids":["created"],"totalCount":1}`,
		"users.getUserList (oldest first, paged)":        `{"ids":["signed-in"],"totalCount":2}`,
		"users.getUserList (filters)":                    `{"ids":["created"],"totalCount":1}`,
		"users.getUserList (phone)":                      "422 form_param_unknown",
		"users.getCount":                                 `2`,
		"users.lockUser":                                 `true`,
		"users.unlockUser":                               `false`,
		"users.banUser":                                  `true`,
		"users.getUserList (banned)":                     `["created"]`,
		"users.unbanUser":                                `false`,
		"users.deleteUser":                               `{"deleted":true,"object":"user","sameId":true}`,
		"users.getUser (deleted)":                        "404 resource_not_found",
	}
	for call, w := range want {
		r, ok := got[call]
		switch {
		case !ok:
			t.Errorf("%s: not run", call)
		case w != "" && w[0] >= '4' && w[0] <= '5':
			if r.OK || fmt.Sprint(r.Status, " ", r.Code) != w {
				t.Errorf("%s: %+v, want Clerk's error %s", call, r, w)
			}
		case !r.OK:
			t.Errorf("%s failed: %d %s %s", call, r.Status, r.Code, r.Message)
		case w != "" && jsonOf(r.Value) != w:
			t.Errorf("%s:\n got %s\nwant %s", call, jsonOf(r.Value), w)
		}
	}
	if s := jsonOf(got["sessions.getSessionList"].Value); !strings.Contains(s, `"totalCount":1`) ||
		!strings.Contains(s, `"status":"active"`) || !strings.Contains(s, `"userId":"`+userID+`"`) || !strings.Contains(s, `"clientId":"client_`) {
		t.Errorf("sessions.getSessionList: %s", s)
	}
}

// idOf is the id in a call's value, "" when there is none.
func (r clerkResult) idOf() string {
	m, _ := r.Value.(map[string]any)
	id, _ := m["id"].(string)
	return id
}

// Clerk's verifyWebhook (@clerk/backend/webhooks) accepts the gateway's
// deliveries as they arrived, with the endpoint's secret, and refuses one
// whose body was changed on the way.
func TestClerkJSSDK_VerifyWebhookAcceptsTheGatewaysDeliveries(t *testing.T) {
	h := newHookReceiver(t)
	e := newEnv(t, hookOptions(h))
	newBrowser(t).signInDev(e, "/", ada)
	waitFor(t, "the sign-in's events", func() bool { return len(h.delivered()) >= 3 })
	type delivery struct {
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	var in struct {
		Secret     string     `json:"secret"`
		Deliveries []delivery `json:"deliveries"`
	}
	in.Secret = hookSecret
	for _, d := range h.delivered()[:3] {
		headers := map[string]string{}
		for k := range d.Header {
			headers[k] = d.Header.Get(k)
		}
		in.Deliveries = append(in.Deliveries, delivery{headers, string(d.Body)})
	}
	tampered := in.Deliveries[0]
	tampered.Body = strings.Replace(tampered.Body, `"user.created"`, `"user.deleted"`, 1)
	in.Deliveries = append(in.Deliveries, tampered)
	stdin, _ := json.Marshal(in)
	got := runClerkJS(t, "webhook", nil, stdin)

	for i, typ := range []string{"user.created", "external_account.created", "session.created"} {
		r := got["verifyWebhook "+string(rune('0'+i))]
		v, _ := r.Value.(map[string]any)
		if !r.OK || v["type"] != typ || v["object"] != "event" || v["instanceId"] == nil || !strings.HasPrefix(v["instanceId"].(string), "ins_") {
			t.Errorf("delivery %d (%s): %+v", i, typ, r)
		}
	}
	if r := got["verifyWebhook 3"]; r.OK {
		t.Errorf("a tampered delivery verified: %+v", r.Value)
	}
}
