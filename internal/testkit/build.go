package testkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socialgate/socialgate/internal/freeport"
)

// buildTimeout bounds one go build: far more than a build takes on a busy
// machine, so that only a hung build hits it.
const buildTimeout = 10 * time.Minute

// Build compiles the Go package pkg of this module (./cmd/socialgate, say)
// into dir and returns the binary's path.
func Build(dir, pkg string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// ModuleRoot is the directory of the go.mod around the working directory.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run inside the socialgate module")
	}
	return filepath.Dir(mod), nil
}

// socialgate is cmd/socialgate built once for the test binary.
var socialgate struct {
	once      sync.Once
	dir, path string
	err       error
}

// Socialgate returns the path of the gateway binary, cmd/socialgate, built
// on the first call of the test binary into a temporary directory that
// RemoveBuilds deletes; t fails when it does not build.
func Socialgate(t testing.TB) string {
	t.Helper()
	s := &socialgate
	s.once.Do(func() {
		if s.dir, s.err = os.MkdirTemp("", "socialgate-bin-"); s.err == nil {
			s.path, s.err = Build(s.dir, "./cmd/socialgate")
		}
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s.path
}

// RemoveBuilds deletes what Socialgate built. Call it from TestMain after
// m.Run.
func RemoveBuilds() {
	if socialgate.dir != "" {
		os.RemoveAll(socialgate.dir)
	}
}

// FreePort is a loopback port for a server the test configures, one that no
// other test of this or another test binary gets (freeport.Take); t fails
// when there is none.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freeport.Take()
	if err != nil {
		t.Fatal(err)
	}
	return port
}
