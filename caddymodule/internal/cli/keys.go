package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func runIdentityKeyRotate(ctx context.Context, c *call) error {
	if err := c.noArgs(); err != nil {
		return err
	}
	return withConn(ctx, c, func(cn *conn) error {
		rot, err := cn.RotateIdentityKey(ctx)
		if err != nil {
			return err
		}
		if rot.Published {
			fmt.Fprintf(c.Stdout, "new identity key %s: in the running gateway's JWKS now, signing from %s; the previous two stay in the JWKS\n",
				rot.NewKey, millis(rot.SignsFrom))
			return nil
		}
		fmt.Fprintf(c.Stdout, "new identity key %s in keys.json: the gateway publishes it when it starts and signs with it "+
			"identity_key_delay (default 10m) later; the previous two stay in the JWKS\n", rot.NewKey)
		return nil
	})
}

func runSecretRotate(ctx context.Context, c *call) error {
	if err := c.noArgs(); err != nil {
		return err
	}
	dsn, secret := c.postgresFlags()
	previous, _ := c.flags.GetStringArray("previous-secret")
	if len(previous) == 0 && c.Getenv(envPreviousSecret) != "" {
		previous = []string{c.Getenv(envPreviousSecret)}
	}
	switch {
	case dsn == "":
		return fmt.Errorf("give the database: --dsn (or $%s)", envDSN)
	case secret == "" || len(previous) == 0:
		return fmt.Errorf("give the new secret (--secret or $%s) and the old one (--previous-secret or $%s)", envSecret, envPreviousSecret)
	}
	secrets := [][]byte{[]byte(secret)}
	for _, p := range previous {
		secrets = append(secrets, []byte(p))
	}
	opened, err := ops.Open(ctx, ops.Location{DSN: dsn, Secrets: secrets, MaxConns: 4})
	if errors.Is(err, ops.ErrWrongSecret) {
		return errors.New("none of the secrets given opens this database: give the secret it runs with as --previous-secret")
	}
	if err != nil {
		return err
	}
	defer opened.Close()
	c.say("store: %s", opened.Name)
	r, err := ops.RotateSecret(ctx, opened)
	if errors.Is(err, ops.ErrSecretNotInUse) {
		return err
	}
	fmt.Fprintf(c.Stdout, "sealed again under the new secret: %s, %s, %s\n", plural(r.Resealed["external_accounts"], "provider token set"),
		plural(r.Resealed["sessions"], "session id"), plural(r.Resealed["events"], "event"))
	switch {
	case err != nil:
		return fmt.Errorf("stopped (run it again to go on): %w", err)
	case r.StillPrevious > 0:
		return problemf("%s still under an old secret when this ended: a gateway still runs with it first; "+
			"reload every gateway with secret <new> <old> and run this again", plural(r.StillPrevious, "value"))
	case len(r.Unreadable) > 0:
		var where []string
		for table, count := range r.Unreadable {
			where = append(where, fmt.Sprintf("%d in %s", count, table))
		}
		sort.Strings(where)
		return problemf("some values open under none of the secrets given (%s): add any older secret still in the config as "+
			"--previous-secret and run this again; storage-check and the gateway's log name the records", strings.Join(where, ", "))
	}
	printRemovable(c, r)
	return nil
}

// printRemovable tells when the previous secrets can leave the config:
// what is not stored (cookies, identity tokens, sign-ins in progress) keeps
// needing them until it expires.
func printRemovable(c *call, r ops.SecretRotation) {
	w := c.Stdout
	fmt.Fprintln(w, "every stored value is sealed under the new secret; the database opens with it alone")
	if !r.TokensUntil.IsZero() {
		fmt.Fprintf(w, "identity tokens signed with the previous secret's key verify until %s (with the default identity_key_delay)\n", stamp(r.TokensUntil))
	}
	if r.InFlight > 0 {
		fmt.Fprintf(w, "%s in progress may have begun under the previous secret; they end by %s\n", plural(r.InFlight, "sign-in"), stamp(r.InFlightUntil))
	}
	if r.SessionsBefore > 0 {
		fmt.Fprintf(w, "%s before the new secret was in use (%s): their cookies are signed with the previous "+
			"secret, so removing it signs them out; the last expires at %s\n", plural(r.SessionsBefore, "live session")+" began",
			stamp(r.InUse), stamp(r.SessionsBeforeUntil))
		fmt.Fprintf(w, "the previous secret can be removed now (signing those sessions out), or after %s without signing anyone out\n",
			stamp(r.RemovableAfter))
		return
	}
	fmt.Fprintf(w, "the previous secret can be removed from the config after %s\n", stamp(r.RemovableAfter))
}

func runWebhookReplay(ctx context.Context, c *call) error {
	args, err := c.argsOnly(1, "exactly one webhook endpoint name")
	if err != nil {
		return err
	}
	since, _ := c.flags.GetString("since")
	event, _ := c.flags.GetString("event")
	var from time.Time
	switch {
	case (since == "") == (event == ""):
		return errors.New("give exactly one of --since and --event")
	case event != "":
		if _, ok := store.EventTime(event); !ok {
			return fmt.Errorf("--event %s is not an event id (evt_…)", event)
		}
	default:
		if from, err = replayStart(since, c.Now()); err != nil {
			return err
		}
	}
	c.gatewayOnly = true // it holds the webhook configuration
	return withConn(ctx, c, func(cn *conn) error {
		start, err := cn.ReplayWebhook(ctx, args[0], from, event)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.Stdout, "webhook %s: the events from %s on are being sent again\n", args[0], stamp(start))
		return nil
	})
}

// replayStart reads --since: a duration before now, or an RFC 3339 time.
func replayStart(since string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(since); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, since); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %s is neither a duration (2h) nor an RFC 3339 time (2026-11-27T09:00:00Z)", since)
}
