package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/socialgate/socialgate/caddymodule/internal/admin"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
)

// storeHelp ends the help of the commands that reach the store: how they
// find it, and their exit codes, with what exits 1 (if anything can).
func storeHelp(problem string) string {
	codes := "\nExit codes:\n  0  done\n"
	if problem != "" {
		codes += "  1  " + problem + "\n"
	}
	return `
Which store: with --admin, the command asks the running gateway there,
through Caddy's admin API (a gateway on PostgreSQL, or on any store: give
--admin). Without it, the command opens the Badger store in --storage
directly; when a running gateway holds that store (Badger locks its
directory), it asks that gateway through the admin API at the default
address (localhost:2019, as Caddy's own commands do). Either way it says
on standard error which store it looked at. --storage is the app's storage
option (default: socialgate in Caddy's data directory).
` + codes + "  2  nothing was done: bad arguments, no store there, the admin API does not answer"
}

// storeFlags adds --storage and --admin.
func storeFlags(fs *pflag.FlagSet, env *Env) {
	fs.String("storage", env.DefaultStorage, "The socialgate storage directory (the app's storage option)")
	fs.String("admin", env.DefaultAdmin, "The address of the running gateway's admin API (given: the command always asks it)")
}

// conn is a command's way to its store: the admin routes, of the running
// gateway or served in this process on the store it opened.
type conn struct {
	*admin.Client
	// via says how the store is reached, after its name.
	via string
	// busy is why a command that was not given --admin asks the gateway:
	// the gateway holds the store.
	busy  error
	close func()
	said  bool
}

// connect reaches the store the flags name: the gateway at an explicit
// --admin; else the Badger store in --storage, directly, or through the
// gateway at --admin when the gateway holds it.
func (c *call) connect(ctx context.Context) (*conn, error) {
	addr, storage := c.flags.Lookup("admin").Value.String(), c.flags.Lookup("storage").Value.String()
	online := func(busy error) *conn {
		cl := admin.NewClient(c.Admin(addr))
		if busy != nil || c.flags.Changed("storage") {
			cl.Storage = abs(storage)
		}
		return &conn{Client: cl, via: "through the running gateway's admin API at " + addr, busy: busy, close: func() {}}
	}
	if c.flags.Changed("admin") || c.gatewayOnly {
		return online(nil), nil
	}
	opened, err := ops.Open(ctx, ops.Location{Dir: storage})
	if errors.Is(err, ops.ErrStoreInUse) {
		return online(inUse(err)), nil
	}
	if errors.Is(err, ops.ErrNoStore) {
		return nil, fmt.Errorf("%w (a gateway on PostgreSQL, or on a store elsewhere: give its --admin)", err)
	}
	if err != nil {
		return nil, err
	}
	keys, err := ops.NewKeys(ctx, opened)
	if err != nil {
		opened.Close()
		return nil, err
	}
	st := admin.Store{Dir: opened.Dir, Name: opened.Name, Ops: ops.New(ops.Options{Store: opened.Store, Keys: keys})}
	cl, stop := admin.Local(admin.NewHandler(func() []admin.Store { return []admin.Store{st} }))
	return &conn{Client: cl, via: "opened directly (no gateway holds it)", close: func() {
		stop()
		opened.Close()
	}}, nil
}

// done tells, once, which store the command looked at, and turns the
// routes' error into the command's: exit 1 for a missing record.
func (cn *conn) done(ctx context.Context, c *call, err error) error {
	if cn.Store != "" && !cn.said {
		cn.said = true
		c.say("store: %s, %s", cn.Store, cn.via)
	}
	if err == nil {
		return nil
	}
	if se, ok := errors.AsType[*admin.StatusError](err); ok && se.Missing() {
		return problem(err)
	}
	if cn.busy == nil && c.flags.Changed("storage") && !c.gatewayOnly && unanswered(err) {
		// Nothing answered at --admin: say whether a gateway holds the
		// store in --storage.
		cn.busy = c.held(ctx)
	}
	if cn.busy != nil {
		return fmt.Errorf("%w; asking it through its admin API: %v", cn.busy, err)
	}
	return err
}

// unanswered reports that no socialgate admin API answered.
func unanswered(err error) bool {
	se, ok := errors.AsType[*admin.StatusError](err)
	return errors.Is(err, admin.ErrUnreachable) || ok && se.Status == 0
}

// held returns why the command cannot open the store in --storage itself
// when a running gateway holds it, else nil.
func (c *call) held(ctx context.Context) error {
	opened, err := ops.Open(ctx, ops.Location{Dir: c.flags.Lookup("storage").Value.String()})
	if err == nil {
		opened.Close()
	}
	if errors.Is(err, ops.ErrStoreInUse) {
		return inUse(err)
	}
	return nil
}

// inUse explains ops.ErrStoreInUse to the operator.
func inUse(err error) error {
	return fmt.Errorf("%w: stop it first, or give it Caddy's admin API (the commands then use it; --admin names its address)", err)
}

// abs is dir made absolute, as the gateway names its stores.
func abs(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}
