package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Exit codes of the operator commands. Caddy's Main exits 1 for any error a
// command returns and the command's own code only above 1, so a code-1
// outcome must come with an error.
const (
	exitOK      = 0 // done; the store is consistent
	exitProblem = 1 // the store has violations, or the user or session does not exist
	exitFailed  = 2 // nothing was checked or changed: bad arguments, no store, store in use
)

// errGatewayRunning means another process, normally the gateway, holds the
// store's directory lock.
var errGatewayRunning = errors.New("the gateway is running and holds the store: stop it first, or use the backend API (/_auth/api/v1/…) while it runs")

func init() {
	const storageHelp = `
The command opens the store directly, so the gateway must be stopped:
Badger locks its directory, and while the gateway runs the command fails
with exit code 2. --storage is the app's storage option (default: socialgate in
Caddy's data directory).`

	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "storage-check",
		Usage: "[--storage <dir>]",
		Short: "Checks the socialgate store's invariants (gateway stopped)",
		Long: `
Reads the whole socialgate store in one snapshot and checks its invariants:
every index entry points at its record and every record has its index
entries, each verified email is vouched for by an account that asserts it,
and the user count matches the users. Each violation is printed on its own
line.

Exit code 0: the store is consistent; 1: violations were found; 2: the check
could not run (no store there, the gateway is running, unreadable store).
` + storageHelp,
		CobraFunc: func(cmd *cobra.Command) {
			storageFlag(cmd)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdStorageCheck)
		},
	})

	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "users",
		Usage: "[--storage <dir>] [--email <address>] [--limit <n>] [--offset <n>] [--json]",
		Short: "Lists socialgate users (gateway stopped)",
		Long: `
Lists users, newest first: id, name, primary email and creation time, as a
table, or with --json as JSON lines of the backend API's user objects.
--email lists the users holding that address (any case).
` + storageHelp,
		CobraFunc: func(cmd *cobra.Command) {
			storageFlag(cmd)
			cmd.Flags().String("email", "", "Only users holding this email address")
			cmd.Flags().Int("limit", 100, "Maximum number of users to list (1-500)")
			cmd.Flags().Int("offset", 0, "Number of users to skip")
			cmd.Flags().Bool("json", false, "Print JSON lines")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdUsers)
		},
	})

	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "user",
		Usage: "[--storage <dir>] [--json] <user id>",
		Short: "Shows a socialgate user with its accounts and sessions (gateway stopped)",
		Long: `
Shows one user with its linked accounts and live sessions. Token material is
never shown. Exit code 1 when there is no such user.
` + storageHelp,
		CobraFunc: func(cmd *cobra.Command) {
			storageFlag(cmd)
			cmd.Flags().Bool("json", false, "Print JSON: {user, sessions}, shaped like the backend API's objects")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdUser)
		},
	})

	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "user-delete",
		Usage: "[--storage <dir>] <user id>",
		Short: "Deletes a socialgate user (gateway stopped)",
		Long: `
Deletes a user with its linked accounts and sessions, in one transaction.
Tokens at the providers are not revoked: this command does not know the
providers. The backend API's DELETE /users/{id} on a running gateway
revokes them. Exit code 1 when there is no such user.
` + storageHelp,
		CobraFunc: func(cmd *cobra.Command) {
			storageFlag(cmd)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdUserDelete)
		},
	})

	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "session-revoke",
		Usage: "[--storage <dir>] <session id>",
		Short: "Ends a socialgate session (gateway stopped)",
		Long: `
Deletes a session: its cookie stops working. Exit code 1 when there is no
such live session.
` + storageHelp,
		CobraFunc: func(cmd *cobra.Command) {
			storageFlag(cmd)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdSessionRevoke)
		},
	})
}

// storageFlag adds --storage, and makes flag errors exit 2: Caddy's Main
// would exit 1, which these commands use for "found a problem".
func storageFlag(cmd *cobra.Command) {
	cmd.Flags().String("storage", filepath.Join(caddy.AppDataDir(), "socialgate"), "The socialgate storage directory")
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		fmt.Fprintf(os.Stderr, "%v\nUsage: %s\n", err, c.UseLine())
		os.Exit(exitFailed)
		return err
	})
}

// openStopped opens the store of a stopped gateway. It never creates one: a
// directory without keys.json holds no store.
func openStopped(fl caddycmd.Flags) (*store.Badger, error) {
	dir := fl.String("storage")
	if _, err := os.Stat(filepath.Join(dir, keyring.FileName)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("storage %s: no socialgate store here (%s is missing)", dir, keyring.FileName)
	}
	keys, err := keyring.LoadOrCreate(dir)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", dir, err)
	}
	st, err := store.Open(store.Options{Dir: dir, EncryptionKey: keys.StoreKey})
	// Badger flattens the flock error into its message, so the text is all
	// there is to recognize a held lock by.
	if err != nil && strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return nil, fmt.Errorf("storage %s: %w", dir, errGatewayRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w", dir, err)
	}
	return st, nil
}

// idArg returns the command's single positional argument, an id.
func idArg(fl caddycmd.Flags, what string) (string, error) {
	if fl.NArg() != 1 || fl.Arg(0) == "" {
		return "", fmt.Errorf("give exactly one %s", what)
	}
	return fl.Arg(0), nil
}

// notFound turns a store error into the command's result: exit 1 and
// "there is no <what>" for a missing record, exit 2 for anything else.
func notFound(err error, what string) (int, error) {
	if errors.Is(err, store.ErrNotFound) {
		return exitProblem, errors.New("there is no " + what)
	}
	return exitFailed, err
}

