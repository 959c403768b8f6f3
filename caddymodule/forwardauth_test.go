package caddymodule_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/internal/testkit"
)

// These tests put the gateway behind real proxies: nginx with auth_request
// (the configuration of docs/forward-auth.md) and Caddy's own forward_auth,
// on hosts under sso.test that every client here resolves to 127.0.0.1.
// The gateway is auth.sso.test; app1 and app2 are behind nginx, app3
// behind Caddy's forward_auth, app5 too under the policy nobody (which
// admits no one). The docs' recipes ask a policy per app (app1, app2,
// app3); the test's nginx asks the default policy for app1 and app2.

// ssoEnv is the running set-up.
type ssoEnv struct {
	*env
	gwPort, nginxPort, traefikPort int
	nginxH2Port                    int // nginx's h2c listener
	// verifyPort is forward_auth's own listener (trusting 127.0.0.1/32,
	// as the server's trusted_proxies); nginx asks it when nginxAsks is
	// verifyPort, else the gateway's site at gwPort.
	verifyPort, nginxAsks int
	Auth                  string // http://auth.sso.test:gwPort
	App1, App2, App3      string
}

// nginxBin is Debian's nginx, which .ci/run installs.
const nginxBin = "/usr/sbin/nginx"

func newSSOEnv(t *testing.T) *ssoEnv {
	t.Helper()
	return newSSOEnvAsking(t, false)
}

// newSSOEnvAsking is newSSOEnv with nginx asking forward_auth's own
// listener when listener is true.
func newSSOEnvAsking(t *testing.T, listener bool) *ssoEnv {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skip("nginx is not installed (.ci/run installs it)")
	}
	s := startSSOGateway(t)
	if s.nginxAsks = s.gwPort; listener {
		s.nginxAsks = s.verifyPort
	}
	s.startNginx()
	return s
}

// startSSOGateway starts the gateway and the app3 site, with no proxy in
// front of app1 and app2 yet.
func startSSOGateway(t *testing.T) *ssoEnv {
	t.Helper()
	e := &env{t: t, Storage: t.TempDir(), Upstream: newUpstream(t), port: testkit.FreePort(t), devPort: testkit.FreePort(t)}
	s := &ssoEnv{env: e, gwPort: e.port, nginxPort: testkit.FreePort(t), traefikPort: testkit.FreePort(t), nginxH2Port: testkit.FreePort(t),
		verifyPort: testkit.FreePort(t)}
	s.Auth = fmt.Sprintf("http://auth.sso.test:%d", s.gwPort)
	s.App1 = fmt.Sprintf("http://app1.sso.test:%d", s.nginxPort)
	s.App2 = fmt.Sprintf("http://app2.sso.test:%d", s.nginxPort)
	s.App3 = fmt.Sprintf("http://app3.sso.test:%d", s.gwPort)
	e.DevURL = fmt.Sprintf("http://127.0.0.1:%d", e.devPort)
	e.Base = s.Auth
	if err := loadCaddyfile(s.caddyfile()); err != nil {
		t.Fatalf("loading config: %v", err)
	}
	e.stopAtCleanup()
	return s
}

