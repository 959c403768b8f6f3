-- The values unique among users that the backend API sets (kind username,
-- lower-cased by the gateway, and external_id), each naming its user.
CREATE TABLE user_handles (
	kind    text NOT NULL,
	value   text NOT NULL,
	user_id text NOT NULL REFERENCES users ON DELETE CASCADE,
	PRIMARY KEY (kind, value)
);
CREATE INDEX user_handles_user ON user_handles (user_id);
