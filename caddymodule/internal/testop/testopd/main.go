// Command testopd runs the test OP (package testop) as a process of its own,
// for tools outside this module's tests: perf/soak starts it as a provider
// whose token endpoint fails a share of the time. It prints one line,
// `issuer=<url> control=<url>`, and serves until interrupted. The control
// listener answers GET /injected with the JSON list of the faults injected
// so far (testop.Injection) and GET /calls with the number of requests each
// endpoint received.
//
//	go run ./caddymodule/internal/testop/testopd -fault-rate 0.05 -faults server_error,html,slow
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// faultsByName are the token-endpoint faults -faults accepts.
var faultsByName = map[string]testop.Fault{
	"server_error":  testop.FaultTokenServerError,
	"invalid_grant": testop.FaultTokenError,
	"html":          testop.FaultTokenHTML,
	"huge":          testop.FaultTokenHuge,
	"slow":          testop.FaultSlow,
	"hang":          testop.FaultTokenHang,
	"lost_answer":   testop.FaultTokenLostAnswer,
}

func main() {
	lifetime := flag.Duration("access-token-lifetime", time.Hour, "how long access tokens live")
	rate := flag.Float64("fault-rate", 0, "share of token-endpoint calls that fail, 0 to 1")
	faults := flag.String("faults", "server_error", "comma-separated faults the failing calls draw from: server_error, invalid_grant, html, huge, slow, hang, lost_answer")
	control := flag.String("control", "127.0.0.1:0", "address of the control listener (/injected, /calls)")
	flag.Parse()
	opts := testop.Options{AccessTokenLifetime: *lifetime, IssueRefreshToken: true, UsersByLoginHint: true, TokenFaultRate: *rate}
	for _, name := range strings.Split(*faults, ",") {
		f, ok := faultsByName[strings.TrimSpace(name)]
		if !ok {
			log.Fatalf("testopd: unknown fault %q", name)
		}
		opts.TokenFaults = append(opts.TokenFaults, f)
	}
	t := &process{}
	defer t.cleanup()
	op := testop.Start(t, opts)
	ln, err := net.Listen("tcp", *control)
	if err != nil {
		log.Fatalf("testopd: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /injected", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(op.Injected())
	})
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, _ *http.Request) {
		calls := map[string]int{}
		for _, e := range []string{"discovery", "jwks", "authorize", "token", "userinfo", "revoke"} {
			calls[e] = op.Calls(e)
		}
		json.NewEncoder(w).Encode(calls)
	})
	go http.Serve(ln, mux)
	fmt.Printf("issuer=%s control=http://%s\n", op.URL(), ln.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
}

// process stands in for the testing.TB that testop takes: it uses Helper,
// Errorf, Fatalf and Cleanup only, which this process implements; the
// embedded interface is nil.
type process struct {
	testing.TB
	cleanups []func()
}

func (*process) Helper()                        {}
func (*process) Errorf(format string, a ...any) { log.Printf(format, a...) }
func (*process) Fatalf(format string, a ...any) { log.Fatalf(format, a...) }
func (p *process) Cleanup(f func())             { p.cleanups = append(p.cleanups, f) }
func (p *process) cleanup() {
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
}
