package main

// Baselines: auth servers that do no work, each answering every subrequest
// 200 with a fixed identity in the gateway's header names. Behind the same
// nginx, their throughput is the most an auth server of their kind could
// reach in this set-up, and their CPU per request is what one pays before
// doing any work of its own:
//
//   - (8) nginx itself: a server block of the same nginx (ceilingAuth);
//   - (9) Go's net/http: this program run with -serve-floor-auth;
//   - (10) Caddy: this binary with a `respond` site for any host and the
//     same trusted_proxies settings as FORWARD_AUTH, but no gateway.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/socialgate/socialgate/perf/internal/harness"
)

// baseline is one of them.
type baseline struct {
	name    string
	server  *harness.Proc // nil for nginx's own
	skipped string
	// auth is nginx's configuration for it on nginx's port; answerPort is
	// a port nginx's own may listen on.
	auth func(port, answerPort int) authServer
}

// startBaselines starts the Go and Caddy ones; caddyPort is the Caddy
// one's listener.
func startBaselines(bin, dir string, caddyPort int) []baseline {
	bases := []baseline{{name: "(8) ceiling: nginx answers its own auth_request", auth: ceilingAuth}}
	goFloor := baseline{name: "(9) floor: Go net/http answers at once"}
	self, err := os.Executable()
	var addr string
	if err == nil {
		goFloor.server, addr, err = harness.LaunchReporting("Go floor", filepath.Join(dir, "go-floor.log"),
			exec.Command(self, "-serve-floor-auth", "127.0.0.1:0"))
	}
	if err != nil {
		goFloor.skipped = "did not start: " + harness.LastLine(err.Error())
	}
	goFloor.auth = func(port, _ int) authServer { return floorAuth(port, addr) }
	bases = append(bases, goFloor)

	caddyFloor := baseline{name: "(10) floor: Caddy `respond` answers at once"}
	caddyDir := filepath.Join(dir, "caddy-floor")
	caddyAddr := fmt.Sprintf("127.0.0.1:%d", caddyPort)
	caddyFloor.server, err = harness.StartCaddy("CADDY_FLOOR", bin, caddyDir, fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	storage file_system %s/caddy
	servers {
		trusted_proxies static 127.0.0.1/32
		trusted_proxies_strict
	}
}
http://:%d {
	bind 127.0.0.1
	header X-Auth-User-Id floor
	header X-Auth-User-Email floor@example.com
	respond 200
}
`, caddyDir, caddyPort), "http://"+caddyAddr+"/")
	if err != nil {
		caddyFloor.skipped = "did not start: " + harness.LastLine(err.Error())
	}
	caddyFloor.auth = func(port, _ int) authServer { return floorAuth(port, caddyAddr) }
	return append(bases, caddyFloor)
}

// serveFloorAuth is the Go floor: it answers every request 200 with a
// fixed identity, and returns only when it cannot serve.
func serveFloorAuth(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Auth-User-Id", "floor")
		w.Header().Set("X-Auth-User-Email", "floor@example.com")
	}))
}

// floorAuth is nginx's configuration for a baseline listening on addr.
func floorAuth(port int, addr string) authServer {
	name := fmt.Sprintf("auth%d", port)
	return authServer{port: port, addr: addr, verifyPath: "/_floor", upstream: name,
		location: `		location = /_floor {
			internal;
			proxy_pass http://` + name + `;
			proxy_pass_request_body off;
			proxy_set_header Content-Length "";
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
`, userHeader: "x_auth_user_id", mailHeader: "x_auth_user_email"}
}
