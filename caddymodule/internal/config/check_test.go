package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// env is the server's environment as the tests' Expand sees it.
var env = map[string]string{"{env.GOOD_SECRET}": strings.Repeat("s", 32), "{env.SHORT}": "s3cr3t-short"}

func testExpand(raw string) string {
	for name, value := range env {
		raw = strings.ReplaceAll(raw, name, value)
	}
	for _, name := range placeholder.FindAllString(raw, -1) {
		raw = strings.ReplaceAll(raw, name, "")
	}
	return raw
}

// options reads a JSON config, as the socialgate app's JSON holds it.
func options(t *testing.T, js string) *Options {
	t.Helper()
	o := new(Options)
	if err := json.Unmarshal([]byte(js), o); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return o
}

// A config mistake fails Prepare with a message that names the option, and
// never shows a secret's value.
func TestPrepare_RefusesMistakesByName(t *testing.T) {
	dev := `"dev_provider": {}`
	for _, c := range []struct{ name, json, want string }{
		{"no provider", `{}`, "no provider is configured"},
		{"a prefix without its slash", `{"prefix": "auth", ` + dev + `}`, "prefix"},
		{"a negative id token session", `{"id_token_session_lifetime": -1, ` + dev + `}`, "id_token_session_lifetime: -1ns is not a positive duration"},
		{"a negative duration", `{"flow_timeout": -1000000000, ` + dev + `}`, "flow_timeout: -1s is negative"},
		{"a directory and postgres", `{"storage": "/x", "postgres": {"dsn": "d", "secret": "{env.GOOD_SECRET}"}, ` + dev + `}`,
			"storage: both a directory and postgres are configured"},
		{"postgres without a secret", `{"postgres": {"dsn": "d"}, ` + dev + `}`, "storage postgres: secret is required"},
		{"a short postgres secret", `{"postgres": {"dsn": "d", "secret": "s3cr3t-written"}, ` + dev + `}`,
			"storage postgres: secret 1 is 14 characters"},
		{"a dev provider listening to the world", `{"dev_provider": {"listen": ":9999"}}`, "reachable from other machines"},
		{"two providers of one name", `{"providers": [{"name": "dev", "type": "github", "client_id": "a", "client_secret": "{env.GOOD_SECRET}"}], ` + dev + `}`,
			"provider dev: the name is used twice"},
		{"allow_groups of an unknown provider", `{"allow_groups": ["corp:admins"], ` + dev + `}`, "no provider named corp"},
		{"a webhook name with a space", `{"webhooks": [{"name": "a b", "url": "https://h.example.com", "secrets": ["whsec_x"]}], ` + dev + `}`,
			`webhook "a b": a name is 1 to 64 letters`},
		{"an unknown rate limit class", `{"rate_limits": {"signin": {"events": 1, "window": 1}}, ` + dev + `}`, `rate_limit: unknown class "signin"`},
		{"a cookie key from an unset variable", `{"cookie_keys": ["{env.UNSET}"], ` + dev + `}`, "cookie_keys: key 1 is empty: {env.UNSET} expands to nothing"},
		{"a short cookie key from the environment", `{"cookie_keys": ["{env.SHORT}"], ` + dev + `}`, "cookie_keys: key 1 is 12 characters"},
		{"a verify listener without a port", `{"forward_auth": {"url": "https://a.example.com", "listen": {"address": "127.0.0.1"}}, ` + dev + `}`,
			`forward_auth listen "127.0.0.1": want one port`},
		{"a verify listener on a port range", `{"forward_auth": {"url": "https://a.example.com", "listen": {"address": "127.0.0.1:4181-4182"}}, ` + dev + `}`,
			`forward_auth listen "127.0.0.1:4181-4182": want one port`},
		{"a verify listener on a unix socket", `{"forward_auth": {"url": "https://a.example.com", "listen": {"address": "unix//tmp/v.sock"}}, ` + dev + `}`,
			`want a TCP address`},
		{"a verify listener trusting a name", `{"forward_auth": {"url": "https://a.example.com", "listen": {"address": "127.0.0.1:4181", "trusted": ["10.0.0.0/33"]}}, ` + dev + `}`,
			`forward_auth listen: trusted "10.0.0.0/33" is not an IP range`},
		{"a short api key", `{"api_keys": ["{env.SHORT}"], ` + dev + `}`, "api_key: key 1 is 12 characters"},
	} {
		err := options(t, c.json).Prepare(testExpand, zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") { // every secret here holds it
			t.Errorf("%s: the error shows a secret: %v", c.name, err)
		}
	}
}

