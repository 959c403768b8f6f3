package freeport

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestTake_PortsListenAndStayOutOfTheKernelsRange takes ports and listens on
// each: every one is bindable, none repeats, and none is in the range the
// kernel hands out for port 0 and outgoing connections.
func TestTake_PortsListenAndStayOutOfTheKernelsRange(t *testing.T) {
	start := ephemeralStart()
	seen := map[int]bool{}
	for range 50 {
		p, err := Take()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if runtime.GOOS == "linux" && (p < low || p >= start) {
			t.Fatalf("port %d is outside [%d, %d)", p, low, start)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("listening on the port handed out: %v", err)
		}
		ln.Close()
	}
}

// TestTake_TwoProcessesNeverShareAPort runs this test binary as a second
// process taking ports while this one takes ports too, both holding theirs,
// and checks the two sets do not meet.
func TestTake_TwoProcessesNeverShareAPort(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("cross-process reservation is implemented with flock on Linux")
	}
	const n = 400
	if os.Getenv("FREEPORT_CHILD") != "" {
		for range n {
			println(MustTake()) // stderr, unbuffered
		}
		// Hold them until the parent has taken its own.
		bufio.NewReader(os.Stdin).ReadString('\n')
		return
	}
	child := exec.Command(os.Args[0], "-test.run=^TestTake_TwoProcessesNeverShareAPort$")
	child.Env = append(os.Environ(), "FREEPORT_CHILD=1")
	stdin, _ := child.StdinPipe()
	stderr, _ := child.StderrPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); child.Wait() }()

	childPorts := map[int]bool{}
	parent := make(chan []int)
	go func() {
		var mine []int
		for range n {
			mine = append(mine, MustTake())
		}
		parent <- mine
	}()
	sc := bufio.NewScanner(stderr)
	for len(childPorts) < n && sc.Scan() {
		p, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		childPorts[p] = true
	}
	if len(childPorts) != n {
		t.Fatalf("child handed out %d distinct ports, want %d", len(childPorts), n)
	}
	for _, p := range <-parent {
		if childPorts[p] {
			t.Fatalf("port %d went to both processes", p)
		}
	}
}
