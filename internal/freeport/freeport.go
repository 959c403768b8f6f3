// Package freeport hands out TCP ports on 127.0.0.1 for a server that
// another process, or a later step, will listen on: a Caddy config under
// test, a PostgreSQL child, a load run's gateways.
//
// The usual trick, listening on port 0 and closing the listener, races:
// the kernel gives the same number to the next socket that asks for an
// ephemeral port (another test's listener on port 0, or the local end of
// any outgoing connection), and the server that was meant to have it fails
// with "address already in use". So Take picks ports below the kernel's
// ephemeral range (net.ipv4.ip_local_port_range), which the kernel never
// assigns on its own, and keeps each one reserved for the life of the
// process: in memory, and, on Linux, with an exclusive lock on a file per
// port in the temporary directory, so concurrent test binaries (go test
// runs packages in parallel) never take the same one. The lock goes when
// the process exits, however it exits.
//
// Where the range cannot be read, Take falls back to the port-0 trick.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// low is the lowest port handed out; ports below it are left to services
// that use well-known and registered numbers.
const low = 20000

var (
	mu    sync.Mutex
	taken = map[int]bool{}
)

// Take returns a port on 127.0.0.1 that nothing listens on, that the kernel
// will not hand to anyone else, and that no other caller of Take (in this
// or another process) gets while this process lives.
func Take() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	high := ephemeralStart() // exclusive
	if high-low < 1000 {
		return portZero()
	}
	for range 200 {
		port := low + rand.IntN(high-low)
		if taken[port] {
			continue
		}
		if !lockPort(port) {
			continue // another process holds it
		}
		if !bindable(port) {
			continue // in use by something that does not lock; keep it locked, never retry it
		}
		taken[port] = true
		return port, nil
	}
	return 0, errors.New("freeport: no free port found in 200 tries")
}

// MustTake is Take for tests and tools, which cannot go on without one.
func MustTake() int {
	p, err := Take()
	if err != nil {
		panic(err)
	}
	return p
}

func bindable(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func portZero() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("freeport: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
