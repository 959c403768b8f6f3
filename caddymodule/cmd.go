package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/dgraph-io/badger/v4"
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
var errGatewayRunning = errors.New("the gateway is running and holds the store: stop it first, or give it Caddy's admin API (the commands then use it; --admin names its address)")

// storageHelp ends the help of the commands that reach the store.
const storageHelp = `
With the gateway stopped, the command opens the store directly. While a
gateway runs and holds the store (Badger locks its directory), the command
asks that gateway instead, through Caddy's admin API at --admin (default
localhost:2019, like Caddy's own commands); it fails with exit code 2 when
the admin API does not answer. Giving --admin explicitly also goes
through the admin API when --storage holds no store (so a PostgreSQL store
is reached: give --admin).
--storage is the app's storage option (default: socialgate in Caddy's data
directory).`

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "storage-check",
		Usage: "[--storage <dir>] [--admin <addr>]",
		Short: "Checks the socialgate store's invariants",
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
		Usage: "[--storage <dir>] [--admin <addr>] [--email <address>] [--limit <n>] [--offset <n>] [--json]",
		Short: "Lists socialgate users",
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
		Usage: "[--storage <dir>] [--admin <addr>] [--json] <user id>",
		Short: "Shows a socialgate user with its accounts and sessions",
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
		Usage: "[--storage <dir>] [--admin <addr>] <user id>",
		Short: "Deletes a socialgate user",
		Long: `
Deletes a user with its linked accounts and sessions, in one transaction.
Tokens at the providers are not revoked: this command does not know the
providers. The backend API's DELETE /users/{id} on a running gateway
revokes them; this command does not, offline or through the admin API.
Exit code 1 when there is no such user.
` + storageHelp,
		CobraFunc: func(cmd *cobra.Command) {
			storageFlag(cmd)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdUserDelete)
		},
	})

	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "session-revoke",
		Usage: "[--storage <dir>] [--admin <addr>] <session id>",
		Short: "Ends a socialgate session",
		Long: `
Deletes a session: its cookie stops working. Exit code 1 when there is no
such live session.
` + storageHelp,
		CobraFunc: func(cmd *cobra.Command) {
			storageFlag(cmd)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdSessionRevoke)
		},
	})

	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "account-disconnect",
		Usage: "[--storage <dir>] [--admin <addr>] <user id> <external account id>",
		Short: "Unlinks an external account from a socialgate user",
		Long: `
Unlinks one external account (eac_…) from its user, in one transaction: the
sessions signed in through it end, and an email address only that account
vouched for becomes unverified (the sessions that show it go on without
it). Tokens
at the provider are not revoked. Exit code 1 when the user has no such
account.
` + storageHelp,
		CobraFunc: func(cmd *cobra.Command) {
			storageFlag(cmd)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdAccountDisconnect)
		},
	})

	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "backup",
		Usage: "[--storage <dir>] [--admin <addr>] --output <file>",
		Short: "Backs up the socialgate store in Badger's backup format",
		Long: `
Writes a full backup of a Badger store to --output ("-" for standard
output), in Badger's own backup format, from one snapshot. It works online
too: a running gateway streams it through the admin API while it serves.
The backup holds the records decrypted, provider tokens included: keep it as
secret as keys.json. Restore it with "socialgate restore", which needs the
store's keys.json: copy keys.json along with the backup.
` + storageHelp,
		CobraFunc: func(cmd *cobra.Command) {
			storageFlag(cmd)
			cmd.Flags().String("output", "", "The backup file to write (\"-\": standard output)")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdBackup)
		},
	})

	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "restore",
		Usage: "--storage <dir> --input <file>",
		Short: "Restores a socialgate backup into a new store (offline)",
		Long: `
Loads a backup written by "socialgate backup" into a new Badger store in
--storage. The directory must hold the keys.json of the store that was
backed up (copy it there first) and nothing else: restore never merges into
a store, and never touches a store a gateway is using. Point the gateway's
storage option at the directory afterwards. The restored store is checked;
exit code 1 when it has invariant violations, 2 when nothing was restored.
`,
		CobraFunc: func(cmd *cobra.Command) {
			storageFlag(cmd)
			cmd.Flags().String("input", "", "The backup file to read (\"-\": standard input)")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdRestore)
		},
	})
}

// storageFlag adds --storage and --admin, and makes flag errors exit 2.
func storageFlag(cmd *cobra.Command) {
	cmd.Flags().String("storage", filepath.Join(caddy.AppDataDir(), "socialgate"), "The socialgate storage directory")
	cmd.Flags().String("admin", caddy.DefaultAdminListen, "The address of the running gateway's admin API, used when it holds the store")
	flagErrorsExitTwo(cmd)
}

