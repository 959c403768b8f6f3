package caddymodule

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/postgres"
)

// envPreviousSecret is the environment variable secret-rotate reads when
// --previous-secret is not given.
const envPreviousSecret = "SOCIALGATE_PREVIOUS_SECRET"

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "identity-key-rotate",
		Usage: "[--storage <dir>] [--admin <addr>]",
		Short: "Makes a new key for the identity JWT, published before it signs",
		Long: `
Generates a new signing key for X-Auth-Jwt in keys.json. A running gateway
is told through its admin API: the new key is in
/_auth/.well-known/jwks.json at once and signs identity_key_delay (default
10m) later, so verifiers that cache the JWKS have it before they meet it;
the current key signs meanwhile. The previous two keys stay in the JWKS, so
tokens signed before verify until they expire. With the gateway stopped,
the key is published when it starts. With the PostgreSQL store the keys
derive from its secret: rotate the secret instead (docs/secret-rotation.md).
` + storageHelp,
		CobraFunc: func(cmd *cobra.Command) {
			storageFlag(cmd)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdIdentityKeyRotate)
		},
	})

	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "secret-rotate",
		Usage: "[--dsn <dsn>] [--secret <new secret>] [--previous-secret <old secret>]...",
		Short: "Finishes a rotation of the PostgreSQL store's secret",
		Long: `
Seals every stored value that the previous secrets sealed (provider tokens,
session ids, webhook events) again under the new secret, then tells when
the previous secrets can be removed from the config. A rotation:

  1. Reload every gateway with the new secret first and the old one after
     it: storage postgres { secret <new> <old> }. The new secret's keys
     seal and encode at once and sign after identity_key_delay; the old
     one's still open, decode and verify. (With several gateways, first
     reload every one with secret <old> <new>, then with secret <new> <old>,
     so that none meets a value it cannot open.)
  2. Run this command. It works while gateways serve, and can be stopped
     and run again at any point.
  3. Remove the old secret from the config when it says so, and reload.

--dsn, --secret and --previous-secret default to the DATABASE_URL,
SOCIALGATE_SECRET and SOCIALGATE_PREVIOUS_SECRET environment variables, so
that no secret has to appear on a command line; --previous-secret repeats
for several older secrets.

Exit code 0: every value is sealed under the new secret; 1: some are not
(a gateway still seals under an old secret, or a value opens under none of
the secrets given): nothing is lost, fix what it says and run it again;
2: it could not run (bad arguments, database unreachable, no gateway uses
the new secret yet).
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("dsn", "", "The PostgreSQL connection string (default: $"+envMigrateDSN+")")
			cmd.Flags().String("secret", "", "The new secret, first in the config (default: $"+envMigrateSecret+")")
			cmd.Flags().StringArray("previous-secret", nil, "An old secret, after it in the config (default: $"+envPreviousSecret+")")
			flagErrorsExitTwo(cmd)
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdSecretRotate)
		},
	})
}

func cmdIdentityKeyRotate(fl caddycmd.Flags) (int, error) {
	if fl.NArg() != 0 {
		return exitFailed, errors.New("identity-key-rotate takes no arguments, only flags")
	}
	dir := fl.String("storage")
	var done string
	code, err := withStore(fl, func(*store.Badger) (int, error) {
		if err := keyring.RotateSigningKey(dir); err != nil {
			return exitFailed, fmt.Errorf("storage %s: %w", dir, err)
		}
		done = fmt.Sprintf("storage %s: a new identity key is in %s; the gateway publishes it when it starts and signs with it "+
			"identity_key_delay (default 10m) later; the previous two stay in the JWKS", dir, keyring.FileName)
		return exitOK, nil
	}, func(c *adminClient) (int, error) {
		var out struct {
			NewKey    string `json:"new_key"`
			SignsFrom int64  `json:"signs_from"`
		}
		if err := c.getJSON("POST /identity-keys/rotate", nil, &out); err != nil {
			return c.fail(err)
		}
		done = fmt.Sprintf("new identity key %s: in the running gateway's JWKS now, signing from %s; the previous two stay in the JWKS",
			out.NewKey, stamp(time.UnixMilli(out.SignsFrom)))
		return exitOK, nil
	})
	if err != nil {
		return code, err
	}
	fmt.Println(done)
	return exitOK, nil
}

// rotateOptions are secret-rotate's arguments.
type rotateOptions struct {
	DSN, Secret string
	Previous    []string
}

func cmdSecretRotate(fl caddycmd.Flags) (int, error) {
	if fl.NArg() != 0 {
		return exitFailed, errors.New("secret-rotate takes no arguments, only flags")
	}
	previous, _ := fl.GetStringArray("previous-secret")
	if len(previous) == 0 && os.Getenv(envPreviousSecret) != "" {
		previous = []string{os.Getenv(envPreviousSecret)}
	}
	opts := rotateOptions{
		DSN:      cmp.Or(fl.String("dsn"), os.Getenv(envMigrateDSN)),
		Secret:   cmp.Or(fl.String("secret"), os.Getenv(envMigrateSecret)),
		Previous: previous,
	}
	return rotateSecret(context.Background(), opts, os.Stdout)
}

// rotateSecret runs secret-rotate and prints its outcome to w; it returns
// the command's exit code.
func rotateSecret(ctx context.Context, opts rotateOptions, w io.Writer) (int, error) {
	switch {
	case opts.DSN == "":
		return exitFailed, fmt.Errorf("give the database: --dsn (or $%s)", envMigrateDSN)
	case opts.Secret == "" || len(opts.Previous) == 0:
		return exitFailed, fmt.Errorf("give the new secret (--secret or $%s) and the old one (--previous-secret or $%s)", envMigrateSecret, envPreviousSecret)
	}
	var old [][]byte
	for _, p := range opts.Previous {
		old = append(old, []byte(p))
	}
	keys, err := keyring.FromSecret([]byte(opts.Secret), old...)
	if err != nil {
		return exitFailed, err
	}
	pg, err := postgres.Open(ctx, postgres.Options{DSN: opts.DSN, EncryptionKey: keys.StoreKey, PreviousEncryptionKeys: keys.PreviousStoreKeys, MaxConns: 4})
	if errors.Is(err, postgres.ErrWrongKey) {
		return exitFailed, errors.New("none of the secrets given opens this database: give the secret it runs with as --previous-secret")
	}
	if err != nil {
		return exitFailed, err
	}
	defer pg.Close()
	identity, err := keys.IdentityKeys()
	if err != nil {
		return exitFailed, err
	}
	inUse, ok, err := store.FirstTime(ctx, pg, secretInUsePrefix+assertion.KeyID(&identity[0].PublicKey), time.Time{}, false)
	if err != nil {
		return exitFailed, err
	}
	if !ok {
		return exitFailed, errors.New("no gateway has run with the new secret first yet: reload every gateway with " +
			"secret <new> <old> first (a gateway still sealing under the old secret would undo this run)")
	}
	res, err := pg.Rekey(ctx, postgres.RekeyOptions{SessionsBefore: inUse})
	fmt.Fprintf(w, "sealed again under the new secret: %d provider token sets, %d session ids, %d events\n",
		res.Resealed["external_accounts"], res.Resealed["sessions"], res.Resealed["events"])
	if err != nil {
		return exitFailed, fmt.Errorf("stopped (run it again to go on): %w", err)
	}
	if res.StillPrevious > 0 {
		return exitProblem, fmt.Errorf("%d values were sealed under an old secret while this ran: a gateway still runs "+
			"with it first; reload every gateway with secret <new> <old> and run this again", res.StillPrevious)
	}
	if n := len(res.Unreadable); n > 0 {
		var where []string
		for table, count := range res.Unreadable {
			where = append(where, fmt.Sprintf("%d in %s", count, table))
		}
		return exitProblem, fmt.Errorf("some values open under none of the secrets given (%s): add any older secret still "+
			"in the config as --previous-secret and run this again; storage-check and the gateway's log name the records",
			strings.Join(where, ", "))
	}
	published, err := assertion.Published(ctx, pg, identity[:1], time.Time{}, false)
	if err != nil {
		return exitFailed, err
	}
	printRemovable(w, res, inUse, published[0].Published)
	return exitOK, nil
}

// printRemovable tells when the previous secrets can leave the config:
// what is not stored (cookies, identity tokens, sign-ins in progress) keeps
// needing them until it expires. published is when the new secret's
// identity key was first published.
func printRemovable(w io.Writer, res postgres.RekeyResult, inUse, published time.Time) {
	fmt.Fprintln(w, "every stored value is sealed under the new secret; the database opens with it alone")
	last := time.Now()
	if !published.IsZero() {
		// With the default delay: the new key signs from then, and the
		// previous key's tokens expire within their lifetime after.
		until := published.Add(assertion.DefaultKeyDelay + assertion.DefaultLifetime)
		fmt.Fprintf(w, "identity tokens signed with the previous secret's key verify until %s (with the default identity_key_delay)\n", stamp(until))
		last = later(last, until)
	}
	if res.InFlight > 0 {
		fmt.Fprintf(w, "%d sign-ins in progress may have begun under the previous secret; they end by %s\n", res.InFlight, stamp(res.InFlightUntil))
		last = later(last, res.InFlightUntil)
	}
	if res.SessionsBefore > 0 {
		fmt.Fprintf(w, "%d live sessions began before the new secret was in use (%s): their cookies are signed with the previous "+
			"secret, so removing it signs them out; the last expires at %s\n", res.SessionsBefore, stamp(inUse), stamp(res.SessionsBeforeUntil))
		fmt.Fprintf(w, "the previous secret can be removed now (signing those sessions out), or after %s without signing anyone out\n",
			stamp(later(last, res.SessionsBeforeUntil)))
		return
	}
	fmt.Fprintf(w, "the previous secret can be removed from the config after %s\n", stamp(last))
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
