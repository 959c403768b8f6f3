-- The outbox of events (user.created, session.ended, …) and the meta values
-- of the store's consumers (the webhook dispatcher's delivery state).
--
-- Every change writes its events in its own transaction. Event ids grow in
-- commit order: a transaction draws its ids from event_clock as its last
-- statement and holds that row's lock until it commits, so a reader that sees
-- an event sees every event with a smaller id. body is the event's JSON,
-- sealed like provider tokens (a session event carries the session id).
-- Ids compare bytewise (COLLATE "C"), as the gateway orders them.
CREATE TABLE events (
	id         text COLLATE "C" PRIMARY KEY,
	type       text NOT NULL,
	created_ns bigint NOT NULL,
	body       bytea NOT NULL
);

-- One row: the sequence number of the last event, which is the unix-nano
-- time of its commit, or one more than the previous when the clock lags.
CREATE TABLE event_clock (
	one  boolean PRIMARY KEY DEFAULT true CHECK (one),
	last bigint NOT NULL
);
INSERT INTO event_clock (last) VALUES (0);

CREATE TABLE kv (
	name  text PRIMARY KEY,
	value bytea NOT NULL
);