func (s *ssoEnv) caddyfile() string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	log {
		output file %[1]s/debug.log
		level DEBUG
		%[2]s
	}
	storage file_system %[1]s/caddy
	servers {
		trusted_proxies static 127.0.0.1/32
		trusted_proxies_strict
	}
	socialgate {
		storage %[1]s/socialgate
		dev_provider 127.0.0.1:%[3]d
		cookie_domain sso.test
		return_hosts http://*.sso.test:%[4]d http://*.sso.test:%[5]d http://*.sso.test:%[7]d
		redirect_urls myapp://cb
		forward_auth http://auth.sso.test:%[5]d {
			listen 127.0.0.1:%[9]d {
				trusted 127.0.0.1/32
			}
			policy nobody {
				allow_emails nobody@example.com
			}
			# docs/forward-auth.md's policy per app, which its ingress-nginx,
			# Traefik and Caddy recipes ask.
			policy app1 {
				identity_audience https://app1.example.com
			}
			policy app2 {
				identity_audience https://app2.example.com
			}
			policy app3 {
				identity_audience https://app3.example.com
			}
		}
	}
}
http://auth.sso.test:%[5]d {
	socialgate
	respond "gateway home"
}
# The address Traefik asks, which it sends as the Host.
http://127.0.0.1:%[5]d {
	socialgate
}
%[8]s
http://app5.sso.test:%[5]d {
	forward_auth 127.0.0.1:%[5]d {
		uri /_auth/verify/nobody
		header_up Host auth.sso.test:%[5]d
		copy_headers X-Auth-User-Id X-Auth-User-Email X-Auth-User-Email-Verified X-Auth-User-Name X-Auth-User-Groups X-Auth-Session-Id X-Auth-Jwt
	}
	reverse_proxy %[6]s
}
`, s.Storage, logFilter(s.t), s.devPort, s.nginxPort, s.gwPort, s.Upstream.Addr(), s.traefikPort, s.caddyRecipe(), s.verifyPort)
}

// caddyRecipe is docs/forward-auth.md's Caddy forward_auth site, for app3
// on the test's ports.
func (s *ssoEnv) caddyRecipe() string {
	return replaceAll(s.t, docCode(s.t, "docs/forward-auth.md", "## Caddy `forward_auth`", "caddyfile"),
		"app3.example.com", fmt.Sprintf("http://app3.sso.test:%d", s.gwPort),
		"auth-internal:8080", fmt.Sprintf("127.0.0.1:%d", s.gwPort),
		"auth.example.com", fmt.Sprintf("auth.sso.test:%d", s.gwPort),
		"localhost:3000", s.Upstream.Addr())
}

// nginxConf is docs/forward-auth.md's nginx configuration, on the test's
// ports and paths (TestForwardAuth_NginxConfIsTheDocs checks its lines).
func (s *ssoEnv) nginxConf(dir string) string {
	return fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;

	server {
		listen 127.0.0.1:%[2]d;
		listen 127.0.0.1:%[5]d http2;
		server_name app1.sso.test app2.sso.test;

		location = /_socialgate_verify {
			internal;
			proxy_pass http://127.0.0.1:%[6]d/_auth/verify;
			proxy_pass_request_body off;
			proxy_set_header Content-Length "";
			proxy_set_header Host auth.sso.test:%[3]d;
			proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
			proxy_set_header X-Original-Method $request_method;
			proxy_set_header X-Forwarded-Uri "";
			proxy_set_header Upgrade $http_upgrade;
			proxy_buffer_size 32k;
			proxy_buffers 4 32k;
		}

		location / {
			auth_request /_socialgate_verify;
			auth_request_set $auth_location $upstream_http_location;
			error_page 401 =302 $auth_location;

			auth_request_set $auth_user_id $upstream_http_x_auth_user_id;
			auth_request_set $auth_user_email $upstream_http_x_auth_user_email;
			auth_request_set $auth_user_email_verified $upstream_http_x_auth_user_email_verified;
			auth_request_set $auth_user_name $upstream_http_x_auth_user_name;
			auth_request_set $auth_user_groups $upstream_http_x_auth_user_groups;
			auth_request_set $auth_session_id $upstream_http_x_auth_session_id;
			auth_request_set $auth_jwt $upstream_http_x_auth_jwt;
			proxy_set_header X-Auth-User-Id $auth_user_id;
			proxy_set_header X-Auth-User-Email $auth_user_email;
			proxy_set_header X-Auth-User-Email-Verified $auth_user_email_verified;
			proxy_set_header X-Auth-User-Name $auth_user_name;
			proxy_set_header X-Auth-User-Groups $auth_user_groups;
			proxy_set_header X-Auth-Session-Id $auth_session_id;
			proxy_set_header X-Auth-Jwt $auth_jwt;
			auth_request_set $app_cookie $upstream_http_cookie;
			proxy_set_header Cookie $app_cookie;
			auth_request_set $app_authorization $upstream_http_authorization;
			proxy_set_header Authorization $app_authorization;
			proxy_pass http://%[4]s;
		}
	}
}
`, dir, s.nginxPort, s.gwPort, s.Upstream.Addr(), s.nginxH2Port, s.nginxAsks)
}

func (s *ssoEnv) startNginx() { s.startNginxWith(s.nginxConf) }

// startNginxWith runs nginx with the configuration conf writes for its
// directory, listening on s.nginxPort.
func (s *ssoEnv) startNginxWith(conf func(dir string) string) {
	t := s.t
	dir := filepath.Join(s.Storage, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginxBin, "-p", dir, "-c", confPath)
	if out, err := exec.Command(nginxBin, "-t", "-p", dir, "-c", confPath).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if log, _ := os.ReadFile(filepath.Join(dir, "error.log")); t.Failed() {
			t.Logf("nginx error.log:\n%s", log)
		}
	})
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.nginxPort)); err == nil {
			c.Close()
			return
		}
	}
	t.Fatal("nginx did not start listening")
}

// ssoBrowser is a test browser that resolves every *.sso.test host to
// 127.0.0.1.
func ssoBrowser(t *testing.T) *browser {
	b := newBrowser(t)
	tr := testTransport().Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, _ := net.SplitHostPort(addr)
		if strings.HasSuffix(host, ".sso.test") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	// *.sso.test is this machine, never the proxy that stands for the
	// internet (discovery_test.go).
	tr.Proxy = nil
	jar, _ := cookiejar.New(nil)
	b.c.Transport, b.c.Jar = tr, jar
	return b
}

// signInAt opens appURL unauthenticated, expects to be sent to the
// gateway's sign-in page with appURL to come back to, signs in as ada at
// the dev provider, and returns the page the browser lands on.
func (s *ssoEnv) signInAt(b *browser, appURL string) (*http.Response, string) {
	t := s.t
	resp, _ := b.get(appURL)
	signIn := location(t, resp)
	want := s.Auth + "/_auth/sign-in?return_to=" + url.QueryEscape(appURL)
	if signIn != want {
		t.Fatalf("GET %s sent the browser to %s, want %s", appURL, signIn, want)
	}
	resp, page := b.get(signIn)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in page: %d", resp.StatusCode)
	}
	action, returnTo, err := testkit.SignInButton(page, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if returnTo != appURL {
		t.Fatalf("the sign-in page comes back to %q, want %q", returnTo, appURL)
	}
	resp, _ = b.post(s.Auth+action, url.Values{"return_to": {returnTo}})
	resp, body, _ := b.atDevProvider(location(t, resp), ada)
	return b.follow(resp, body)
}
