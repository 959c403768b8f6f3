package main

// nginx with auth_request in front of the upstream, for the forward-auth
// rows: one nginx per worker_processes setting, each with one listener
// per auth server, run as the current user with its pid, logs and
// temporary files under the run's directory.

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/socialgate/socialgate/perf/internal/harness"
)

// nginxBin is the nginx on PATH, else Debian's; "" when neither exists.
func nginxBin() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}

// nginxVersion is what `nginx -v` says (nginx/1.22.1).
func nginxVersion(bin string) string {
	out, _ := exec.Command(bin, "-v").CombinedOutput()
	_, v, _ := strings.Cut(strings.TrimSpace(string(out)), "version: ")
	return v
}

// authServer is what one nginx listener asks about each request.
type authServer struct {
	port       int    // nginx's listener for it
	addr       string // host:port of the auth server
	verifyPath string // the path nginx asks
	upstream   string // the name of its upstream block
	location   string // the server block's location for the subrequest
	userHeader string // the auth server's answer header naming the user
	mailHeader string // … and the email
	serves     string // a server block of nginx's own that is the auth server, if any
	appCookie  bool   // the app gets the answer's Cookie and Authorization (docs/forward-auth.md), not the client's
}

// socialgateAuth is docs/forward-auth.md's nginx configuration for the
// gateway at addr, which answers for host, except that only the user's id
// and email are copied (as for oauth2-proxy) and keep-alive is on.
func socialgateAuth(port int, addr, host string) authServer {
	name := fmt.Sprintf("auth%d", port)
	return authServer{port: port, addr: addr, verifyPath: "/_socialgate_verify", upstream: name,
		location: `		location = /_socialgate_verify {
			internal;
			proxy_pass http://` + name + `/_auth/verify;
			proxy_pass_request_body off;
			proxy_set_header Content-Length "";
			proxy_set_header Host ` + host + `;
			proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
			proxy_set_header X-Original-Method $request_method;
			proxy_set_header X-Forwarded-Uri "";
			proxy_set_header Upgrade $http_upgrade;
			proxy_buffer_size 32k;
			proxy_buffers 4 32k;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
`, userHeader: "x_auth_user_id", mailHeader: "x_auth_user_email", appCookie: true}
}

// oauth2ProxyAuth is oauth2-proxy's documented nginx configuration
// (docs/configuration/integrations/nginx.md) for oauth2-proxy at addr.
func oauth2ProxyAuth(port int, addr string) authServer {
	name := fmt.Sprintf("auth%d", port)
	return authServer{port: port, addr: addr, verifyPath: "/oauth2/auth", upstream: name,
		location: `		location = /oauth2/auth {
			proxy_pass http://` + name + `;
			proxy_set_header Host $host;
			proxy_set_header X-Real-IP $remote_addr;
			proxy_set_header X-Forwarded-Uri $request_uri;
			proxy_set_header Content-Length "";
			proxy_pass_request_body off;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
`, userHeader: "x_auth_request_user", mailHeader: "x_auth_request_email"}
}

// ceilingAuth is the ceiling baseline (floor.go): nginx asks a server
// block of its own on answerPort, over the same kind of kept-alive loopback
// connection, which answers 200 at once.
func ceilingAuth(port, answerPort int) authServer {
	a := floorAuth(port, fmt.Sprintf("127.0.0.1:%d", answerPort))
	a.serves = fmt.Sprintf(`	server {
		listen 127.0.0.1:%d;
		location / {
			add_header X-Auth-User-Id ceiling;
			add_header X-Auth-User-Email ceiling@example.com;
			return 200;
		}
	}
`, answerPort)
	return a
}

// nginxConf renders the configuration: for each auth server a listener
// whose every request is asked about with auth_request and, when let
// through, proxied to upstream with the user's id and email, as the auth
// server answered them, in X-Auth-User-Id and X-Auth-User-Email (which the
// upstream counts). Connections to the auth servers and the upstream are
// kept alive, as a production nginx would have them.
func nginxConf(dir string, workers int, upstream string, servers []authServer) string {
	var b strings.Builder
	if os.Geteuid() == 0 {
		// Only a root master switches its workers to another user
		// (nobody, by default): keep them the current user.
		if u, err := user.Current(); err == nil {
			fmt.Fprintf(&b, "user %s;\n", u.Username)
		}
	}
	fmt.Fprintf(&b, `daemon off;
worker_processes %[2]d;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	upstream app {
		server %[3]s;
		keepalive 64;
	}
`, dir, workers, upstream)
	for _, s := range servers {
		fmt.Fprintf(&b, `	server {
		listen 127.0.0.1:%[1]d;
		location / {
			auth_request %[2]s;
			auth_request_set $auth_user_id $upstream_http_%[3]s;
			auth_request_set $auth_user_email $upstream_http_%[4]s;
			proxy_set_header X-Auth-User-Id $auth_user_id;
			proxy_set_header X-Auth-User-Email $auth_user_email;
%[6]s			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_pass http://app;
		}
%[5]s	}
`, s.port, s.verifyPath, s.userHeader, s.mailHeader, s.location, appCookie(s.appCookie))
		fmt.Fprintf(&b, "\tupstream %s {\n\t\tserver %s;\n\t\tkeepalive 64;\n\t}\n", s.upstream, s.addr)
		b.WriteString(s.serves)
	}
	b.WriteString("}\n")
	return b.String()
}

// startNginx writes the configuration into dir, checks it with nginx -t
// and runs nginx until each listener answers.
func startNginx(bin, dir string, workers int, upstream string, servers []authServer) (*harness.Proc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(dir, workers, upstream, servers)), 0o600); err != nil {
		return nil, err
	}
	args := []string{"-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log")}
	if out, err := exec.Command(bin, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nginx -t: %v: %s", err, harness.LastLine(string(out)))
	}
	p, err := harness.Start(fmt.Sprintf("nginx (%d workers)", workers), filepath.Join(dir, "nginx.log"), nil, bin, args...)
	if err != nil {
		return nil, err
	}
	for _, s := range servers {
		if err := p.WaitHTTP(fmt.Sprintf("http://127.0.0.1:%d/", s.port), 10*time.Second); err != nil {
			p.Stop()
			return nil, err
		}
	}
	return p, nil
}

// appCookie is the location's lines that give the app the answer's Cookie
// and Authorization.
func appCookie(on bool) string {
	if !on {
		return ""
	}
	return "\t\t\tauth_request_set $app_cookie $upstream_http_cookie;\n\t\t\tproxy_set_header Cookie $app_cookie;\n" +
		"\t\t\tauth_request_set $app_authorization $upstream_http_authorization;\n\t\t\tproxy_set_header Authorization $app_authorization;\n"
}
