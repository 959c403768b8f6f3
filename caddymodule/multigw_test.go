package caddymodule_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
	"github.com/socialgate/socialgate/internal/testkit"
)

// process is one gateway process of the binary.
type process struct {
	Base string
	cmd  *exec.Cmd
}

func startProcess(t *testing.T, caddyfile string, port int) *process {
	t.Helper()
	bin := testkit.Socialgate(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	os.WriteFile(path, []byte(caddyfile), 0o600)
	cmd := exec.Command(bin, "run", "--config", path)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	logFile, _ := os.Create(filepath.Join(dir, "log"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{Base: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("gateway on %d logged:\n%s", port, log)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.Base + "/_auth/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway on %d did not become healthy", port)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clusterConfig is the Caddyfile of a gateway process on port, one of a
// cluster on dsn: provider corp at op and the API key, with global lines in
// the socialgate option and site lines before the site's socialgate and
// reverse_proxy to up.
func clusterConfig(dsn string, op *testop.Server, up *upstream, port int, global, site string) string {
	return fmt.Sprintf(`{
	admin off
	persist_config off
	auto_https off
	socialgate {
		storage postgres {
			dsn "%s"
			secret "a-shared-secret-of-the-cluster-0123456789"
		}
		api_key %s
		provider oidc corp {
			issuer %s
			client_id test-client
			client_secret test-secret
		}
		%s
	}
}
http://127.0.0.1:%d {
	%s
	socialgate
	reverse_proxy %s
}
`, dsn, apiKey, op.URL(), global, port, site, up.Addr())
}

// TestPostgres_TwoGatewaysShareOneUserBase runs two gateway processes on one
// PostgreSQL database, as behind a load balancer.
func TestPostgres_TwoGatewaysShareOneUserBase(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary; skipped with -short")
	}
	dsn := testkit.OwnPostgres(t)
	op := startOP(t, testop.Options{AccessTokenLifetime: 3 * time.Second, IssueRefreshToken: true})
	up := newUpstream(t)
	config := func(port int) string {
		return clusterConfig(dsn, op, up, port, "session_cache 1s\n\t\ttoken_refresh_skew 1s",
			"route /token/* {\n\t\tsocialgate {\n\t\t\tforward_token corp\n\t\t}\n\t\treverse_proxy "+up.Addr()+"\n\t}")
	}
	portA, portB := testkit.FreePort(t), testkit.FreePort(t)
	a := startProcess(t, config(portA), portA)
	b := startProcess(t, config(portB), portB)
	e := &env{t: t, Base: a.Base}

	// A sign-in that starts on A finishes on B (the load balancer chose B).
	br := newBrowser(t)
	authorize := location(t, br.startSignIn(e, "/inbox", "corp"))
	resp, _ := br.get(authorize)
	callback, _ := url.Parse(location(t, resp))
	callback.Host = fmt.Sprintf("127.0.0.1:%d", portB)
	resp, body := br.follow(br.get(callback.String()))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback on B: %d %s", resp.StatusCode, body)
	}
	userA, userB := whoAmI(t, br, a.Base), whoAmI(t, br, b.Base)
	if userA == "" || userA != userB {
		t.Fatalf("the session does not work on both gateways: A sees %q, B sees %q", userA, userB)
	}

	// A refresh storm spread over both gateways: one refresh per account.
	time.Sleep(3 * time.Second)
	calls := op.Calls("token")
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := a.Base
			if i%2 == 1 {
				base = b.Base
			}
			if status, body := apiGet(t, br.c, base+"/token/x", nil); status != http.StatusOK {
				t.Errorf("storm request on %s: %d %v", base, status, body)
			}
		}()
	}
	wg.Wait()
	if n := op.Calls("token") - calls; n != 1 {
		t.Fatalf("%d refreshes across two gateways for one account, want 1", n)
	}

	// Sign out on B: A refuses the session within session_cache (1s).
	_, page := br.get(b.Base + "/_auth/sign-out")
	csrf := html.UnescapeString(between(page, `name="csrf_token" value="`, `"`))
	copyOfCookie := &http.Cookie{Name: "socialgate_session", Value: br.cookie(a.Base, "socialgate_session")}
	resp, _ = br.post(b.Base+"/_auth/sign-out", url.Values{"csrf_token": {csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out on B: %d", resp.StatusCode)
	}
	signedOut := time.Now()
	for {
		req, _ := http.NewRequest(http.MethodGet, a.Base+"/after-sign-out", nil)
		req.AddCookie(copyOfCookie)
		req.Header.Set("Accept", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusUnauthorized {
			break
		}
		if time.Since(signedOut) > 3*time.Second {
			t.Fatalf("A still accepts the session %v after sign-out on B (session_cache is 1s)", time.Since(signedOut))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("A refused the signed-out session %v after sign-out on B", time.Since(signedOut).Round(time.Millisecond))
}

// whoAmI returns the user id /_auth/me reports on a gateway.
func whoAmI(t *testing.T, b *browser, base string) string {
	status, me := apiGet(t, b.c, base+"/_auth/me", nil)
	if status != http.StatusOK {
		return ""
	}
	id, _ := me["id"].(string)
	return strings.TrimSpace(id)
}
