package pgserver

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDiesWithCaller kills (SIGKILL) a process that started a server and
// checks that the server goes too.
func TestDiesWithCaller(t *testing.T) {
	if os.Getenv("PGSERVER_TEST_CALLER") == "1" {
		srv, err := Start(Options{})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(srv.cmd.Process.Pid, srv.Dir())
		time.Sleep(time.Minute)
		os.Exit(1)
	}
	caller := exec.Command(os.Args[0], "-test.run=^TestDiesWithCaller$")
	caller.Env = append(os.Environ(), "PGSERVER_TEST_CALLER=1")
	out, err := caller.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	caller.Process.Kill()
	caller.Wait()
	if rest, ok := strings.CutPrefix(line, "error: "); ok {
		if strings.Contains(rest, ErrUnavailable.Error()) && os.Getenv("CI") != "true" {
			t.Skip(rest)
		}
		t.Fatal(rest)
	}
	var pid int
	var dir string
	if _, err := fmt.Sscan(line, &pid, &dir); err != nil {
		t.Fatalf("caller said %q: %v", line, err)
	}
	defer os.RemoveAll(dir)
	for deadline := time.Now().Add(30 * time.Second); alive(pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the server (pid %d) outlived its caller by 30s", pid)
		}
	}
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}
