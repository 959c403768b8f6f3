package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/socialgate/socialgate/internal/testkit"
)

// brokenCaddyfile is a mistake a newcomer makes in a Caddyfile: the
// message it must produce at parse time, and the line it points at.
type brokenCaddyfile struct {
	name, src string
	line      int
	want      string
}

// site is a site block that uses the gateway, after a global option.
const site = "\n:8080 {\n\tsocialgate\n}\n"

// global wraps lines in the socialgate global option (its first line is
// line 3 of the file) and a site that uses it.
func global(lines string) string {
	return "{\n\tsocialgate {\n" + lines + "\n\t}\n}" + site
}

// withSite is a global option with a dev provider and github, and a site
// whose socialgate block holds lines (its first line is line 13).
func withSite(lines string) string {
	return `{
	socialgate {
		dev_provider
		provider github {
			client_id Iv1.abc
			client_secret {env.GITHUB_CLIENT_SECRET}
		}
	}
}

:8080 {
	socialgate {
` + lines + `
	}
	reverse_proxy localhost:3000
}
`
}

var brokenCaddyfiles = []brokenCaddyfile{
	{"cookie_domain with a leading dot", global("\t\tcookie_domain .example.com"), 3, "cookie_domain \".example.com\": want a host name, like example.com, without a leading dot, a scheme or a port"},
	{"return_hosts with a path", global("\t\treturn_hosts app.example.com/back"), 3, "return_hosts: return-to host \"app.example.com/back\": has a path or query: write the host only"},
	{"return_hosts of a whole top-level domain", global("\t\treturn_hosts *.com"), 3, "return_hosts: return-to host \"*.com\": names every subdomain of a top-level domain"},
	{"forward_auth with an unknown option", global("\t\tdev_provider\n\t\tforward_auth https://auth.example.com {\n\t\t\tpolicies admins\n\t\t}"), 5, "unrecognized forward_auth option \"policies\" (want one of listen, policy)"},
	{"forward_auth listen without a port", global("\t\tdev_provider\n\t\tforward_auth https://auth.example.com {\n\t\t\tlisten 127.0.0.1\n\t\t}"), 5, `forward_auth listen "127.0.0.1": want one port, like 127.0.0.1:4181`},
	{"forward_auth listen trusting a bad range", global("\t\tdev_provider\n\t\tforward_auth https://auth.example.com {\n\t\t\tlisten 127.0.0.1:4181 {\n\t\t\t\ttrusted 10.0.0.0/8 10.0.0.0/33\n\t\t\t}\n\t\t}"), 6, `forward_auth listen: trusted "10.0.0.0/33" is not an IP range like 10.0.0.0/8 or an address`},
	{"forward_auth listen with an unknown option", global("\t\tdev_provider\n\t\tforward_auth https://auth.example.com {\n\t\t\tlisten 127.0.0.1:4181 {\n\t\t\t\ttrust 10.0.0.0/8\n\t\t\t}\n\t\t}"), 6, `unrecognized forward_auth listen option "trust" (want one of trusted)`},
	{"forward_auth policy with a typo", global("\t\tdev_provider\n\t\tforward_auth https://auth.example.com {\n\t\t\tpolicy admins {\n\t\t\t\tallow_group dev:admins\n\t\t\t}\n\t\t}"), 6, "unrecognized socialgate option \"allow_group\" (did you mean allow_groups?)"},
	{"google without client_secret", global("\t\tprovider google {\n\t\t\tclient_id abc.apps.googleusercontent.com\n\t\t}"), 3,
		"provider google: client_secret is required: write the secret the provider issued with the client id, like client_secret {env.GOOGLE_CLIENT_SECRET}"},
	{"provider without client_id", global("\t\tprovider github {\n\t\t\tclient_secret {env.GITHUB_CLIENT_SECRET}\n\t\t}"), 3,
		"provider github: client_id is required: write the client id the provider issued, like client_id {env.GITHUB_CLIENT_ID}"},
	{"require a typo of a configured provider", withSite("\t\trequire gitub"), 13,
		"socialgate require gitub: no provider named gitub is configured (did you mean github?)"},
	{"forward_token of an unconfigured provider", withSite("\t\tforward_token google"), 13,
		"socialgate forward_token google: no provider named google is configured (want one of dev, github)"},
	{"allow_groups of an unconfigured provider", global("\t\tdev_provider\n\t\tallow_groups corp:admins"), 4,
		`allow_groups: "corp:admins": no provider named corp is configured (want one of dev)`},
	{"route allow_groups of a typo", withSite("\t\tallow_groups githib:acme"), 13,
		`socialgate allow_groups: "githib:acme": no provider named githib is configured (did you mean github?)`},
	{"invalid redirect_urls entry", global("\t\tdev_provider\n\t\tredirect_urls myapp://cb javascript://x"), 4,
		`redirect_urls: native redirect URL "javascript://x": has scheme "javascript", which is never a redirect target`},
	{"duplicate redirect_urls entry", global("\t\tdev_provider\n\t\tredirect_urls myapp://cb\n\t\tredirect_urls myapp://cb"), 5,
		`redirect_urls: "myapp://cb" is listed twice`},
	{"unknown preset, a typo", global("\t\tprovider githbu {\n\t\t\tclient_id x\n\t\t}"), 3,
		`unknown provider type "githbu" (did you mean github?)`},
	{"oidc without issuer", global("\t\tprovider oidc corp {\n\t\t\tclient_id x\n\t\t\tclient_secret y\n\t\t}"), 3,
		"provider corp (oidc): issuer is required: the URL whose /.well-known/openid-configuration describes the provider, like issuer https://idp.example.com"},
	{"issuer over plain http", global("\t\tprovider oidc corp {\n\t\t\tclient_id x\n\t\t\tclient_secret y\n\t\t\tissuer http://sso.example.com/realms/corp\n\t\t}"), 6,
		`provider corp (oidc): issuer "http://sso.example.com/realms/corp" must use https (plain http is only for localhost, a private address or a single-label host name)`},
	{"scopes separated by commas", global("\t\tprovider github {\n\t\t\tclient_id x\n\t\t\tclient_secret y\n\t\t\tscopes repo,read:org\n\t\t}"), 6,
		`provider github: scopes: "repo,read:org" is not one scope: separate scopes with spaces, like scopes repo read:org`},
	{"route scopes separated by commas", withSite(`		require github scopes "repo, gist"`), 13,
		`socialgate require github: scopes: "repo, gist" is not one scope: separate scopes with spaces, like scopes repo gist`},
	{"two providers with one name", global("\t\tprovider github {\n\t\t\tclient_id x\n\t\t\tclient_secret y\n\t\t}\n\t\tprovider github {\n\t\t\tclient_id z\n\t\t\tclient_secret w\n\t\t}"), 7,
		"provider github: the name is used twice; give each provider its own name (provider <type> <name>)"},
	{"a provider named dev beside dev_provider", global("\t\tdev_provider\n\t\tprovider oidc dev {\n\t\t\tclient_id x\n\t\t\tissuer https://idp.example.com\n\t\t}"), 4,
		"provider dev: the name is used twice; give each provider its own name (provider <type> <name>)"},
	{"apple with a client_secret", global("\t\tprovider apple {\n\t\t\tclient_id com.example.web\n\t\t\tclient_secret abc\n\t\t\tteam_id T\n\t\t\tkey_id K\n\t\t\tprivate_key {file./etc/AuthKey.p8}\n\t\t}"), 5,
		"provider apple: client_secret does not apply to apple: the gateway signs its own from team_id, key_id and private_key"},
	{"apple without team_id", global("\t\tprovider apple {\n\t\t\tclient_id com.example.web\n\t\t\tkey_id K\n\t\t\tprivate_key {file./etc/AuthKey.p8}\n\t\t}"), 3,
		"provider apple: team_id is required: apple signs its client secret with team_id, key_id and private_key"},
	{"public client without PKCE", global("\t\tprovider oidc corp {\n\t\t\tissuer https://idp.example.com\n\t\t\tclient_id x\n\t\t\tpkce off\n\t\t}"), 3,
		"provider corp (oidc): without a client_secret the client is public and needs PKCE: remove pkce off, or add the client_secret"},
	{"short api_key written in the file", global("\t\tdev_provider\n\t\tapi_key secret123"), 4,
		"api_key: key 1 is 9 characters; use at least 32 random characters, like the output of openssl rand -base64 32"},
	{"unparseable duration", global("\t\tdev_provider\n\t\tsession_lifetime 7days"), 4,
		`session_lifetime: "7days" is not a positive duration`},
	{"negative duration", global("\t\tdev_provider\n\t\tflow_timeout -5m"), 4,
		`flow_timeout: "-5m" is not a positive duration`},
	{"public with require", withSite("\t\tpublic\n\t\trequire github"), 14,
		"socialgate public: a public route lets everyone through; it cannot also require, forward_token, allow_emails or allow_groups"},
	{"webhook over plain http to the internet", global("\t\tdev_provider\n\t\twebhook app http://hooks.example.com/socialgate {\n\t\t\tsecret {env.WEBHOOK_SECRET}\n\t\t}"), 4,
		`webhook app: "http://hooks.example.com/socialgate" must use https (plain http is only for localhost, a private address or a single-label host name)`},
	{"webhook URL not a URL", global("\t\tdev_provider\n\t\twebhook app hooks.example.com {\n\t\t\tsecret {env.WEBHOOK_SECRET}\n\t\t}"), 4,
		`webhook app: "hooks.example.com" is not an absolute http(s) URL`},
	{"dev_provider on every interface", global("\t\tdev_provider 0.0.0.0:9999"), 3,
		"dev_provider: 0.0.0.0:9999 is reachable from other machines, and the dev provider signs anyone in as anyone: listen on localhost:PORT, or add allow_remote to the dev_provider block if that is what you want"},
	{"storage and postgres", global("\t\tdev_provider\n\t\tstorage /var/lib/socialgate\n\t\tstorage postgres {\n\t\t\tdsn {env.DATABASE_URL}\n\t\t\tsecret {env.SOCIALGATE_SECRET}\n\t\t}"), 5,
		"storage is already set at line 4: write it once"},
	{"postgres without a secret", global("\t\tdev_provider\n\t\tstorage postgres {\n\t\t\tdsn {env.DATABASE_URL}\n\t\t}"), 4,
		"storage postgres: secret is required: the same random secret of 32 or more characters on every gateway of the database, like secret {env.SOCIALGATE_SECRET}"},
	{"an option written twice", global("\t\tdev_provider\n\t\tprefix /auth\n\t\tprefix /_auth"), 5,
		"prefix is already set at line 4: write it once"},
	{"unknown global option, a typo", global("\t\tdev_provider\n\t\tsesion_lifetime 24h"), 4,
		`unrecognized socialgate option "sesion_lifetime" (did you mean session_lifetime?)`},
	{"unknown route option", withSite("\t\tcolour blue"), 13,
		`unrecognized socialgate option "colour" (want one of public, require, forward_token, allow_emails, allow_groups, identity_audience)`},
	{"unknown provider option, a typo", global("\t\tprovider github {\n\t\t\tclient_id x\n\t\t\tclient_secert y\n\t\t}"), 5,
		`unrecognized option "client_secert" in provider github (did you mean client_secret?)`},
	{"unknown route option, a typo", withSite("\t\trequires github"), 13,
		`unrecognized socialgate option "requires" (did you mean require?)`},
	{"unknown dev_provider option", global("\t\tdev_provider {\n\t\t\tport 9999\n\t\t}"), 4,
		`unrecognized dev_provider option "port" (want one of listen, access_token_lifetime, link_by_email, allow_remote, provider)`},
	{"unknown option of a dev identity, a typo", global("\t\tdev_provider {\n\t\t\tprovider corp {\n\t\t\t\tgrant repo\n\t\t\t}\n\t\t}"), 5,
		`unrecognized option "grant" in dev_provider provider corp (did you mean grants?)`},
	{"forward_token a typo of dev", withSite("\t\tforward_token dve"), 13,
		"socialgate forward_token dve: no provider named dve is configured (did you mean dev?)"},
	{"rate_limit of an unknown class", global("\t\tdev_provider\n\t\trate_limit signin 10 1m"), 4,
		`rate_limit: unknown class "signin" (want start, callback, native, logout or api)`},
	{"sign_out_at_provider where there is no discovery", global("\t\tprovider github {\n\t\t\tclient_id x\n\t\t\tclient_secret {env.GITHUB_CLIENT_SECRET}\n\t\t\tsign_out_at_provider on\n\t\t}"), 6,
		"provider github: sign_out_at_provider needs an OpenID provider found by discovery (whose document names its end_session_endpoint); this one has none"},
	{"postgres previous secret too short", global("\t\tdev_provider\n\t\tstorage postgres {\n\t\t\tdsn {env.DATABASE_URL}\n\t\t\tsecret {env.SOCIALGATE_SECRET} oldsecret\n\t\t}"), 4,
		"storage postgres: secret 2 is 9 characters; use at least 32 random characters, like the output of openssl rand -base64 32"},
	{"no provider at all", global("\t\tapp_name Demo"), 2,
		"no provider is configured: add dev_provider or a provider block to the socialgate global option"},
	{"route without the global option", "http://localhost:8080 {\n\tsocialgate\n}\n", 2,
		"the socialgate directive needs the socialgate global option, where the providers are: add { socialgate { dev_provider } } at the top of the Caddyfile, or a provider block"},
}

