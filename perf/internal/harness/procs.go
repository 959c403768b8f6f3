// Package harness is what the perf tools (loadrun, soak) share: running
// the gateway and other processes on loopback and stopping exactly them, a
// private PostgreSQL server, and reading the machine's load and a
// process's metrics. Building the gateway and the browser that signs in
// through a provider are internal/testkit's, shared with the tests.
package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/socialgate/socialgate/internal/freeport"
)

// Proc is a child process a perf tool started; Stop ends exactly it.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string // file with its stdout and stderr
	done chan struct{}
}

// Start runs bin with args and env added to this process's environment,
// its output in logPath.
func Start(name, logPath string, env []string, bin string, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return Launch(name, logPath, cmd)
}

// Launch starts cmd with its output in logPath.
func Launch(name, logPath string, cmd *exec.Cmd) (*Proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return watch(name, logPath, cmd, logFile, nil), nil
}

// LaunchReporting starts cmd, which prints one line on its standard output
// when it is ready (an address, say), and returns that line; its standard
// error goes to logPath.
func LaunchReporting(name, logPath string, cmd *exec.Cmd) (*Proc, string, error) {
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, "", fmt.Errorf("starting %s: %w", name, err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	p := watch(name, logPath, cmd, logFile, stdout)
	if err != nil {
		p.Stop()
		return nil, "", fmt.Errorf("%s did not report that it is ready: %w\n%s", name, err, p.Tail())
	}
	return p, strings.TrimSpace(line), nil
}

// watch makes a Proc of a started cmd; logFile is closed when it exits.
// A stdout pipe, when not nil, is read to its end first, as cmd.Wait
// requires.
func watch(name, logPath string, cmd *exec.Cmd, logFile *os.File, stdout io.Reader) *Proc {
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		if stdout != nil {
			io.Copy(io.Discard, stdout)
		}
		cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p
}

// Stop interrupts the process and kills it if it has not left in 5s.
func (p *Proc) Stop() {
	if p == nil {
		return
	}
	p.Cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.Cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// CPU is the process's user+system CPU time so far, from /proc (Linux;
// zero elsewhere). The kernel counts in clock ticks, 100 per second on
// every common Linux build.
func (p *Proc) CPU() time.Duration { return cpuOf(p.Cmd.Process.Pid) }

// cpuOf is Proc.CPU of the process pid.
func cpuOf(pid int) time.Duration {
	f := stat(pid)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100)
}

// TreeCPU is CPU of the process and of its children that are running
// (nginx's workers, say), from /proc (Linux; zero elsewhere).
func (p *Proc) TreeCPU() time.Duration {
	pid := p.Cmd.Process.Pid
	total := cpuOf(pid)
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, child := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(child); err == nil {
			total += cpuOf(n)
		}
	}
	return total
}

// RSS is the process's resident set size in bytes, from /proc (Linux; zero
// elsewhere).
func (p *Proc) RSS() int64 {
	f := stat(p.Cmd.Process.Pid)
	if len(f) < 22 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[21], 10, 64)
	return pages * int64(os.Getpagesize())
}

// stat is the fields of /proc/PID/stat after the command name, which is in
// parentheses and may hold spaces.
func stat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
}

// Tail is the end of the process's log, for error messages.
func (p *Proc) Tail() string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

// WaitHTTP polls url until it answers (any status) or the process exits.
func (p *Proc) WaitHTTP(url string, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if p.Exited() {
			return fmt.Errorf("%s exited:\n%s", p.Name, p.Tail())
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("%s did not answer at %s within %s:\n%s", p.Name, url, timeout, p.Tail())
}

// StartCaddy writes config (a Caddyfile) into dir and runs the gateway
// binary on it, with Caddy's data and config directories under dir, until
// every one of urls answers.
func StartCaddy(name, bin, dir, config string, urls ...string) (*Proc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	env := []string{"XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	p, err := Start(name, filepath.Join(dir, "caddy.log"), env, bin, "run", "--config", cfgPath, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	for _, u := range urls {
		if err := p.WaitHTTP(u, 20*time.Second); err != nil {
			p.Stop()
			return nil, err
		}
	}
	return p, nil
}

// LastLine is the last line of s, for short error messages.
func LastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// FreePorts takes n free loopback ports.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		p, err := freeport.Take()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	return ports, nil
}

// LoadAverage is the 1, 5 and 15 minute load average from /proc/loadavg.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// CaddyVersion is the first line of `socialgate version`.
func CaddyVersion(bin string) string {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "unknown"
	}
	return LastLine(string(bytes.SplitN(out, []byte("\n"), 2)[0]))
}
