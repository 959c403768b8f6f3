package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestReload_KeepsTheStoreOpenAndSessionsValid(t *testing.T) {
	e := newEnv(t, options{})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	userID := e.Upstream.Last(t).Get("X-Auth-User-Id")

	configs := []options{
		{Global: "app_name Second"},
		{Global: "app_name Third\n\t\tsession_lifetime 48h"},
		{Global: "provider oidc other {\n\t\t\tissuer http://127.0.0.1:1\n\t\t\tclient_id x\n\t\t}"},
		{},
	}
	for i, o := range configs {
		if err := e.Load(o); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
		status, _ := apiGet(t, b.c, e.Base+"/after-reload", nil)
		if status != http.StatusOK {
			t.Fatalf("after reload %d the session is gone: status %d", i+1, status)
		}
		if got := e.Upstream.Last(t).Get("X-Auth-User-Id"); got != userID {
			t.Fatalf("after reload %d the user is %s, want %s", i+1, got, userID)
		}
	}
	// New sign-ins work after the reloads: the store and dev provider are live.
	resp, _ := newBrowser(t).signInDev(e, "/", person("New Person", "new@example.com", true))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in after reloads: status %d", resp.StatusCode)
	}

	// Stopping releases the store: its directory can be opened again.
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	openStopped(t, e).Close()
}

func TestRestart_KeepsSessions(t *testing.T) {
	e := newEnv(t, options{})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := e.Load(options{}); err != nil {
		t.Fatal(err)
	}
	if status, _ := apiGet(t, b.c, e.Base+"/after-restart", nil); status != http.StatusOK {
		t.Fatalf("after a restart the session is gone: status %d", status)
	}
}

