package main

// oauth2-proxy v7 as the other auth server of the forward-auth rows, built
// from its Go module at the version perf/loadrun/oauth2proxy/go.mod pins.

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/socialgate/socialgate/internal/testkit"
	"github.com/socialgate/socialgate/perf/internal/harness"
)

// oauth2ProxyModule is the Go module, inside this repository, that pins
// oauth2-proxy and holds the cookie minter.
const oauth2ProxyModule = "perf/loadrun/oauth2proxy"

// oauth2Proxy is a running oauth2-proxy and a session cookie it accepts.
type oauth2Proxy struct {
	proc    *harness.Proc
	addr    string
	cookie  string
	version string
}

// buildOAuth2Proxy builds oauth2-proxy and the cookie minter into dir with
// go build (the Go build cache makes later runs quick) and returns their
// paths and oauth2-proxy's version.
func buildOAuth2Proxy(dir string) (proxy, minter, version string, err error) {
	root, err := testkit.ModuleRoot()
	if err != nil {
		return "", "", "", err
	}
	mod := filepath.Join(root, oauth2ProxyModule)
	proxy, minter = filepath.Join(dir, "oauth2-proxy"), filepath.Join(dir, "oauth2proxy-cookie")
	for _, b := range [][2]string{{proxy, "github.com/oauth2-proxy/oauth2-proxy/v7"}, {minter, "."}} {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Dir = mod
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", "", fmt.Errorf("go build %s (in %s): %v: %s", b[1], oauth2ProxyModule, err, harness.LastLine(string(out)))
		}
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/oauth2-proxy/oauth2-proxy/v7")
	cmd.Dir = mod
	out, err := cmd.Output()
	return proxy, minter, strings.TrimSpace(string(out)), err
}

// startOAuth2Proxy builds and runs oauth2-proxy on port as nginx's
// auth_request server with the settings its nginx guide gives: cookie
// sessions (minimal: no tokens in the cookie), no upstream,
// --reverse-proxy trusting only loopback, --set-xauthrequest for the
// identity headers, --skip-provider-button. Its provider is the dev
// provider at issuer as an OIDC issuer (read at start); no sign-in goes
// through it, so its client secret is never used. Per-request logging is
// off, as Caddy's is by default. The session cookie is minted with
// oauth2-proxy's own cookie session store.
func startOAuth2Proxy(dir string, port int, issuer string) (*oauth2Proxy, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	bin, minter, version, err := buildOAuth2Proxy(dir)
	if err != nil {
		return nil, err
	}
	var sec [32]byte
	rand.Read(sec[:])
	secret := base64.RawURLEncoding.EncodeToString(sec[:])
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin,
		"--http-address="+addr,
		"--provider=oidc", "--oidc-issuer-url="+issuer,
		"--client-id=socialgate-dev", "--client-secret=unused",
		"--redirect-url=http://"+addr+"/oauth2/callback",
		"--email-domain=*",
		"--cookie-secret="+secret, "--cookie-secure=false",
		"--session-store-type=cookie", "--session-cookie-minimal",
		"--reverse-proxy", "--trusted-proxy-ip=127.0.0.1/32",
		"--set-xauthrequest", "--skip-provider-button",
		"--request-logging=false",
	)
	p, err := harness.Launch("oauth2-proxy", filepath.Join(dir, "oauth2-proxy.log"), cmd)
	if err != nil {
		return nil, err
	}
	if err := p.WaitHTTP("http://"+addr+"/ping", 20*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	out, err := exec.Command(minter, "-cookie-secret", secret).Output()
	if err != nil {
		p.Stop()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = errors.New(harness.LastLine(string(exit.Stderr)))
		}
		return nil, fmt.Errorf("minting oauth2-proxy's session cookie: %v", err)
	}
	o := &oauth2Proxy{proc: p, addr: addr, cookie: strings.TrimSpace(string(out)), version: version}
	if err := o.checkSignedIn(); err != nil {
		p.Stop()
		return nil, err
	}
	return o, nil
}

// checkSignedIn asks /oauth2/auth directly, as nginx will: with the minted
// cookie it must answer 202 and name the user, without it 401, so that the
// rows measure a signed-in oauth2-proxy and not its refusals.
func (o *oauth2Proxy) checkSignedIn() error {
	for _, c := range []struct {
		cookie string
		want   int
	}{{o.cookie, http.StatusAccepted}, {"", http.StatusUnauthorized}} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+o.addr+"/oauth2/auth", nil)
		req.Header.Set("X-Forwarded-Uri", "/")
		if c.cookie != "" {
			req.Header.Set("Cookie", c.cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			return fmt.Errorf("oauth2-proxy's /oauth2/auth answered %d with cookie=%t, want %d", resp.StatusCode, c.cookie != "", c.want)
		}
		if c.want == http.StatusAccepted && resp.Header.Get("X-Auth-Request-User") == "" {
			return errors.New("oauth2-proxy's /oauth2/auth answered 202 without X-Auth-Request-User")
		}
	}
	return nil
}
