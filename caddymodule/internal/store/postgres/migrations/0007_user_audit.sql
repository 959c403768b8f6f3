-- The latest audit entries about each user (store.UserAuditKeep of them),
-- for the console's user page: entry is the audit.Entry's JSON. They go
-- with the user.
CREATE TABLE user_audit (
	user_id text NOT NULL REFERENCES users ON DELETE CASCADE,
	at_ns   bigint NOT NULL,
	seq     bigint GENERATED ALWAYS AS IDENTITY,
	entry   json NOT NULL,
	PRIMARY KEY (user_id, at_ns, seq)
);
