// Package cli is the socialgate operator commands (users, user-delete,
// storage-check, backup, …) without Caddy: what each command does, its
// help, its output and its exit code. caddymodule registers them with
// Caddy's command line, which parses their flags.
//
// A command prints its result on standard output, and on standard error
// which store it looked at, its progress (when standard error is a
// terminal, or with --progress) and, when it fails, one sentence. Exit
// codes: 0 done; 1 something was found wrong (no such user, account or
// session; invariant violations; conflicting records); 2 nothing was done
// (bad arguments, no store, the store is in use and its gateway's admin API
// does not answer, …).
package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/socialgate/socialgate/caddymodule/internal/admin"
)

// Exit codes of the commands.
const (
	ExitOK      = 0 // done; the store is consistent
	ExitProblem = 1 // something was found wrong: a missing record, violations, conflicts
	ExitFailed  = 2 // nothing was done: bad arguments, no store, store unreachable
)

// Env is what the commands need of their host.
type Env struct {
	// DefaultStorage and DefaultAdmin are the defaults of --storage (the
	// app's storage option) and --admin (Caddy's admin endpoint).
	DefaultStorage, DefaultAdmin string
	// Admin returns how to reach the admin API at addr.
	Admin func(addr string) admin.Doer
	// Standard streams, the environment, the clock and the exit; nil
	// fields are the process's own.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time
	Exit           func(code int)
	// Terminal reports whether standard error is a terminal, where
	// progress is shown by default.
	Terminal bool
}

func (e *Env) defaults() {
	e.Stdin = cmp.Or[io.Reader](e.Stdin, os.Stdin)
	e.Stdout = cmp.Or[io.Writer](e.Stdout, os.Stdout)
	e.Stderr = cmp.Or[io.Writer](e.Stderr, os.Stderr)
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Exit == nil {
		e.Exit = os.Exit
	}
}

// Command is one operator command.
type Command struct {
	Name, Usage, Short, Long, Example string
	// flags declares the command's flags.
	flags func(fs *pflag.FlagSet, env *Env)
	run   func(ctx context.Context, c *call) error
}

// call is one run of a command.
type call struct {
	*Env
	path  string // "socialgate users"
	flags *pflag.FlagSet
	args  []string
	// gatewayOnly has the command ask the running gateway, as with
	// --admin, whatever the flags.
	gatewayOnly bool
}

// Setup makes cmd, which the host made from the command's Name, Usage,
// Short and Long, run the command: its flags and examples; errors as one
// sentence on standard error; exit codes as documented (flag errors
// exit 2).
func (c Command) Setup(cmd *cobra.Command, env *Env) {
	env.defaults()
	cmd.Example = c.Example
	cmd.Annotations = map[string]string{groupAnnotation: groupID}
	c.flags(cmd.Flags(), env)
	cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		fmt.Fprintf(env.Stderr, "%s: %v\nUsage: %s\n", cmd.CommandPath(), err, cmd.UseLine())
		env.Exit(ExitFailed)
		return err
	})
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if code := c.exec(cmd.Context(), &call{Env: env, path: cmd.CommandPath(), flags: cmd.Flags(), args: args}); code != ExitOK {
			env.Exit(code)
		}
		return nil
	}
}

// exec runs the command and prints its error; it returns the exit code.
func (c Command) exec(ctx context.Context, cl *call) int {
	if ctx == nil {
		ctx = context.Background()
	}
	err := c.run(ctx, cl)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(cl.Stderr, "%s: %s\n", cl.path, oneLine(err.Error()))
	return exitCode(err)
}

// exitCode is the exit code of a command's outcome.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if e, ok := errors.AsType[*exitError](err); ok {
		return e.code
	}
	return ExitFailed
}

// exitError is an error with its exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// problem is an error that exits 1: something was found wrong.
func problem(err error) error { return &exitError{ExitProblem, err} }

// problemf is problem(fmt.Errorf(format, args...)).
func problemf(format string, args ...any) error { return problem(fmt.Errorf(format, args...)) }

const (
	groupAnnotation = "socialgate.group"
	groupID         = "socialgate"
)

// GroupHelp puts the socialgate commands (those Setup made) under their own
// heading in root's list of commands, before Caddy's.
func GroupHelp(root *cobra.Command) {
	if root.ContainsGroup(groupID) {
		return
	}
	root.AddGroup(&cobra.Group{ID: groupID, Title: "socialgate commands (socialgate help <command> for each):"},
		&cobra.Group{ID: "caddy", Title: "Caddy commands:"})
	// Caddy's examples name the binary caddy.
	root.Example = strings.ReplaceAll(root.Example, "$ caddy ", "$ "+root.Name()+" ")
	for _, cmd := range root.Commands() {
		cmd.GroupID = "caddy"
		if cmd.Annotations[groupAnnotation] == groupID {
			cmd.GroupID = groupID
		}
	}
}

// oneLine keeps an error on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// argsOnly returns the positional arguments when there are exactly n, each
// not empty; else an error naming what to give.
func (c *call) argsOnly(n int, what string) ([]string, error) {
	if len(c.args) != n || slices.Contains(c.args, "") {
		return nil, errors.New("give " + what)
	}
	return c.args, nil
}

// noArgs refuses positional arguments.
func (c *call) noArgs() error {
	if len(c.args) != 0 {
		return fmt.Errorf("%s takes no arguments, only flags", c.path)
	}
	return nil
}

// say prints a line on standard error: which store, what is going on.
func (c *call) say(format string, args ...any) {
	fmt.Fprintf(c.Stderr, format+"\n", args...)
}

// table returns a tabwriter on w with the header row written.
func table(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row(tw, header...)
	return tw
}

// row writes one line of cells. Names and emails come from providers:
// control characters (tabs, newlines, terminal escapes) are shown as U+FFFD
// so that they can neither break the table nor drive the terminal.
func row(tw *tabwriter.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return unicode.ReplacementChar
			}
			return r
		}, c)
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

// stamp formats a time for the tables: UTC, to the second; "-" when unset.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// millis is stamp of Unix milliseconds; 0 (or less) is unset.
func millis(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return stamp(time.UnixMilli(ms))
}

// plural writes n and the noun, in the plural unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