func cmdStorageCheck(fl caddycmd.Flags) (int, error) {
	st, err := openStopped(fl)
	if err != nil {
		return exitFailed, err
	}
	defer st.Close()
	ctx := context.Background()
	problems, err := st.Check(ctx)
	if err != nil {
		return exitFailed, err
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		return exitProblem, fmt.Errorf("store %s: %d invariant violations", fl.String("storage"), len(problems))
	}
	_, total, err := st.Users(ctx, store.UserQuery{Limit: 1})
	if err != nil {
		return exitFailed, err
	}
	fmt.Printf("store is consistent: %d users\n", total)
	return exitOK, nil
}

func cmdUsers(fl caddycmd.Flags) (int, error) {
	limit, offset := fl.Int("limit"), fl.Int("offset")
	if limit < 1 || limit > 500 || offset < 0 {
		return exitFailed, errors.New("--limit must be 1-500 and --offset at least 0")
	}
	st, err := openStopped(fl)
	if err != nil {
		return exitFailed, err
	}
	defer st.Close()
	ctx := context.Background()
	users, total, err := st.Users(ctx, store.UserQuery{Email: fl.String("email"), Limit: limit, Offset: offset})
	if err != nil {
		return exitFailed, err
	}
	if fl.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		for _, u := range users {
			accounts, err := st.ExternalAccounts(ctx, u.ID)
			if err != nil {
				return exitFailed, err
			}
			if err := enc.Encode(api.User(u, accounts)); err != nil {
				return exitFailed, err
			}
		}
		return exitOK, nil
	}
	tw := table(os.Stdout, "ID", "NAME", "EMAIL", "CREATED")
	for _, u := range users {
		row(tw, u.ID, u.Name, u.PrimaryEmail(), stamp(u.CreatedAt))
	}
	tw.Flush()
	fmt.Printf("%d of %d users\n", len(users), total)
	return exitOK, nil
}

func cmdUser(fl caddycmd.Flags) (int, error) {
	id, err := idArg(fl, "user id")
	if err != nil {
		return exitFailed, err
	}
	st, err := openStopped(fl)
	if err != nil {
		return exitFailed, err
	}
	defer st.Close()
	ctx := context.Background()
	u, err := st.User(ctx, id)
	if err != nil {
		return notFound(err, "user "+id)
	}
	accounts, err := st.ExternalAccounts(ctx, id)
	if err != nil {
		return exitFailed, err
	}
	sessions, err := st.Sessions(ctx, id)
	if err != nil {
		return exitFailed, err
	}
	if fl.Bool("json") {
		items := make([]map[string]any, 0, len(sessions))
		for _, s := range sessions {
			items = append(items, api.Session(s, "active"))
		}
		out := map[string]any{"user": api.User(u, accounts), "sessions": items}
		if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
			return exitFailed, err
		}
		return exitOK, nil
	}
	printUser(os.Stdout, u, accounts, sessions)
	return exitOK, nil
}

// printUser writes the user, its accounts and its sessions as text.
func printUser(w io.Writer, u *store.User, accounts []*store.ExternalAccount, sessions []*store.Session) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row(tw, "id", u.ID)
	row(tw, "name", u.Name)
	var emails []string
	for _, e := range u.Emails {
		if e.Verified {
			emails = append(emails, e.Email+" (verified)")
		} else {
			emails = append(emails, e.Email+" (unverified)")
		}
	}
	row(tw, "emails", strings.Join(emails, ", "))
	row(tw, "created", stamp(u.CreatedAt))
	row(tw, "last sign-in", stamp(u.LastSignInAt))
	tw.Flush()

	fmt.Fprintf(w, "\n%d accounts\n", len(accounts))
	if len(accounts) > 0 {
		tw = table(w, "ID", "PROVIDER", "ISSUER", "SUBJECT", "EMAIL", "STATUS", "CREATED")
		for _, a := range accounts {
			email := a.Email
			if email != "" && !a.EmailVerified {
				email += " (unverified)"
			}
			row(tw, a.ID, a.Provider, a.Issuer, a.Subject, email, a.Status, stamp(a.CreatedAt))
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\n%d sessions\n", len(sessions))
	if len(sessions) > 0 {
		tw = table(w, "ID", "CREATED", "EXPIRES", "IP", "USER AGENT")
		for _, s := range sessions {
			row(tw, s.ID, stamp(s.CreatedAt), stamp(s.ExpiresAt), s.IP, s.UserAgent)
		}
		tw.Flush()
	}
}

func cmdUserDelete(fl caddycmd.Flags) (int, error) {
	id, err := idArg(fl, "user id")
	if err != nil {
		return exitFailed, err
	}
	st, err := openStopped(fl)
	if err != nil {
		return exitFailed, err
	}
	defer st.Close()
	if err := st.DeleteUser(context.Background(), id); err != nil {
		return notFound(err, "user "+id)
	}
	fmt.Printf("deleted user %s with its accounts and sessions\n", id)
	return exitOK, nil
}

func cmdSessionRevoke(fl caddycmd.Flags) (int, error) {
	id, err := idArg(fl, "session id")
	if err != nil {
		return exitFailed, err
	}
	st, err := openStopped(fl)
	if err != nil {
		return exitFailed, err
	}
	defer st.Close()
	ctx := context.Background()
	s, err := st.Session(ctx, id)
	if err != nil {
		return notFound(err, "live session with this id")
	}
	if err := st.RevokeSession(ctx, id); err != nil {
		return exitFailed, err
	}
	fmt.Printf("revoked a session of user %s\n", s.UserID)
	return exitOK, nil
}

// table returns a tabwriter with the header row written.
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