// flagErrorsExitTwo makes the command's flag errors exit 2 (nothing was
// done): Caddy's Main would exit 1, which the commands use for "found a
// problem".
func flagErrorsExitTwo(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		fmt.Fprintf(os.Stderr, "%v\nUsage: %s\n", err, c.UseLine())
		os.Exit(exitFailed)
		return err
	})
}

// openStopped opens the store of a stopped gateway. It never creates one: a
// directory without keys.json holds no store.
func openStopped(fl caddycmd.Flags) (*store.Badger, error) {
	return openBadgerDir(fl.String("storage"), false)
}

// openBadgerDir opens the Badger store in dir with the keys beside it;
// create makes one where there is none (no keys.json), else that is
// errNoStore. A store another process holds (the running gateway) is
// errGatewayRunning.
func openBadgerDir(dir string, create bool) (*store.Badger, error) {
	if _, err := os.Stat(filepath.Join(dir, keyring.FileName)); errors.Is(err, fs.ErrNotExist) && !create {
		return nil, fmt.Errorf("storage %s: %w (%s is missing)", dir, errNoStore, keyring.FileName)
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
	ctx := context.Background()
	var problems []string
	var total int
	code, err := withStore(fl, func(st *store.Badger) (int, error) {
		var err error
		if problems, err = st.Check(ctx); err != nil {
			return exitFailed, err
		}
		if _, total, err = st.Users(ctx, store.UserQuery{Limit: 1}); err != nil {
			return exitFailed, err
		}
		return exitOK, nil
	}, func(c *adminClient) (int, error) {
		var out struct {
			Violations []string `json:"violations"`
			Users      int      `json:"users"`
		}
		if err := c.getJSON("/check", nil, &out); err != nil {
			return c.fail(err)
		}
		problems, total = out.Violations, out.Users
		return exitOK, nil
	})
	if err != nil {
		return code, err
	}
	for _, p := range problems {
		fmt.Println(p)
	}
	if len(problems) > 0 {
		return exitProblem, fmt.Errorf("store %s: %d invariant violations", fl.String("storage"), len(problems))
	}
	fmt.Printf("store is consistent: %d users\n", total)
	return exitOK, nil
}

func cmdUsers(fl caddycmd.Flags) (int, error) {
	limit, offset := fl.Int("limit"), fl.Int("offset")
	if limit < 1 || limit > 500 || offset < 0 {
		return exitFailed, errors.New("--limit must be 1-500 and --offset at least 0")
	}
	ctx := context.Background()
	var users []map[string]any
	var total int
	code, err := withStore(fl, func(st *store.Badger) (int, error) {
		list, n, err := st.Users(ctx, store.UserQuery{Email: fl.String("email"), Limit: limit, Offset: offset})
		if err != nil {
			return exitFailed, err
		}
		total = n
		for _, u := range list {
			accounts, err := st.ExternalAccounts(ctx, u.ID)
			if err != nil {
				return exitFailed, err
			}
			users = append(users, api.User(u, accounts))
		}
		return exitOK, nil
	}, func(c *adminClient) (int, error) {
		var out struct {
			Data  []map[string]any `json:"data"`
			Total int              `json:"total_count"`
		}
		q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
		if e := fl.String("email"); e != "" {
			q.Set("email", e)
		}
		if err := c.getJSON("/users", q, &out); err != nil {
			return c.fail(err)
		}
		users, total = out.Data, out.Total
		return exitOK, nil
	})
	if err != nil {
		return code, err
	}
	if fl.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		for _, u := range users {
			if err := enc.Encode(u); err != nil {
				return exitFailed, err
			}
		}
		return exitOK, nil
	}
	tw := table(os.Stdout, "ID", "NAME", "EMAIL", "CREATED")
	for _, u := range users {
		row(tw, str(u["id"]), str(u["name"]), str(u["primary_email_address"]), millis(u["created_at"]))
	}
	tw.Flush()
	fmt.Printf("%d of %d users\n", len(users), total)
	return exitOK, nil
}

// userView is a user with its sessions as the JSON of `user --json` and of
// the admin API's GET /socialgate/users/{id}.
type userView struct {
	User     map[string]any   `json:"user"`
	Sessions []map[string]any `json:"sessions"`
}

