-- Constant state per sign-in. A family holds its refresh token state
-- itself: the current token (hash, generation, idle expiry), the previous
-- one (hash, when it was rotated, its sealed successor for the retry
-- window), and the hash of its selector, the part of every refresh token
-- of the family that finds the family. A rotation rewrites these columns
-- and adds no row; none of them is indexed except the selector, which a
-- rotation does not change, so PostgreSQL updates the row in place (HOT)
-- when its page has room.
--
-- refresh_tokens keeps the rows of tokens issued before this migration,
-- so that they still refresh (once: the family then moves to the new
-- form) or, if spent, still set off reuse detection, until they expire;
-- the periodic clean-up then deletes them. Nothing inserts into it any
-- more: a trigger refuses inserts, so an instance of an earlier version
-- still running against this database fails loudly instead of issuing
-- tokens this version would not see. The earlier versions' rotation
-- function goes for the same reason.
ALTER TABLE refresh_families
    ADD COLUMN selector_hash BYTEA,
    ADD COLUMN generation BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN token_hash BYTEA,
    ADD COLUMN token_expires_at BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN prev_hash BYTEA,
    ADD COLUMN prev_used_at BIGINT,
    ADD COLUMN successor BYTEA;
CREATE UNIQUE INDEX refresh_families_selector ON refresh_families (selector_hash);
ALTER TABLE refresh_families SET (fillfactor = 80);

-- Each family's unspent token becomes its current token (generation 0),
-- and that token's parent its previous one.
UPDATE refresh_families AS f SET token_hash = t.token_hash, token_expires_at = t.expires_at
FROM refresh_tokens AS t
WHERE t.family_id = f.id AND t.used_at IS NULL;
UPDATE refresh_families AS f SET prev_hash = p.token_hash, prev_used_at = p.used_at, successor = CASE WHEN f.revoked_at IS NULL THEN p.successor END
FROM refresh_tokens AS t JOIN refresh_tokens AS p ON p.id = t.parent_id
WHERE t.family_id = f.id AND t.used_at IS NULL;
UPDATE refresh_tokens SET successor = NULL WHERE successor IS NOT NULL;
DROP INDEX refresh_tokens_issued;
CREATE INDEX refresh_tokens_expires ON refresh_tokens (expires_at);

DROP FUNCTION IF EXISTS portcullis_rotate_refresh;

CREATE FUNCTION portcullis_refresh_tokens_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refresh_tokens takes no new rows since migration 5: upgrade every Portcullis instance';
END;
$$;
CREATE TRIGGER refresh_tokens_frozen BEFORE INSERT ON refresh_tokens
    FOR EACH ROW EXECUTE FUNCTION portcullis_refresh_tokens_frozen();
