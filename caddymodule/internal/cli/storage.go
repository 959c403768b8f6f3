package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/socialgate/socialgate/caddymodule/internal/ops"
)

func runStorageCheck(ctx context.Context, c *call) error {
	if err := c.noArgs(); err != nil {
		return err
	}
	return withConn(ctx, c, func(cn *conn) error {
		stop := c.progress().while("checking the store")
		report, err := cn.Check(ctx)
		stop()
		if err != nil {
			return err
		}
		for _, v := range report.Violations {
			fmt.Fprintln(c.Stdout, v)
		}
		if n := len(report.Violations); n > 0 {
			return problemf("the store has %s", plural(n, "invariant violation"))
		}
		fmt.Fprintf(c.Stdout, "store is consistent: %s\n", plural(report.Users, "user"))
		return nil
	})
}

func runBackup(ctx context.Context, c *call) error {
	output, _ := c.flags.GetString("output")
	if output == "" || len(c.args) != 0 {
		return errors.New("give --output <file> (\"-\" for standard output) and no arguments")
	}
	// The backup goes to a temporary file beside the output, renamed into
	// place once complete: a failed backup never leaves a truncated file
	// that looks like one.
	w := c.Stdout
	var tmp *os.File
	if output != "-" {
		var err error
		if tmp, err = os.CreateTemp(filepath.Dir(output), ".socialgate-backup-*"); err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	p := c.progress()
	out := &counter{p: p, label: "backup", w: w}
	err := withConn(ctx, c, func(cn *conn) error { return cn.Backup(ctx, out) })
	p.end()
	if err != nil || tmp == nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), output); err != nil {
		return err
	}
	fmt.Fprintf(c.Stdout, "backed up the store to %s: %s (keep keys.json with it: restore needs it)\n", output, size(out.n))
	return nil
}

func runRestore(ctx context.Context, c *call) error {
	input, _ := c.flags.GetString("input")
	dir, _ := c.flags.GetString("storage")
	if input == "" || len(c.args) != 0 {
		return errors.New("give --input <file> (\"-\" for standard input) and no arguments")
	}
	in := &counter{p: c.progress(), label: "restore", r: c.Stdin}
	if input != "-" {
		f, err := os.Open(input)
		if err != nil {
			return fmt.Errorf("restoring %s: %w", input, err)
		}
		defer f.Close()
		in.r = f
		if fi, err := f.Stat(); err == nil {
			in.of = fi.Size()
		}
	}
	report, err := ops.Restore(ctx, dir, in)
	in.p.end()
	if err != nil {
		return fmt.Errorf("restoring %s: %w", input, err)
	}
	c.say("store: Badger store %s, restored", abs(dir))
	for _, v := range report.Violations {
		fmt.Fprintln(c.Stdout, v)
	}
	if n := len(report.Violations); n > 0 {
		return problemf("the restored store %s has %s", dir, plural(n, "invariant violation"))
	}
	fmt.Fprintf(c.Stdout, "restored %s into %s\n", plural(report.Users, "user"), dir)
	return nil
}
