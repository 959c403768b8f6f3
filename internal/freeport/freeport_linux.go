package freeport

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// locks keeps the lock files open, and so locked, until the process exits.
var locks []*os.File

// ephemeralStart is the first port of the kernel's ephemeral range, or 0
// when it cannot be read.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	var lo, hi int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &lo, &hi); err != nil {
		return 0
	}
	return lo
}

// lockPort takes an exclusive, non-blocking lock on the port's file in a
// directory shared by every process of this user.
func lockPort(port int) bool {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("freeport-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false
	}
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(port)), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	locks = append(locks, f)
	return true
}
