package caddymodule

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/socialgate/socialgate/caddymodule/internal/admin"
	"github.com/socialgate/socialgate/caddymodule/internal/cli"
)

// Description is the socialgate binary's help above its commands
// (cmd/socialgate sets it as Caddy's CustomLongDescription).
const Description = cli.Description

// The operator commands (socialgate users, storage-check, backup, …) are
// registered with Caddy's command line; internal/cli runs them.
func init() {
	env := &cli.Env{
		DefaultStorage: filepath.Join(caddy.AppDataDir(), "socialgate"),
		DefaultAdmin:   caddy.DefaultAdminListen,
		Admin:          adminDoer,
		Terminal:       isTerminal(os.Stderr),
	}
	var first *cobra.Command
	for _, c := range cli.Commands {
		caddycmd.RegisterCommand(caddycmd.Command{Name: c.Name, Usage: c.Usage, Short: c.Short, Long: c.Long,
			CobraFunc: func(cmd *cobra.Command) {
				c.Setup(cmd, env)
				first = cmd
			}})
	}
	// Caddy gives no hook on its root command before it runs: the group
	// is set up as a command (`help` among them) starts.
	cobra.OnInitialize(func() {
		if first != nil && first.HasParent() {
			cli.GroupHelp(first.Root())
		}
	})
}

// adminHTTPError is how caddycmd.AdminAPIRequest reports an error answer.
var adminHTTPError = regexp.MustCompile(`(?s)^caddy responded with error: HTTP (\d{3}): (.*)$`)

// adminDoer reaches the admin API at addr as Caddy's commands do, and gives
// an error answer back as the answer it was.
func adminDoer(addr string) admin.Doer {
	return func(_ context.Context, method, uri string) (*http.Response, error) {
		resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, nil)
		if err == nil {
			return resp, nil
		}
		m := adminHTTPError.FindStringSubmatch(err.Error())
		if m == nil {
			return nil, fmt.Errorf("%w at %s: %v", admin.ErrUnreachable, addr, err)
		}
		status, _ := strconv.Atoi(m[1])
		return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(m[2]))}, nil
	}
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
