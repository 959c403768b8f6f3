package cli

import "github.com/spf13/pflag"

// Description is the help of a socialgate binary, above its commands.
const Description = `socialgate is Caddy with the socialgate authentication gateway built in:
sign-in with OAuth2 and OpenID Connect providers, linked accounts, identity
headers for the apps behind it, provider tokens, a backend API, webhooks.

Run it with a Caddyfile, as Caddy:

	$ socialgate run --config Caddyfile

The socialgate commands operate on the gateway's store (users, sessions,
linked accounts, backups, keys), whether the gateway runs or not; each
says which store it looked at. Their exit codes: 0 done; 1 something was
found wrong (no such record, invariant violations, conflicts); 2 nothing
was done (bad arguments, no store, the gateway's admin API does not
answer).

Caddy's own commands work as in Caddy: https://caddyserver.com/docs/command-line`

// Commands are the operator commands.
var Commands = []Command{{
	Name:  "storage-check",
	Usage: "[--storage <dir>] [--admin <addr>] [--progress]",
	Short: "Checks the socialgate store's invariants",
	Long: `
Reads the whole socialgate store in one snapshot and checks its invariants:
every index entry points at its record and every record has its index
entries, each verified email is vouched for by an account that asserts it,
and the user count matches the users. Each violation is printed on its own
line. Both stores are checked, Badger and PostgreSQL.
` + storeHelp("invariant violations were found"),
	Example: `  socialgate storage-check
  socialgate storage-check --storage /var/lib/socialgate
  socialgate storage-check --admin localhost:2019   # a gateway on PostgreSQL`,
	flags: func(fs *pflag.FlagSet, env *Env) { storeFlags(fs, env); progressFlag(fs, env) },
	run:   runStorageCheck,
}, {
	Name:  "users",
	Usage: "[--storage <dir>] [--admin <addr>] [--email <address>] [--limit <n>] [--offset <n>] [--json]",
	Short: "Lists socialgate users",
	Long: `
Lists users, newest first: id, name, primary email and creation time, as a
table, or with --json as JSON lines of the backend API's user objects
(their external accounts also carry provider_name, issuer and
email_verified). --email lists the users holding that address (any case).
` + storeHelp(""),
	Example: `  socialgate users
  socialgate users --email ada@example.com
  socialgate users --limit 500 --offset 500 --json | jq -r .id`,
	flags: func(fs *pflag.FlagSet, env *Env) {
		storeFlags(fs, env)
		fs.String("email", "", "Only users holding this email address")
		fs.Int("limit", 100, "Maximum number of users to list (1-500)")
		fs.Int("offset", 0, "Number of users to skip")
		fs.Bool("json", false, "Print JSON lines")
	},
	run: runUsers,
}, {
	Name:  "user",
	Usage: "[--storage <dir>] [--admin <addr>] [--json] <user id>",
	Short: "Shows a socialgate user with its accounts and sessions",
	Long: `
Shows one user with its linked accounts (provider, issuer and subject: the
identity) and live sessions. Token material is never shown.
` + storeHelp("there is no such user"),
	Example: `  socialgate user user_3zd5xk2mq4vgbfwnhkqy2rmhje
  socialgate user --json user_3zd5xk2mq4vgbfwnhkqy2rmhje`,
	flags: func(fs *pflag.FlagSet, env *Env) {
		storeFlags(fs, env)
		fs.Bool("json", false, "Print JSON: {user, sessions}, shaped like the backend API's objects")
	},
	run: runUser,
}, {
	Name:  "user-delete",
	Usage: "[--storage <dir>] [--admin <addr>] <user id>",
	Short: "Deletes a socialgate user",
	Long: `
Deletes a user with its linked accounts and sessions, in one transaction.
Tokens at the providers are not revoked: this command does not know the
providers. The backend API's DELETE /users/{id} on a running gateway
revokes them; this command does not, offline or through the admin API.
` + storeHelp("there is no such user"),
	Example: `  socialgate user-delete user_3zd5xk2mq4vgbfwnhkqy2rmhje`,
	flags:   storeFlags,
	run:     runUserDelete,
}, {
	Name:  "session-revoke",
	Usage: "[--storage <dir>] [--admin <addr>] <session id>",
	Short: "Ends a socialgate session",
	Long: `
Ends a session: its cookie or session token stops working at the next
request, on every gateway of the store.
` + storeHelp("there is no such live session"),
	Example: `  socialgate session-revoke sess_4nq2b7c5xw3jzhfy6mdk8tparu`,
	flags:   storeFlags,
	run:     runSessionRevoke,
}, {
	Name:  "account-disconnect",
	Usage: "[--storage <dir>] [--admin <addr>] <user id> <external account id>",
	Short: "Unlinks an external account from a socialgate user",
	Long: `
Unlinks one external account (eac_…) from its user, in one transaction: the
sessions signed in through it end, and an email address only that account
vouched for becomes unverified (the sessions that show it go on without
it). Tokens at the provider are not revoked.
` + storeHelp("the user has no such account"),
	Example: `  socialgate account-disconnect user_3zd5xk2mq4vgbfwnhkqy2rmhje eac_2w6hy3kq9v4tnb7xjzdm5cpfre`,
	flags:   storeFlags,
	run:     runAccountDisconnect,
}, {
	Name:  "backup",
	Usage: "[--storage <dir>] [--admin <addr>] --output <file> [--progress]",
	Short: "Backs up the socialgate store in Badger's backup format",
	Long: `
Writes a full backup of a Badger store to --output ("-" for standard
output), in Badger's own backup format, from one snapshot. It works online
too: a running gateway streams it through the admin API while it serves.
The backup holds the records decrypted, provider tokens included: keep it as
secret as keys.json. Restore it with "socialgate restore", which needs the
store's keys.json: copy keys.json along with the backup. PostgreSQL stores
are backed up with pg_dump.
` + storeHelp(""),
	Example: `  socialgate backup --output /var/backups/socialgate-$(date +%F).bak
  socialgate backup --output - | gpg --encrypt -r ops@example.com > sg.bak.gpg`,
	flags: func(fs *pflag.FlagSet, env *Env) {
		storeFlags(fs, env)
		progressFlag(fs, env)
		fs.String("output", "", "The backup file to write (\"-\": standard output)")
	},
	run: runBackup,
}, {
	Name:  "restore",
	Usage: "--storage <dir> --input <file> [--progress]",
	Short: "Restores a socialgate backup into a new store (offline)",
	Long: `
Loads a backup written by "socialgate backup" into a new Badger store in
--storage. The directory must hold the keys.json of the store that was
backed up (copy it there first) and nothing else: restore never merges into
a store, and never touches a store a gateway is using. Point the gateway's
storage option at the directory afterwards. The restored store is checked.

Exit codes:
  0  restored
  1  the restored store has invariant violations
  2  nothing was restored`,
	Example: `  mkdir /var/lib/socialgate-new && cp /var/lib/socialgate/keys.json /var/lib/socialgate-new/
  socialgate restore --storage /var/lib/socialgate-new --input sg.bak`,
	flags: func(fs *pflag.FlagSet, env *Env) {
		fs.String("storage", env.DefaultStorage, "The new store's directory, holding only the backed-up store's keys.json")
		fs.String("input", "", "The backup file to read (\"-\": standard input)")
		progressFlag(fs, env)
	},
	run: runRestore,
}, {
	Name:  "storage-migrate",
	Usage: "--from badger:<dir>|postgres --to postgres|badger:<dir> [--dsn <dsn>] [--secret <secret>] [--progress]",
	Short: "Copies the socialgate users between the Badger and PostgreSQL stores",
	Long: `
Copies users with their linked accounts (provider tokens included) and the
native redirect URLs from one store to the other, keeping every id and
timestamp, so API clients that stored user ids keep working.

Sessions are NOT migrated, and everyone signs in again after the switch: a
Badger store's cookie and identity-token keys live in its keys.json, the
PostgreSQL store's derive from the secret (storage postgres { secret … }),
so a session cookie of one cannot be read by the other. Pending sign-in
flows, the webhook outbox and delivery state are not migrated either.

--dsn and --secret are the storage postgres options (default: the
DATABASE_URL and SOCIALGATE_SECRET environment variables); the secret must
be the one the gateways will run with, since provider tokens are encrypted
under a key derived from it. A Badger target directory is created with a
new keys.json when it does not exist.

The Badger store must not be in use: stop the gateway first (Badger locks
its directory, and the command then fails with exit code 2). The PostgreSQL
side may stay in use.

Re-running is safe: a user or redirect URL whose id exists in the target is
skipped, so an interrupted migration is finished by running it again. The
counts of migrated and skipped records are printed.

Exit codes:
  0  everything was copied or was there already
  1  some records conflict with different records of the target (an
     identity or a redirect URL recorded under another id): each is
     printed and the rest is copied
  2  the migration could not run or stopped (bad arguments, store in use,
     database unreachable, wrong secret): run it again once fixed`,
	Example: `  DATABASE_URL=postgres://… SOCIALGATE_SECRET=… \
    socialgate storage-migrate --from badger:/var/lib/socialgate --to postgres
  socialgate storage-migrate --from postgres --to badger:/var/lib/socialgate-new --dsn postgres://… --secret …`,
	flags: func(fs *pflag.FlagSet, env *Env) {
		fs.String("from", "", "The source store: badger:<dir> or postgres")
		fs.String("to", "", "The target store: postgres or badger:<dir>")
		fs.String("dsn", "", "The PostgreSQL connection string (default: $"+envDSN+")")
		fs.String("secret", "", "The storage postgres secret, at least 32 characters (default: $"+envSecret+")")
		progressFlag(fs, env)
	},
	run: runStorageMigrate,
}, {
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
` + storeHelp(""),
	Example: `  socialgate identity-key-rotate
  socialgate identity-key-rotate --storage /var/lib/socialgate --admin localhost:2019`,
	flags: storeFlags,
	run:   runIdentityKeyRotate,
}, {
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

Exit codes:
  0  every value is sealed under the new secret
  1  some are not (a gateway still seals under an old secret, or a value
     opens under none of the secrets given): nothing is lost, fix what it
     says and run it again
  2  it could not run (bad arguments, database unreachable, no gateway
     uses the new secret yet)`,
	Example: `  DATABASE_URL=postgres://… SOCIALGATE_SECRET=<new> SOCIALGATE_PREVIOUS_SECRET=<old> socialgate secret-rotate`,
	flags: func(fs *pflag.FlagSet, env *Env) {
		fs.String("dsn", "", "The PostgreSQL connection string (default: $"+envDSN+")")
		fs.String("secret", "", "The new secret, first in the config (default: $"+envSecret+")")
		fs.StringArray("previous-secret", nil, "An old secret, after it in the config (default: $"+envPreviousSecret+")")
	},
	run: runSecretRotate,
}, {
	Name:  "webhook-replay",
	Usage: "[--admin <addr>] [--storage <dir>] (--since <duration|time> | --event <evt_…>) <endpoint>",
	Short: "Sends a webhook endpoint its events again",
	Long: `
Moves a webhook endpoint's position in the event outbox back: the running
gateway sends it again, in order, every event it wants from --since (a
duration ago, like 2h, or an RFC 3339 time) or from --event (an event id,
evt_…, from the API's recent_failures), then the events after them. Each
keeps its webhook-id. Only events within the endpoint's retain (default
24h) can be replayed.

The running gateway holds the webhook configuration, so this command always
asks it, through Caddy's admin API at --admin (default localhost:2019);
--storage names the store when the gateway has several.

Exit codes:
  0  the replay is under way
  1  the running configuration has no such endpoint
  2  anything else (bad arguments, the admin API does not answer, events
     no longer kept)`,
	Example: `  socialgate webhook-replay --since 2h billing
  socialgate webhook-replay --event evt_2b8x1m0v7c3k9q4w billing`,
	flags: func(fs *pflag.FlagSet, env *Env) {
		storeFlags(fs, env)
		fs.String("since", "", "Replay the events from this long ago (2h) or from this time (RFC 3339)")
		fs.String("event", "", "Replay from this event (evt_…)")
	},
	run: runWebhookReplay,
}}