func cmdUser(fl caddycmd.Flags) (int, error) {
	id, err := idArg(fl, "user id")
	if err != nil {
		return exitFailed, err
	}
	ctx := context.Background()
	var view userView
	var text func()
	code, err := withStore(fl, func(st *store.Badger) (int, error) {
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
		view.User = api.User(u, accounts)
		view.Sessions = []map[string]any{}
		for _, s := range sessions {
			view.Sessions = append(view.Sessions, api.Session(s, "active"))
		}
		text = func() { printUser(os.Stdout, u, accounts, sessions) }
		return exitOK, nil
	}, func(c *adminClient) (int, error) {
		if err := c.getJSON("/users/"+url.PathEscape(id), nil, &view); err != nil {
			return c.fail(err)
		}
		text = func() { u, a, s := fromView(view); printUser(os.Stdout, u, a, s) }
		return exitOK, nil
	})
	if err != nil {
		return code, err
	}
	if fl.Bool("json") {
		if err := json.NewEncoder(os.Stdout).Encode(view); err != nil {
			return exitFailed, err
		}
		return exitOK, nil
	}
	text()
	return exitOK, nil
}

// fromView rebuilds the records printUser shows from the API's objects
// (which do not carry an account's issuer).
func fromView(v userView) (*store.User, []*store.ExternalAccount, []*store.Session) {
	u := &store.User{ID: str(v.User["id"]), Name: str(v.User["name"]), CreatedAt: msTime(v.User["created_at"]), LastSignInAt: msTime(v.User["last_sign_in_at"])}
	emails, _ := v.User["email_addresses"].([]any)
	for _, e := range emails {
		m, _ := e.(map[string]any)
		ver, _ := m["verification"].(map[string]any)
		u.Emails = append(u.Emails, store.EmailAddress{Email: str(m["email_address"]), Verified: str(ver["status"]) == "verified"})
	}
	var accounts []*store.ExternalAccount
	eacs, _ := v.User["external_accounts"].([]any)
	for _, e := range eacs {
		m, _ := e.(map[string]any)
		ver, _ := m["verification"].(map[string]any)
		accounts = append(accounts, &store.ExternalAccount{ID: str(m["id"]), Provider: strings.TrimPrefix(str(m["provider"]), "oauth_"),
			Subject: str(m["provider_user_id"]), Email: str(m["email_address"]), EmailVerified: true,
			Status: str(ver["status"]), CreatedAt: msTime(m["created_at"])})
	}
	var sessions []*store.Session
	for _, m := range v.Sessions {
		sessions = append(sessions, &store.Session{ID: str(m["id"]), UserID: str(m["user_id"]), CreatedAt: msTime(m["created_at"]),
			ExpiresAt: msTime(m["expire_at"]), IP: str(m["ip_address"]), UserAgent: str(m["user_agent"])})
	}
	return u, accounts, sessions
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
	code, err := withStore(fl, func(st *store.Badger) (int, error) {
		if err := st.DeleteUser(context.Background(), id); err != nil {
			return notFound(err, "user "+id)
		}
		return exitOK, nil
	}, func(c *adminClient) (int, error) {
		if err := c.getJSON("DELETE /users/"+url.PathEscape(id), nil, nil); err != nil {
			return c.fail(err)
		}
		return exitOK, nil
	})
	if err != nil {
		return code, err
	}
	fmt.Printf("deleted user %s with its accounts and sessions\n", id)
	return exitOK, nil
}

func cmdSessionRevoke(fl caddycmd.Flags) (int, error) {
	id, err := idArg(fl, "session id")
	if err != nil {
		return exitFailed, err
	}
	ctx := context.Background()
	var userID string
	code, err := withStore(fl, func(st *store.Badger) (int, error) {
		s, err := st.Session(ctx, id)
		if err != nil {
			return notFound(err, "live session with this id")
		}
		if err := st.RevokeSession(ctx, id); err != nil {
			return exitFailed, err
		}
		userID = s.UserID
		return exitOK, nil
	}, func(c *adminClient) (int, error) {
		var s map[string]any
		if err := c.getJSON("POST /sessions/"+url.PathEscape(id)+"/revoke", nil, &s); err != nil {
			return c.fail(err)
		}
		userID = str(s["user_id"])
		return exitOK, nil
	})
	if err != nil {
		return code, err
	}
	fmt.Printf("revoked a session of user %s\n", userID)
	return exitOK, nil
}

