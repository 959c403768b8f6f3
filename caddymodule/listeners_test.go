package caddymodule_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// waitRetiredListeners waits until no two listening TCP sockets of this
// process share an address: the retired config's and the new one's.
//
// A reload binds each address again beside the old socket (SO_REUSEPORT),
// and caddy.Load returns once the old servers have been told to shut down,
// not once they have closed their sockets: under load the old socket stays
// open a while, the kernel hands it part of the new connections, and those
// are reset when it closes. Waiting for the socket itself, rather than for
// a few requests to succeed, makes the next request land on the new config.
// Where /proc cannot be read it returns at once (settle still probes).
func waitRetiredListeners() {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		dup, ok := duplicateListeners()
		if !ok || !dup {
			return
		}
	}
}

// duplicateListeners reports whether two of this process's listening TCP
// sockets share a local address; ok is false when /proc is not readable.
func duplicateListeners() (dup, ok bool) {
	owned := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return false, false
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if inode, found := strings.CutPrefix(link, "socket:["); err == nil && found {
			owned[strings.TrimSuffix(inode, "]")] = true
		}
	}
	seen := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			return false, false
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			const listen = "0A"
			if len(fields) < 10 || fields[3] != listen || !owned[fields[9]] {
				continue
			}
			if seen[fields[1]] {
				f.Close()
				return true, true
			}
			seen[fields[1]] = true
		}
		f.Close()
	}
	return false, true
}
