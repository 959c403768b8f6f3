package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// build compiles the gateway binary into dir and returns its path.
func build(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "socialgate")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/socialgate")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/socialgate: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot is the directory of the go.mod around the working directory.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run loadrun inside the socialgate module: go run ./perf/loadrun")
	}
	return filepath.Dir(mod), nil
}

// proc is a child process this runner started; stop ends exactly it.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string // file with its stdout and stderr
	done chan struct{}
}

func start(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return launch(name, logPath, cmd)
}

// launch starts cmd with its output in logPath.
func launch(name, logPath string, cmd *exec.Cmd) (*proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); logFile.Close(); close(p.done) }()
	return p, nil
}

// stop interrupts the process and kills it if it has not left in 5s.
func (p *proc) stop() {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// cpu is the process's user+system CPU time so far, from /proc (Linux;
// zero elsewhere). The kernel counts in clock ticks, 100 per second on
// every common Linux build.
func (p *proc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100)
}

// tail is the end of the process's log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// waitHTTP polls url until it answers (any status) or the process exits.
func (p *proc) waitHTTP(url string, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if p.exited() {
			return fmt.Errorf("%s exited:\n%s", p.name, p.tail())
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("%s did not answer at %s within %s:\n%s", p.name, url, timeout, p.tail())
}

// site is one protected (or plain) site of a Caddy process.
type site struct {
	row     string // row name in the table
	port    int
	handler string // the socialgate directive, or "" for plain
}

func (s site) url() string { return fmt.Sprintf("http://127.0.0.1:%d/", s.port) }

// caddyfile renders a config for sites in front of upstream. With devPort > 0
// it configures the socialgate app with the dev provider on that port, its
// store under dir and the extra options.
func caddyfile(dir string, adminPort, devPort int, upstream string, sites []site, options ...string) string {
	return caddyfileStorage(dir, filepath.Join(dir, "socialgate"), adminPort, devPort, upstream, sites, options...)
}

// caddyfileStorage is caddyfile with the socialgate app's storage option
// given verbatim (a directory, or a `postgres { … }` block).
func caddyfileStorage(dir, storage string, adminPort, devPort int, upstream string, sites []site, options ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{\n\tadmin 127.0.0.1:%d\n\tpersist_config off\n\tauto_https off\n\tstorage file_system %s\n", adminPort, filepath.Join(dir, "caddy"))
	if devPort > 0 {
		fmt.Fprintf(&b, "\tsocialgate {\n\t\tstorage %s\n\t\tdev_provider 127.0.0.1:%d\n", storage, devPort)
		for _, o := range options {
			fmt.Fprintf(&b, "\t\t%s\n", o)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	for _, s := range sites {
		fmt.Fprintf(&b, "http://127.0.0.1:%d {\n", s.port)
		if s.handler != "" {
			fmt.Fprintf(&b, "\t%s\n", strings.ReplaceAll(s.handler, "\n", "\n\t"))
		}
		fmt.Fprintf(&b, "\treverse_proxy %s\n}\n", upstream)
	}
	return b.String()
}

// startCaddy writes the config into dir and runs the binary on it until
// every site answers.
func startCaddy(name, bin, dir string, adminPort int, config string, sites []site) (*proc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	env := []string{"XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	p, err := start(name, filepath.Join(dir, "caddy.log"), env, bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	for _, s := range sites {
		if err := p.waitHTTP(s.url(), 20*time.Second); err != nil {
			p.stop()
			return nil, err
		}
	}
	return p, nil
}

// adapts reports whether the binary accepts a socialgate directive and
// global options: the Caddyfile adapter runs their parsers, so a feature
// that has not landed fails here.
func adapts(bin, dir, handler string, options ...string) (bool, string) {
	src := caddyfile(dir, 2019, 9999, "127.0.0.1:1", []site{{port: 8080, handler: handler}}, options...)
	path := filepath.Join(dir, "probe.Caddyfile")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		return false, err.Error()
	}
	out, err := exec.Command(bin, "adapt", "--config", path, "--adapter", "caddyfile").CombinedOutput()
	if err != nil {
		return false, lastLine(string(out))
	}
	return true, ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// The upstream is this program run with -serve-upstream: a tiny HTTP server
// in its own process, so it never shares a Go runtime with the load client.
// It counts what reaches it, so the runner can check that every measured
// request went through (a gateway answering with a redirect would look fast).

const upstreamBody = "hello from the upstream\n"

type upstreamStats struct {
	Requests   int64 `json:"requests"`
	WithUser   int64 `json:"with_user"`   // carried X-Auth-User-Id
	WithToken  int64 `json:"with_token"`  // carried an X-Auth-Token-* header
	WithCookie int64 `json:"with_cookie"` // carried a gateway cookie (must stay 0)
	Tokens     int64 `json:"tokens"`      // distinct X-Auth-Token-* values seen under /storm/
}

func serveUpstream(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	var requests, withUser, withToken, withCookie atomic.Int64
	var mu sync.Mutex
	tokens := map[[sha256.Size]byte]bool{} // digests of the tokens seen
	mux := http.NewServeMux()
	mux.HandleFunc("/__stats", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		distinct := int64(len(tokens))
		mu.Unlock()
		json.NewEncoder(w).Encode(upstreamStats{requests.Load(), withUser.Load(), withToken.Load(), withCookie.Load(), distinct})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("X-Auth-User-Id") != "" {
			withUser.Add(1)
		}
		for k, v := range r.Header {
			if strings.HasPrefix(k, "X-Auth-Token-") {
				withToken.Add(1)
				if strings.HasPrefix(r.URL.Path, stormPath) { // only there: the other rows don't pay for it
					mu.Lock()
					tokens[sha256.Sum256([]byte(strings.Join(v, ",")))] = true
					mu.Unlock()
				}
				break
			}
		}
		if strings.Contains(r.Header.Get("Cookie"), "socialgate_") {
			withCookie.Add(1)
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, upstreamBody)
	})
	return http.Serve(ln, mux)
}

// startUpstream runs this program as the upstream and returns its address.
func startUpstream(dir string) (*proc, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(self, "-serve-upstream", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	logPath := filepath.Join(dir, "upstream.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("starting the upstream: %w", err)
	}
	p := &proc{name: "upstream", cmd: cmd, log: logPath, done: make(chan struct{})}
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	go func() { io.Copy(io.Discard, stdout); cmd.Wait(); logFile.Close(); close(p.done) }()
	if err != nil {
		p.stop()
		return nil, "", fmt.Errorf("the upstream did not report its address: %w", err)
	}
	return p, strings.TrimSpace(addr), nil
}

func readStats(upstream string) (upstreamStats, error) {
	var s upstreamStats
	resp, err := http.Get("http://" + upstream + "/__stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&s)
	return s, err
}

// settledStats waits until the upstream's counts stop moving (requests the
// client gave up on at its deadline may still be on their way) and returns
// them, so that no run's stragglers land in the next run's counts.
func settledStats(upstream string) (upstreamStats, error) {
	last, err := readStats(upstream)
	for i := 0; err == nil && i < 20; i++ {
		time.Sleep(100 * time.Millisecond)
		var now upstreamStats
		if now, err = readStats(upstream); err == nil && now == last {
			return now, nil
		}
		last = now
	}
	return last, err
}

func (s upstreamStats) minus(o upstreamStats) upstreamStats {
	return upstreamStats{s.Requests - o.Requests, s.WithUser - o.WithUser, s.WithToken - o.WithToken, s.WithCookie - o.WithCookie, s.Tokens - o.Tokens}
}

// caddyVersion is the first line of `socialgate version`.
func caddyVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "unknown"
	}
	return lastLine(string(bytes.SplitN(out, []byte("\n"), 2)[0]))
}
