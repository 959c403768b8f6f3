package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/internal/testkit"
)

// ingressAnnotations returns the nginx.ingress.kubernetes.io annotations of
// docs/forward-auth.md's Ingress, by name (auth-url, auth-signin, ...).
func ingressAnnotations(t *testing.T) map[string]string {
	t.Helper()
	doc := docCode(t, "docs/forward-auth.md", "## ingress-nginx (Kubernetes)", "yaml")
	a := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*nginx\.ingress\.kubernetes\.io/([a-z-]+):\s*"([^"]*)"\s*$`).FindAllStringSubmatch(doc, -1) {
		a[m[1]] = m[2]
	}
	if a["auth-url"] == "" || a["auth-signin"] == "" || a["auth-response-headers"] == "" {
		t.Fatalf("the docs' Ingress lacks auth-url, auth-signin or auth-response-headers: %v", a)
	}
	return a
}

// ingressNginxConf is the server ingress-nginx generates for the docs'
// Ingress (host app1), on the test's ports: the lines of its
// rootfs/etc/nginx/template/nginx.tmpl for an auth-url location (auth_request,
// no auth cache, no keepalive to the auth service), with its defaults
// (proxy-buffer-size 4k, proxy-buffering off, HTTP/1.1 to the services)
// where the docs' annotations set nothing, and HTTP/2 (on by default) on a
// listener of its own, in cleartext (prior knowledge), as the test's nginx
// configuration has. Two stand-ins: the auth service is the gateway's
// internal address, and $escaped_request_uri, which the controller sets with
// set-misc's set_escape_uri (not in Debian's nginx), is $request_uri: the
// test's paths need no escaping. The sign-in URL's $host is $http_host, since
// the test's hosts carry a port.
func (s *ssoEnv) ingressNginxConf(dir string) string {
	t := s.t
	a := ingressAnnotations(t)
	authURL, err := url.Parse(a["auth-url"])
	if err != nil {
		t.Fatal(err)
	}
	authURL.Host = fmt.Sprintf("127.0.0.1:%d", s.gwPort)
	signIn := strings.ReplaceAll(strings.Replace(a["auth-signin"], "https://auth.example.com", s.Auth, 1), "$host", "$http_host")
	// buildAuthSignURL: the controller appends its own rd parameter.
	if strings.Contains(signIn, "?") {
		signIn += "&rd=$pass_access_scheme://$http_host$escaped_request_uri"
	} else {
		signIn += "?rd=$pass_access_scheme://$http_host$escaped_request_uri"
	}
	bufferSize := "4k"
	if v := a["proxy-buffer-size"]; v != "" {
		bufferSize = v
	}
	// buildAuthResponseHeaders.
	var answer []string
	for i, h := range strings.Split(a["auth-response-headers"], ",") {
		h = strings.TrimSpace(h)
		answer = append(answer,
			fmt.Sprintf("auth_request_set $authHeader%d $upstream_http_%s;", i, strings.ReplaceAll(strings.ToLower(h), "-", "_")),
			fmt.Sprintf("proxy_set_header '%s' $authHeader%d;", h, i))
	}
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

	map $http_x_request_id $req_id {
		default   $http_x_request_id;
		""        $request_id;
	}

	server {
		listen 127.0.0.1:%[2]d;
		listen 127.0.0.1:%[9]d http2;
		server_name app1.sso.test;

		location = /_external-auth-Lw-Prefix {
			internal;
			access_log off;

			proxy_pass_request_body     off;
			proxy_set_header            Content-Length          "";
			proxy_set_header            X-Forwarded-Proto       "";
			proxy_set_header            X-Request-ID            $req_id;

			proxy_set_header            Host                    %[3]s;
			proxy_set_header            X-Original-URL          $scheme://$http_host$request_uri;
			proxy_set_header            X-Original-Method       $request_method;
			proxy_set_header            X-Sent-From             "nginx-ingress-controller";
			proxy_set_header            X-Real-IP               $remote_addr;
			proxy_set_header            X-Forwarded-For        $remote_addr;

			proxy_set_header            X-Auth-Request-Redirect $request_uri;

			proxy_buffering                         off;
			proxy_buffer_size                       %[4]s;
			proxy_buffers                           4 %[4]s;
			proxy_request_buffering                 on;

			proxy_ssl_server_name       on;
			proxy_pass_request_headers  on;
			client_max_body_size        1m;

			proxy_http_version 1.1;
			set $target %[5]s;
			proxy_pass $target;
		}

		location @signin {
			internal;
			add_header Set-Cookie $auth_cookie;
			return 302 %[6]s;
		}

		location / {
			set $pass_access_scheme  $scheme;
			auth_request        /_external-auth-Lw-Prefix;
			auth_request_set    $auth_cookie $upstream_http_set_cookie;
			add_header          Set-Cookie $auth_cookie;
			%[7]s

			set $escaped_request_uri $request_uri;
			error_page 401 = @signin;

			proxy_set_header Host                   $http_host;
			proxy_set_header X-Forwarded-For        $remote_addr;
			proxy_set_header Proxy                  "";

			proxy_buffering                         off;
			proxy_buffer_size                       %[4]s;
			proxy_buffers                           4 %[4]s;
			proxy_http_version                      1.1;
			proxy_pass http://%[8]s;
		}
	}
}
`, dir, s.nginxPort, authURL.Hostname(), bufferSize, authURL.String(), signIn, strings.Join(answer, "\n\t\t\t"), s.Upstream.Addr(), s.nginxH2Port)
}

func TestForwardAuth_IngressNginx_DocsAnnotationsAdmitTheSignedIn(t *testing.T) {
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skip("nginx is not installed (.ci/run installs it)")
	}
	s := startSSOGateway(t)
	s.startNginxWith(s.ingressNginxConf)
	b := ssoBrowser(t)
	app := s.App1 + "/reports/2024"
	s.ingressSignIn(b, app)
	got := s.Upstream.Last(t)
	if got.Get("X-Auth-User-Id") == "" || got.Get("X-Auth-User-Email") != "ada@example.com" || got.Get("X-Auth-Jwt") == "" {
		t.Fatalf("the app got no identity: %v", got)
	}
	if c := got.Get("Cookie"); strings.Contains(c, "socialgate") {
		t.Fatalf("the app got the gateway's cookies: %q", c)
	}
	// The docs' auth-url asks app1's policy: the identity JWT names app1,
	// and verifies at no other app.
	if aud := identityClaims(t, b, s.env, got.Get("X-Auth-Jwt"))["aud"]; fmt.Sprint(aud) != "https://app1.example.com" && fmt.Sprint(aud) != "[https://app1.example.com]" {
		t.Errorf("the identity JWT's aud is %v, want app1's origin", aud)
	}

	// The client's oauth2-proxy-style identity is still refused (verify's
	// 400, ingress-nginx's 500): nothing reaches the app.
	for _, name := range []string{"X-Auth-Request-Email", "X-Auth-Request-User"} {
		req, _ := http.NewRequest(http.MethodGet, app, nil)
		req.Header.Set(name, "root@example.com")
		before := len(s.Upstream.Requests())
		if resp, _ := b.do(req); resp.StatusCode != http.StatusInternalServerError || len(s.Upstream.Requests()) != before {
			t.Errorf("signed in with the client's %s: %d, %d reached the app; want 500 and none", name, resp.StatusCode, len(s.Upstream.Requests())-before)
		}
	}
}

// The annotations' proxy-buffer-size reaches the generated auth location:
// verify's answer with ~7 KiB of the app's cookies fits (ingress-nginx's
// default 4k did not: 500 for that user on every app).
func TestForwardAuth_IngressNginx_TheAppsCookieJarFitsTheAnswer(t *testing.T) {
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skip("nginx is not installed (.ci/run installs it)")
	}
	s := startSSOGateway(t)
	s.startNginxWith(s.ingressNginxConf)
	b := ssoBrowser(t)
	s.ingressSignIn(b, s.App1+"/")
	jar := appCookieJar()
	b.c.Jar.SetCookies(mustURL(s.App1), jar)
	if resp, _ := b.get(s.App1 + "/orders"); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed in with the app's cookie jar: %d, want 200", resp.StatusCode)
	}
	got := s.Upstream.Last(t)
	if got.Get("X-Auth-User-Email") != "ada@example.com" || got.Get("X-Test-Path") != "/orders" {
		t.Fatalf("the app got %v", got)
	}
	jarReachedTheApp(t, got, jar)

	s.h2JarReachesTheApp(b, jar)
}

// ingressSignIn opens app signed out behind the ingress-nginx server, expects
// the auth-signin redirect back to it (nothing at the app), signs in as ada
// and expects to land on app.
func (s *ssoEnv) ingressSignIn(b *browser, app string) {
	t := s.t
	t.Helper()

	// Signed out: ingress-nginx turns verify's 401 into its auth-signin
	// redirect, which comes back to the app.
	resp, _ := b.get(app)
	signIn := location(t, resp)
	want := s.Auth + "/_auth/sign-in?return_to=" + app + "&rd=" + app
	if resp.StatusCode != http.StatusFound || signIn != want {
		t.Fatalf("signed out: %d to %q, want 302 to %q", resp.StatusCode, signIn, want)
	}
	if n := len(s.Upstream.Requests()); n != 0 {
		t.Fatalf("%d requests reached the app signed out", n)
	}
	resp, page := b.get(signIn)
	action, returnTo, err := testkit.SignInButton(page, "dev")
	if resp.StatusCode != http.StatusOK || err != nil || returnTo != app {
		t.Fatalf("sign-in page: %d, %v, comes back to %q, want %q", resp.StatusCode, err, returnTo, app)
	}
	resp, _ = b.post(s.Auth+action, url.Values{"return_to": {returnTo}})
	resp, body, _ := b.atDevProvider(location(t, resp), ada)
	resp, _ = b.follow(resp, body)

	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != app {
		t.Fatalf("signed in: %d at %s, want 200 at the app", resp.StatusCode, resp.Request.URL)
	}
}
