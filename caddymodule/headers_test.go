package caddymodule_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/securecookie"
)

// spoofed are identity headers as an attacker might send them: every case,
// "_" for "-", repeated, and names the gateway never sets but owns.
var spoofed = map[string][]string{
	"X-Auth-User-Id":      {"user_attacker"},
	"x-auth-user-email":   {"ceo@example.com"},
	"X-AUTH-USER-NAME":    {"CEO"},
	"X_Auth_User_Id":      {"user_attacker"},
	"x_auth_user_email":   {"ceo@example.com"},
	"X-Auth_User-Id":      {"user_attacker"},
	"X-Auth-Session-Id":   {"sess_attacker", "sess_again"},
	"X-Auth-Token-Github": {"gho_attacker"},
	"X-Auth-Anything":     {"1"},
}

func sendSpoofed(t *testing.T, c *http.Client, rawURL string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
	req.Header.Set("Accept", "application/json")
	for k, v := range spoofed {
		req.Header[k] = v // set raw: keep the attacker's spelling on the wire
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestHeaders_SpoofedIdentityNeverReachesTheUpstream(t *testing.T) {
	e := newEnv(t, options{})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	real := e.Upstream.Last(t)

	resp := sendSpoofed(t, b.c, e.Base+"/spoof")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := e.Upstream.Last(t)
	for k, v := range got {
		norm := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		if !strings.HasPrefix(norm, "x-auth-") {
			continue
		}
		switch k {
		case "X-Auth-User-Id", "X-Auth-User-Email", "X-Auth-User-Email-Verified", "X-Auth-User-Name", "X-Auth-Session-Id", "X-Auth-Jwt":
			if len(v) != 1 || v[0] != real.Get(k) {
				t.Errorf("%s = %q, want only the gateway's %q", k, v, real.Get(k))
			}
		default:
			t.Errorf("spoofed header %s = %q reached the upstream", k, v)
		}
	}
	for _, v := range got {
		for _, s := range v {
			if strings.Contains(s, "attacker") || strings.Contains(s, "ceo@") {
				t.Errorf("a spoofed value reached the upstream: %q", s)
			}
		}
	}
}

func TestHeaders_UnauthenticatedSpoofedRequestIsRefused(t *testing.T) {
	e := newEnv(t, options{})
	resp := sendSpoofed(t, http.DefaultClient, e.Base+"/spoof")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	if n := len(e.Upstream.Requests()); n != 0 {
		t.Fatalf("the upstream received %d requests", n)
	}
}

func TestHeaders_PlaceholdersAndAccessLogCarryTheUser(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "access.log")
	e := newEnv(t, options{
		Site:  "log {\n\t\toutput file " + logFile + "\n\t}",
		Proxy: "header_up X-Placeholder-User {http.auth.user.id}|{http.auth.user.email}|{http.auth.user.name}",
	})
	b := newBrowser(t)
	b.signInDev(e, "/logged", ada)
	h := e.Upstream.Last(t)
	want := h.Get("X-Auth-User-Id") + "|ada@example.com|Ada Lovelace"
	if got := h.Get("X-Placeholder-User"); got != want {
		t.Errorf("placeholders gave %q, want %q", got, want)
	}
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"user_id":"`+h.Get("X-Auth-User-Id")+`"`) {
		t.Errorf("access log lacks the user id:\n%s", data)
	}
}

func TestSession_BadCookiesAreNoSessionNeverAnError(t *testing.T) {
	e := newEnv(t, options{})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	good := b.cookie(e.Base, "socialgate_session")
	foreign, _ := securecookie.EncodeMulti("socialgate_session", []byte("sess_whatever"),
		securecookie.New(securecookie.GenerateRandomKey(32), securecookie.GenerateRandomKey(32)))
	flip := []byte(good)
	flip[len(flip)/2] ^= 1
	cases := map[string]string{
		"flipped bit":   string(flip),
		"truncated":     good[:len(good)-5],
		"oversized":     strings.Repeat(good, 8),
		"wrong key":     foreign,
		"empty":         "",
		"not base64":    "%%%%!!!",
		"plain id":      e.Upstream.Last(t).Get("X-Auth-Session-Id"),
		"another value": good + good,
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			for _, accept := range []string{"application/json", "text/html"} {
				req, _ := http.NewRequest(http.MethodGet, e.Base+"/private", nil)
				req.Header.Set("Cookie", "socialgate_session="+value)
				req.Header.Set("Accept", accept)
				resp, err := newBrowser(t).c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				want := http.StatusUnauthorized
				if accept == "text/html" {
					want = http.StatusFound
				}
				if resp.StatusCode != want {
					t.Errorf("Accept %s: status %d, want %d", accept, resp.StatusCode, want)
				}
			}
		})
	}
	if status, _ := apiGet(t, b.c, e.Base+"/private", nil); status != http.StatusOK {
		t.Fatalf("the real cookie stopped working: %d", status)
	}
}

func TestHeaders_NestedHandlersShareTheSession(t *testing.T) {
	// A site-wide socialgate and another on a route: the inner one must see
	// the session the outer one authenticated (and stripped from the request).
	e := newEnv(t, options{})
	if err := e.Load(options{Site: strings.ReplaceAll("route /nested/* {\n\t\tsocialgate {\n\t\t\tforward_token dev\n\t\t}\n\t\treverse_proxy UPSTREAM\n\t}", "UPSTREAM", e.Upstream.Addr())}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	if status, body := apiGet(t, b.c, e.Base+"/nested/x", nil); status != http.StatusOK {
		t.Fatalf("nested route: %d %v", status, body)
	}
	h := e.Upstream.Last(t)
	if h.Get("X-Auth-User-Id") == "" || h.Get("X-Auth-Token-Dev") == "" || strings.Contains(h.Get("Cookie"), "socialgate_session") {
		t.Errorf("upstream of the nested route: user %q token set %v cookie %q",
			h.Get("X-Auth-User-Id"), h.Get("X-Auth-Token-Dev") != "", h.Get("Cookie"))
	}
}