func TestConfig_ErrorsNameTheProblem(t *testing.T) {
	e := newEnv(t, options{})
	cases := []struct {
		name   string
		global string
		want   string
	}{
		{"missing client_id", "provider oidc corp {\n issuer https://idp.example.com\n }", "client_id is required"},
		{"unknown provider type", "provider saml corp {\n client_id x\n }", `unknown provider type "saml"`},
		{"bad issuer URL", "provider oidc corp {\n issuer idp.example.com\n client_id x\n }", `issuer "idp.example.com" is not an absolute http(s) URL`},
		{"issuer with fragment", "provider oidc corp {\n issuer https://idp.example.com/#x\n client_id x\n }", "is not an absolute http(s) URL"},
		{"duplicate provider name", "provider oidc corp {\n issuer https://a.example.com\n client_id x\n }\n provider oidc corp {\n issuer https://b.example.com\n client_id y\n }", "provider corp: the name is used twice"},
		{"dev provider name taken", "provider oidc dev {\n issuer https://a.example.com\n client_id x\n }", "provider dev: the name is used twice"},
		{"two providers of one issuer", "provider oidc corp {\n issuer https://a.example.com\n client_id x\n }\n provider oidc staff {\n issuer https://a.example.com\n client_id y\n }",
			"provider staff: its issuer https://a.example.com is provider corp's too"},
		{"two oauth2 providers of one host", "provider oauth2 one {\n authorize_url https://a.example.com/one/auth\n token_url https://a.example.com/token\n userinfo_url https://a.example.com/me\n client_id x\n }\n" +
			" provider oauth2 two {\n authorize_url https://a.example.com/two/auth\n token_url https://a.example.com/token\n userinfo_url https://a.example.com/me\n client_id y\n }",
			"provider two: its issuer https://a.example.com is provider one's too"},
		{"oauth2 without token url", "provider oauth2 plain {\n authorize_url https://a.example.com/auth\n userinfo_url https://a.example.com/me\n client_id x\n }", "provider plain (oauth2): token_url is required"},
		{"short cookie key", "cookie_keys tooshort", "cookie_keys: key 1 is 8 characters"},
		{"unknown option", "colour blue", `unrecognized socialgate option "colour"`},
		{"unknown provider option", "provider oidc corp {\n issuer https://a.example.com\n client_id x\n scope openid\n }", `unrecognized option "scope" in provider corp`},
		{"bad duration", "session_lifetime forever", `session_lifetime: "forever" is not a positive duration`},
		{"bad id token session lifetime", "id_token_session_lifetime 0s", `id_token_session_lifetime: "0s" is not a positive duration`},
		{"native client ids on github", "provider github {\n client_id x\n client_secret y\n native_client_ids app\n }", "native_client_ids apply only to OpenID providers"},
		{"negative idle timeout", "session_idle_timeout -1m", `session_idle_timeout: "-1m" is not a duration`},
		{"zero reauthentication window", "reauthenticate_after 0", `reauthenticate_after: "0" is not a positive duration`},
		{"bad accent", "accent red", `accent colour "red" is not a hex colour`},
		{"bad prefix", "prefix auth/", `prefix "auth/" must be a path`},
		{"bad return url", "return_urls javascript:alert(1)", "return_urls"},
		{"bad identity key delay", "identity_key_delay soon", `identity_key_delay: "soon" is not a duration`},
		{"postgres secret without a value", "storage postgres {\n dsn postgres://127.0.0.1:1/x\n secret\n }", "wrong argument count"},
		{"bad sign_in value", "provider oidc corp {\n issuer https://a.example.com\n client_id x\n sign_in maybe\n }", `sign_in: want on or off, got "maybe"`},
		{"link_by_email on, never verified", "provider oauth2 plain {\n authorize_url https://a.example.com/auth\n token_url https://a.example.com/token\n userinfo_url https://a.example.com/me\n client_id x\n link_by_email on\n }",
			"provider plain (oauth2): link_by_email is on, but the provider never reports a verified email address: map one with fields { email_verified <path> }"},
		{"link_by_email on for facebook", "provider facebook {\n client_id x\n link_by_email on\n }", "provider facebook: link_by_email is on, but the provider never reports a verified email address"},
		{"bad sign_out_at_provider value", "provider oidc corp {\n issuer https://a.example.com\n client_id x\n sign_out_at_provider yes\n }", `sign_out_at_provider: want on or off, got "yes"`},
		{"sign_out_at_provider without discovery", "provider github {\n client_id x\n client_secret y\n sign_out_at_provider on\n }", "provider github: sign_out_at_provider needs an OpenID provider found by discovery"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e.Load(options{Global: tc.global})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
	t.Run("bad dev provider link_by_email", func(t *testing.T) {
		err := e.Load(options{Dev: "link_by_email maybe"})
		if err == nil || !strings.Contains(err.Error(), `link_by_email: want on or off, got "maybe"`) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("no provider at all", func(t *testing.T) {
		err := e.Load(options{NoDev: true})
		if err == nil || !strings.Contains(err.Error(), "no provider is configured") {
			t.Fatalf("error = %v", err)
		}
	})

	// Failed loads release what they acquired: a good config on the same
	// storage still loads and serves.
	if err := e.Load(options{}); err != nil {
		t.Fatalf("a good config after the failures: %v", err)
	}
	resp, _ := newBrowser(t).signInDev(e, "/", ada)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in after failed loads: status %d", resp.StatusCode)
	}
}

func TestConfig_SecretsAreExpandedAtLoadNotStored(t *testing.T) {
	t.Setenv("SG_TEST_SECRET", "s3cr3t-from-env")
	e := newEnv(t, options{})
	src := e.Caddyfile(options{Global: fmt.Sprintf("provider oidc corp {\n issuer https://a.example.com\n client_id x\n client_secret {env.SG_TEST_SECRET}\n }\n cookie_keys {env.SG_TEST_SECRET}-padded-to-thirty-two-chars")})
	if err := loadCaddyfile(src); err != nil {
		t.Fatal(err)
	}
	cfg, err := caddy.ActiveContext().App("socialgate")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(mustJSON(t, cfg), "s3cr3t-from-env") {
		t.Fatal("the expanded secret sits in the config")
	}
}