func cmdAccountDisconnect(fl caddycmd.Flags) (int, error) {
	if fl.NArg() != 2 || fl.Arg(0) == "" || fl.Arg(1) == "" {
		return exitFailed, errors.New("give a user id and an external account id")
	}
	userID, id := fl.Arg(0), fl.Arg(1)
	code, err := withStore(fl, func(st *store.Badger) (int, error) {
		_, _, err := st.DeleteExternalAccount(context.Background(), userID, id, func([]*store.ExternalAccount) error { return nil })
		if err != nil {
			return notFound(err, "external account "+id+" of user "+userID)
		}
		return exitOK, nil
	}, func(c *adminClient) (int, error) {
		if err := c.getJSON("DELETE /users/"+url.PathEscape(userID)+"/external_accounts/"+url.PathEscape(id), nil, nil); err != nil {
			return c.fail(err)
		}
		return exitOK, nil
	})
	if err != nil {
		return code, err
	}
	fmt.Printf("disconnected account %s from user %s\n", id, userID)
	return exitOK, nil
}

func cmdBackup(fl caddycmd.Flags) (int, error) {
	output := fl.String("output")
	if output == "" || fl.NArg() != 0 {
		return exitFailed, errors.New("give --output <file> (\"-\" for standard output) and no arguments")
	}
	// The backup goes to a temporary file beside the output, renamed into
	// place once complete: a failed backup never leaves a truncated file
	// that looks like one.
	var w io.Writer = os.Stdout
	var tmp *os.File
	if output != "-" {
		var err error
		if tmp, err = os.CreateTemp(filepath.Dir(output), ".socialgate-backup-*"); err != nil {
			return exitFailed, err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	code, err := withStore(fl, func(st *store.Badger) (int, error) {
		if err := st.Backup(w); err != nil {
			return exitFailed, err
		}
		return exitOK, nil
	}, func(c *adminClient) (int, error) {
		resp, err := c.do(http.MethodGet, "/backup", nil)
		if err != nil {
			return c.fail(err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(w, resp.Body); err != nil {
			return exitFailed, fmt.Errorf("receiving the backup: %w", err)
		}
		return exitOK, nil
	})
	if err != nil {
		return code, err
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return exitFailed, err
		}
		if err := tmp.Close(); err != nil {
			return exitFailed, err
		}
		if err := os.Rename(tmp.Name(), output); err != nil {
			return exitFailed, err
		}
		fmt.Printf("backed up the store to %s (keep keys.json with it: restore needs it)\n", output)
	}
	return exitOK, nil
}

func cmdRestore(fl caddycmd.Flags) (int, error) {
	input, dir := fl.String("input"), fl.String("storage")
	if input == "" || fl.NArg() != 0 {
		return exitFailed, errors.New("give --input <file> (\"-\" for standard input) and no arguments")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return exitFailed, fmt.Errorf("storage %s: %w (create it and copy the backed-up store's %s there)", dir, err, keyring.FileName)
	}
	hasKeys := false
	for _, e := range entries {
		if e.Name() == keyring.FileName {
			hasKeys = true
			continue
		}
		return exitFailed, fmt.Errorf("storage %s is not empty (%s): restore only into a new directory holding nothing but %s", dir, e.Name(), keyring.FileName)
	}
	if !hasKeys {
		return exitFailed, fmt.Errorf("storage %s: %s is missing: copy the backed-up store's %s there first", dir, keyring.FileName, keyring.FileName)
	}
	var r io.Reader = os.Stdin
	if input != "-" {
		f, err := os.Open(input)
		if err != nil {
			return exitFailed, err
		}
		defer f.Close()
		r = f
	}
	keys, err := keyring.LoadOrCreate(dir)
	if err != nil {
		return exitFailed, fmt.Errorf("storage %s: %w", dir, err)
	}
	db, err := badger.Open(badger.DefaultOptions(dir).WithEncryptionKey(keys.StoreKey).WithIndexCacheSize(16 << 20).
		WithSyncWrites(true).WithLogger(nil))
	if err != nil && strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return exitFailed, fmt.Errorf("storage %s: %w", dir, errGatewayRunning)
	}
	if err != nil {
		return exitFailed, fmt.Errorf("storage %s: %w", dir, err)
	}
	if err := loadBackup(db, r); err != nil {
		db.Close()
		return exitFailed, fmt.Errorf("restoring %s: %w (remove everything but %s from %s before trying again)", input, err, keyring.FileName, dir)
	}
	if err := db.Close(); err != nil {
		return exitFailed, err
	}
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
		return exitProblem, fmt.Errorf("restored store %s: %d invariant violations", dir, len(problems))
	}
	_, total, err := st.Users(ctx, store.UserQuery{Limit: 1})
	if err != nil {
		return exitFailed, err
	}
	fmt.Printf("restored %d users into %s\n", total, dir)
	return exitOK, nil
}

// loadBackup loads a backup into db. Badger's Load panics on some
// malformed input (a length prefix it cannot allocate): that is an error
// here.
func loadBackup(db *badger.DB, r io.Reader) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("not a socialgate backup, or a truncated one: %v", p)
		}
	}()
	return db.Load(r, 16)
}

