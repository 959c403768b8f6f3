package harness

// CPU caps: a process moved into a cgroup of its own whose CPU bandwidth
// can be limited for a while and lifted again, as a container's CPU limit
// would hold it (Kubernetes' resources.limits.cpu is this same CFS
// bandwidth control). cgroup v1's cpu controller and cgroup v2 are both
// used where they are mounted and writable (as root, usually).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// capPeriod is the CFS period, in microseconds: 10 ms rather than the
// kernel's 100 ms default, so that a capped process is throttled in short
// slices instead of stalling for tens of milliseconds at a time.
const capPeriod = 10000

// CPUCap is one process's cgroup.
type CPUCap struct {
	dir string
	v2  bool
}

// NewCPUCap moves the process pid into a new cgroup named name, with no
// limit yet. It fails, saying why, where cgroups cannot be written.
func NewCPUCap(name string, pid int) (*CPUCap, error) {
	c := &CPUCap{dir: filepath.Join("/sys/fs/cgroup/cpu", name)}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		c = &CPUCap{dir: filepath.Join("/sys/fs/cgroup", name), v2: true}
		// cgroup v2 lends the cpu controller to children only when asked.
		if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+cpu"), 0); err != nil {
			return nil, fmt.Errorf("cgroup v2: enabling the cpu controller: %w", err)
		}
	} else if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"); err != nil {
		return nil, errors.New("no writable cgroup cpu controller (/sys/fs/cgroup/cpu or cgroup v2)")
	}
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the cgroup: %w", err)
	}
	if err := c.Set(0); err != nil {
		c.Remove()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		c.Remove()
		return nil, fmt.Errorf("moving the process into the cgroup: %w", err)
	}
	return c, nil
}

// Set limits the group to cores CPUs' worth of time; 0 lifts the limit.
func (c *CPUCap) Set(cores float64) error {
	quota := int(cores * capPeriod)
	var err error
	switch {
	case c.v2 && cores <= 0:
		err = os.WriteFile(filepath.Join(c.dir, "cpu.max"), []byte(fmt.Sprintf("max %d", capPeriod)), 0)
	case c.v2:
		err = os.WriteFile(filepath.Join(c.dir, "cpu.max"), []byte(fmt.Sprintf("%d %d", quota, capPeriod)), 0)
	default:
		// v1: the quota must fit the period in force, so lift it first.
		err = os.WriteFile(filepath.Join(c.dir, "cpu.cfs_quota_us"), []byte("-1"), 0)
		if err == nil {
			err = os.WriteFile(filepath.Join(c.dir, "cpu.cfs_period_us"), []byte(strconv.Itoa(capPeriod)), 0)
		}
		if err == nil && cores > 0 {
			err = os.WriteFile(filepath.Join(c.dir, "cpu.cfs_quota_us"), []byte(strconv.Itoa(quota)), 0)
		}
	}
	if err != nil {
		return fmt.Errorf("setting the CPU limit: %w", err)
	}
	return nil
}

// Remove deletes the group; the kernel refuses while a process is still
// in it, so it is called after the process has stopped.
func (c *CPUCap) Remove() { os.Remove(c.dir) }
