-- The periodic clean-up of sealed successors finds them through the
-- children issued since its last run (see migrations/postgres/0003, where
-- dropping the partial index lets rotations update rows in place).
DROP INDEX refresh_tokens_successor;
CREATE INDEX refresh_tokens_issued ON refresh_tokens (issued_at, parent_id);
