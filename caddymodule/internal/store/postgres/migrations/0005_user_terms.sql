-- The user search index: every term a user is found by (store.UserTerms
-- and the store.AccountTerms of its accounts), as the gateway normalized it
-- (store.SearchKey). source is '' for the user's own terms and an account's
-- id for the account's. The gateway keeps the rows in the transaction that
-- writes the user or the account, and builds them for the users already
-- there when it opens the store (see indexSearch). A search reads the range
-- of terms that start with its prefix: the terms compare bytewise
-- (COLLATE "C"), so the plain btree serves that range, as text_pattern_ops
-- would a LIKE 'prefix%'.
CREATE TABLE user_terms (
	user_id    text NOT NULL REFERENCES users ON DELETE CASCADE,
	term       text COLLATE "C" NOT NULL,
	source     text NOT NULL,
	created_ns bigint NOT NULL,
	PRIMARY KEY (user_id, term, source)
);
CREATE INDEX user_terms_prefix ON user_terms (term) INCLUDE (user_id, created_ns);