// withStore runs offline on the stopped store in --storage, or online
// through the admin API of the gateway that holds it (or always online
// when --admin is given).
func withStore(fl caddycmd.Flags, offline func(*store.Badger) (int, error), online func(*adminClient) (int, error)) (int, error) {
	addr := fl.String("admin")
	st, err := openStopped(fl)
	if errors.Is(err, errGatewayRunning) {
		code, oerr := online(&adminClient{addr: addr, storage: absDir(fl.String("storage"))})
		if errors.Is(oerr, errAdminUnreachable) {
			return exitFailed, fmt.Errorf("%w; its admin API at %s does not answer", err, addr)
		}
		if code == exitFailed && oerr != nil {
			return exitFailed, fmt.Errorf("%w; asking it through the admin API: %v", err, oerr)
		}
		return code, oerr
	}
	if errors.Is(err, errNoStore) && fl.Changed("admin") {
		// No Badger store here, but an admin API to ask: a gateway on
		// PostgreSQL, or on a store in another directory.
		c := &adminClient{addr: addr}
		if fl.Changed("storage") {
			c.storage = absDir(fl.String("storage"))
		}
		return online(c)
	}
	if err != nil {
		return exitFailed, err
	}
	defer st.Close()
	return offline(st)
}

func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// errNoStore means the storage directory holds no store.
var errNoStore = errors.New("no socialgate store here")

// errAdminUnreachable means no admin API answered at the address.
var errAdminUnreachable = errors.New("the admin API does not answer")

// adminClient calls the socialgate routes of a running gateway's admin API.
type adminClient struct {
	addr, storage string
}

// adminStatusError is an error response of the admin API.
type adminStatusError struct {
	status  int
	message string
}

func (e *adminStatusError) Error() string { return e.message }

var adminHTTPError = regexp.MustCompile(`(?s)^caddy responded with error: HTTP (\d{3}): (.*)$`)

// do sends method path (under /socialgate) with query q.
func (c *adminClient) do(method, path string, q url.Values) (*http.Response, error) {
	if q == nil {
		q = url.Values{}
	}
	if c.storage != "" {
		q.Set("storage", c.storage)
	}
	uri := "/socialgate" + path
	if len(q) > 0 {
		uri += "?" + q.Encode()
	}
	resp, err := caddycmd.AdminAPIRequest(c.addr, method, uri, nil, nil)
	if err == nil {
		return resp, nil
	}
	m := adminHTTPError.FindStringSubmatch(err.Error())
	if m == nil {
		return nil, fmt.Errorf("%w: %v", errAdminUnreachable, err)
	}
	status, _ := strconv.Atoi(m[1])
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(m[2]), &body) != nil || body.Error == "" {
		// Not socialgate's admin routes: a Caddy without them, or not Caddy.
		return nil, &adminStatusError{status: 0, message: fmt.Sprintf("the admin API at %s has no socialgate routes (HTTP %d): is it this gateway?", c.addr, status)}
	}
	return nil, &adminStatusError{status: status, message: body.Error}
}

// getJSON calls "[METHOD ]path" and decodes the JSON answer into out (nil:
// discard it).
func (c *adminClient) getJSON(path string, q url.Values, out any) error {
	method := http.MethodGet
	if m, p, ok := strings.Cut(path, " "); ok {
		method, path = m, p
	}
	resp, err := c.do(method, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	return nil
}

// fail turns an admin API error into the command's result: exit 1 for a
// missing record (404), exit 2 for anything else.
func (c *adminClient) fail(err error) (int, error) {
	if e, ok := errors.AsType[*adminStatusError](err); ok && e.status == http.StatusNotFound && strings.HasPrefix(e.message, "there is no ") {
		return exitProblem, errors.New(e.message)
	}
	if errors.Is(err, errAdminUnreachable) {
		return exitFailed, fmt.Errorf("%w at %s: %v", errAdminUnreachable, c.addr, err)
	}
	return exitFailed, fmt.Errorf("admin API at %s: %w", c.addr, err)
}

// str returns a JSON string value, "" for anything else.
func str(v any) string {
	s, _ := v.(string)
	return s
}

// msTime reads a JSON number of Unix milliseconds; zero or absent is unset.
func msTime(v any) time.Time {
	f, ok := v.(float64)
	if !ok || f <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(f))
}

// millis formats a JSON number of Unix milliseconds like stamp.
func millis(v any) string { return stamp(msTime(v)) }

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
