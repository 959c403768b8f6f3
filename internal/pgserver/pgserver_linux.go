package pgserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/socialgate/socialgate/internal/freeport"
)

// start runs initdb and postgres as children of this process, as the
// postgres user when this process is root. Both get SIGTERM if the thread
// that started them dies (Go sets the parent-death signal after switching
// the user, so the switch does not clear it): a killed caller leaves no
// server behind, and initdb removes its half-written data directory.
func start(opts Options) (_ *Server, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), opts.StartTimeout)
	defer cancel()
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, removeDir := opts.Dir, false
	if dir == "" {
		if dir, err = os.MkdirTemp("", "socialgate-pg-"); err != nil {
			return nil, err
		}
		removeDir = true
		defer func() {
			if err != nil {
				os.RemoveAll(dir)
			}
		}()
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("handing %s to the postgres user: %w", dir, err)
		}
	}

	var pw [16]byte
	rand.Read(pw[:])
	password := hex.EncodeToString(pw[:])
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(pwfile, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("handing %s to the postgres user: %w", pwfile, err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGTERM}
	initdb.WaitDelay = 10 * time.Second // its helper processes may hold the output pipe after a kill
	if out, err := initdb.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (not done within %s)", err, opts.StartTimeout)
		}
		return nil, fmt.Errorf("initdb: %v\n%s%s", err, out, unreachable(dir, cred))
	}

	port, err := freeport.Take()
	if err != nil {
		return nil, err
	}
	args := []string{"-D", data,
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port), "-c", "unix_socket_directories=" + dir,
		"-c", "fsync=off"}
	for _, s := range opts.Settings {
		args = append(args, "-c", s)
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	s := &Server{
		dir:       dir,
		removeDir: removeDir,
		admin:     adminDSN(password, port),
		logPath:   logPath,
		cmd:       cmd,
		done:      make(chan struct{}),
	}
	go func() {
		s.err = cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		tail := s.logTail() // before Stop may remove the log
		s.Stop()
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, tail)
	}
	s.dsn = s.admin
	if opts.Database != "" {
		if s.dsn, err = s.CreateDatabase(ctx, opts.Database); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// serverCredential returns nil when this process may run the server as
// itself, else the postgres user's: initdb and postgres refuse root.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w: running as root, which PostgreSQL refuses, and there is no postgres user "+
			"to run the server as (Debian's postgresql package creates it): %v", ErrUnavailable, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("the postgres user's ids: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// unreachable is a hint for initdb's error when the postgres user cannot
// search a directory above dir, so cannot reach its own files there; ""
// when it can (by the permission bits; ACLs are not looked at) or the
// server runs as this process's user.
func unreachable(dir string, cred *syscall.Credential) string {
	if cred == nil {
		return ""
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return ""
		}
		perm := fi.Mode().Perm()
		ok := perm&0o001 != 0
		if st, isUnix := fi.Sys().(*syscall.Stat_t); isUnix {
			ok = ok || st.Uid == cred.Uid && perm&0o100 != 0 || st.Gid == cred.Gid && perm&0o010 != 0
		}
		if !ok {
			return fmt.Sprintf("(the server runs as the postgres user, which cannot search %s to reach %s: "+
				"make it searchable, e.g. chmod o+x)\n", d, dir)
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}
