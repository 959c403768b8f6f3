-- Active sessions are counted, not scanned (store.ActiveSessions): n is how
-- many sessions expire in the hour (since the Unix epoch), in one of 8
-- stripes of it, so that sign-ins committing at once seldom wait on one
-- row. A trigger keeps the counts in the transaction that inserts, deletes
-- (by any path: a sign-out, a ban, a user's deletion, the cleanup) or moves
-- a session. The count of active sessions is the sum from this hour on;
-- the cleanup deletes the counts of past hours.
CREATE TABLE session_counts (
	hour   bigint NOT NULL,
	stripe smallint NOT NULL,
	n      bigint NOT NULL,
	PRIMARY KEY (hour, stripe)
);

CREATE FUNCTION count_session(expires_ns bigint, id_hash bytea, delta bigint) RETURNS void LANGUAGE sql AS $$
	INSERT INTO session_counts (hour, stripe, n) VALUES (expires_ns / 3600000000000, get_byte(id_hash, 0) % 8, delta)
	ON CONFLICT (hour, stripe) DO UPDATE SET n = session_counts.n + excluded.n
$$;

CREATE FUNCTION sessions_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND OLD.expires_ns / 3600000000000 = NEW.expires_ns / 3600000000000 THEN
		RETURN NULL;
	END IF;
	IF TG_OP IN ('DELETE', 'UPDATE') THEN
		PERFORM count_session(OLD.expires_ns, OLD.id_hash, -1);
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		PERFORM count_session(NEW.expires_ns, NEW.id_hash, 1);
	END IF;
	RETURN NULL;
END
$$;

CREATE TRIGGER sessions_counted AFTER INSERT OR DELETE OR UPDATE OF expires_ns ON sessions
	FOR EACH ROW EXECUTE FUNCTION sessions_counted();

INSERT INTO session_counts (hour, stripe, n)
	SELECT expires_ns / 3600000000000, get_byte(id_hash, 0) % 8, count(*) FROM sessions GROUP BY 1, 2;
