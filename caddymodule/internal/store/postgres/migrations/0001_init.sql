-- The first schema of socialgate's PostgreSQL store.
--
-- Each table mirrors a Badger record: the record itself is a json column
-- (exact Go values: times to the nanosecond), and what is looked up, ordered
-- or constrained is a column of its own. Times that order or expire rows are
-- unix nanoseconds, so expiry compares exactly as the gateway's clock does.
-- Secrets never reach the database in plaintext: provider tokens and
-- ephemeral values are sealed with AES-256-GCM by the gateway, and session
-- and ephemeral ids (bearer secrets) are stored as their SHA-256.

-- meta holds store-wide values; key_check is a sealed constant that tells a
-- gateway with the wrong encryption key before it writes anything.
CREATE TABLE meta (
	name  text PRIMARY KEY,
	value bytea NOT NULL
);

CREATE TABLE users (
	id         text PRIMARY KEY,
	created_ns bigint NOT NULL,
	record     json NOT NULL
);
CREATE INDEX users_newest_first ON users (created_ns DESC, id);

-- Every address of a user (verified or not), lower-cased by the gateway.
-- holder marks the one user a verified address links sign-ins to.
CREATE TABLE user_emails (
	email_lower text NOT NULL,
	user_id     text NOT NULL REFERENCES users ON DELETE CASCADE,
	holder      boolean NOT NULL DEFAULT false,
	PRIMARY KEY (email_lower, user_id)
);
CREATE UNIQUE INDEX user_emails_one_holder ON user_emails (email_lower) WHERE holder;
CREATE INDEX user_emails_user ON user_emails (user_id);

-- record is the account without its tokens; tokens is the sealed token set.
CREATE TABLE external_accounts (
	id         text PRIMARY KEY,
	user_id    text NOT NULL REFERENCES users ON DELETE CASCADE,
	issuer     text NOT NULL,
	subject    text NOT NULL,
	created_ns bigint NOT NULL,
	record     json NOT NULL,
	tokens     bytea NOT NULL,
	CONSTRAINT external_accounts_identity UNIQUE (issuer, subject)
);
CREATE INDEX external_accounts_user ON external_accounts (user_id, created_ns, id);

-- record is the session without its id; id_sealed is the id, sealed.
CREATE TABLE sessions (
	id_hash    bytea PRIMARY KEY,
	id_sealed  bytea NOT NULL,
	user_id    text NOT NULL REFERENCES users ON DELETE CASCADE,
	expires_ns bigint NOT NULL,
	record     json NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_ns);

CREATE TABLE ephemeral (
	kind       text NOT NULL,
	id_hash    bytea NOT NULL,
	expires_ns bigint NOT NULL,
	value      bytea NOT NULL,
	PRIMARY KEY (kind, id_hash)
);
CREATE INDEX ephemeral_expiry ON ephemeral (expires_ns);

CREATE TABLE redirect_urls (
	id         text PRIMARY KEY,
	url        text NOT NULL UNIQUE,
	created_ns bigint NOT NULL,
	record     json NOT NULL
);
