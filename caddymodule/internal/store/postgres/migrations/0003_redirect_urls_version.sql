-- Every native sign-in start checks its redirect URL against the allowlist.
-- Gateways keep the allowlist compiled in memory and read it again only when
-- redirect_urls_version moved: a trigger moves it with every row any gateway
-- (or an import, or an operator) inserts, updates or deletes, in the same
-- transaction, so the next check anywhere sees the change.
CREATE TABLE redirect_urls_version (
	one     boolean PRIMARY KEY DEFAULT true CHECK (one),
	version bigint NOT NULL
);
INSERT INTO redirect_urls_version (version) VALUES (0);

CREATE FUNCTION redirect_urls_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE redirect_urls_version SET version = version + 1;
	RETURN NULL;
END
$$;

CREATE TRIGGER redirect_urls_changed AFTER INSERT OR UPDATE OR DELETE ON redirect_urls
	FOR EACH ROW EXECUTE FUNCTION redirect_urls_changed();

-- The API pages the list oldest first.
CREATE INDEX redirect_urls_oldest_first ON redirect_urls (created_ns, id);
