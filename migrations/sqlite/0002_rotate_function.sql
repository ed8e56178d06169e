-- PostgreSQL adds a function that rotates a refresh token in one round
-- trip. SQLite runs in-process, so it needs no function: its rotation is
-- the same statements, group-committed by the one writer
-- (crates/portcullis-store/src/group_commit.rs). This migration keeps both
-- backends' migration lists in step.
SELECT 1;
