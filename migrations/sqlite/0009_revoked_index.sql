-- The clean-up deletes families revoked more than a day ago in chunks, each
-- found by this index instead of a scan of every family. Only revoked
-- families are in it, and a rotation never changes `revoked_at`, so on
-- PostgreSQL a refresh still updates its family row in place (HOT).
CREATE INDEX refresh_families_revoked ON refresh_families (revoked_at) WHERE revoked_at IS NOT NULL;