// parseError is the whole error Caddy's adapter gives for a message of a
// directive or global option at a line of the Caddyfile.
func parseError(b brokenCaddyfile) string {
	return fmt.Sprintf("parsing caddyfile tokens for 'socialgate': %s, at Caddyfile:%d", b.want, b.line)
}

func TestCaddyfileMistakes_FailAtParseTimeWithTheirLine(t *testing.T) {
	for _, b := range brokenCaddyfiles {
		t.Run(b.name, func(t *testing.T) {
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(b.src), map[string]any{"filename": "Caddyfile"})
			if err == nil || err.Error() != parseError(b) {
				t.Fatalf("adapting:\n%s\ngot:  %v\nwant: %s", b.src, err, parseError(b))
			}
		})
	}
}

// TestCaddyfileMistakes_SocialgateValidatePrintsThem runs `socialgate
// validate` on each broken Caddyfile: it exits 1 and prints the message
// with its line.
func TestCaddyfileMistakes_SocialgateValidatePrintsThem(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary; skipped with -short")
	}
	bin := cli(testkit.Socialgate(t))
	for _, b := range brokenCaddyfiles {
		t.Run(b.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "Caddyfile")
			if err := os.WriteFile(file, []byte(b.src), 0o600); err != nil {
				t.Fatal(err)
			}
			r := bin.run(t, "validate", "--config", file)
			if want := "adapting config using caddyfile: " + strings.Replace(parseError(b), "Caddyfile:", file+":", 1); r.code != 1 || lastError(r.stderr) != want {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and the error %q", r.code, r.stderr, want)
			}
		})
	}
}

// lastError is the message of the last error log line in a Caddy
// command's stderr.
func lastError(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var entry struct{ Level, Msg string }
		if json.Unmarshal([]byte(lines[i]), &entry) == nil && entry.Level == "error" {
			return entry.Msg
		}
	}
	return ""
}
