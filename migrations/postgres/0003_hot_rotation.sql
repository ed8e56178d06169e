-- Rotations update a token twice (consumed; later its sealed successor is
-- cleared) and no indexed column changes either time, so PostgreSQL can
-- update in place (HOT: no new index entries) when the page has room.
-- The partial index on used_at changed with every rotation and defeated
-- that; the periodic clean-up of sealed successors now finds them through
-- the children issued since its last run instead.
DROP INDEX refresh_tokens_successor;
CREATE INDEX refresh_tokens_issued ON refresh_tokens (issued_at, parent_id);
ALTER TABLE refresh_tokens SET (fillfactor = 80);