// Prepare sets the defaults later steps read, and warns of each secret
// written out in the config by its option, never its value.
func TestPrepare_DefaultsAndWrittenSecrets(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	o := options(t, `{"dev_provider": {}, "cookie_keys": ["{env.GOOD_SECRET}", "`+strings.Repeat("w", 40)+`"]}`)
	if err := o.Prepare(testExpand, zap.New(core)); err != nil {
		t.Fatal(err)
	}
	if o.Prefix != "/_auth" || time.Duration(o.SessionLifetime) != DefaultSessionLifetime || time.Duration(o.IDTokenSessionLifetime) != DefaultIDTokenSessionLifetime {
		t.Errorf("defaults: prefix %q, session_lifetime %v, id_token_session_lifetime %v", o.Prefix, o.SessionLifetime, o.IDTokenSessionLifetime)
	}
	var options []string
	for _, e := range logs.All() {
		options = append(options, e.ContextMap()["option"].(string))
		if strings.Contains(e.Message, "www") {
			t.Errorf("the warning shows the secret: %s", e.Message)
		}
	}
	if len(options) != 1 || options[0] != "cookie_keys: key 2" {
		t.Errorf("warned of %v, want [cookie_keys: key 2]", options)
	}
}

// CheckOption checks an option as a Caddyfile writes it, leaving what a
// placeholder holds to the server.
func TestCheckOption(t *testing.T) {
	for _, c := range []struct{ option, json, want string }{
		{"cookie_keys", `{"cookie_keys": ["{env.SHORT}"]}`, ""},
		{"cookie_keys", `{"cookie_keys": ["short"]}`, "cookie_keys: key 1 is 5 characters"},
		{"redirect_urls", `{"redirect_urls": ["myapp://cb", "myapp://cb"]}`, `"myapp://cb" is listed twice`},
		{"cookie_domain", `{"cookie_domain": ".example.com"}`, `cookie_domain ".example.com"`},
		{"admins", `{"admins": ["corp:admins", "ada@"]}`, "admins"},
		{"admins", `{"admins": ["corp:admins", "*@example.com"]}`, ""},
		{"webhook", `{"webhooks": [{"name": "a", "url": "https://h.example.com", "secrets": ["{env.HOOK}"]}]}`, ""},
		{"webhook", `{"webhooks": [{"name": "a", "url": "https://h.example.com", "secrets": ["whsec_!"]}]}`, "webhook a: secret 1"},
		{"rate_limit_ipv6_prefix", `{"rate_limit_ipv6_prefix": 16}`, "between 32 and 128"},
		{"provider", `{}`, ""},
	} {
		err := options(t, c.json).CheckOption(c.option)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s %s: %v, want %q", c.option, c.json, err, c.want)
		}
	}
}

// A verify listener trusts loopback unless told, and takes ranges and
// single addresses.
func TestVerifyListener_Parse(t *testing.T) {
	addr, trusted, err := (&VerifyListener{Address: "127.0.0.1:4181"}).Parse()
	if err != nil || addr.StartPort != 4181 || fmt.Sprint(trusted) != "[127.0.0.0/8 ::1/128]" {
		t.Errorf("default: %v %v %v, want loopback", addr, trusted, err)
	}
	_, trusted, err = (&VerifyListener{Address: "[::1]:4181", Trusted: []string{"10.1.2.3/8", "192.0.2.7", "fd00::/8"}}).Parse()
	if err != nil || fmt.Sprint(trusted) != "[10.0.0.0/8 192.0.2.7/32 fd00::/8]" {
		t.Errorf("ranges: %v %v", trusted, err)
	}
}
