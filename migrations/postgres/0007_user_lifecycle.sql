-- User lifecycle: email addresses, users without a password, sign-up per
-- client and client secret rotation with a grace period.
--
-- users.email keeps the address as given; users.email_key its comparison
-- form (lower case, crates/portcullis-domain/src/email.rs), unique, so one
-- address belongs to at most one account. Both are NULL for a user without
-- an address. email_verified_at is when the owner proved they read mail
-- sent there (NULL: not verified); changing the address clears it.
--
-- A user created without a password has password_hash = '' (the column
-- stays NOT NULL: SQLite cannot drop a NOT NULL without rebuilding the
-- table the refresh families reference). No Argon2 hash is empty, so such
-- a user can never sign in until a password is set; the store reads ''
-- back as "no password".
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN email_key TEXT;
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
CREATE UNIQUE INDEX users_email_key_unique ON users (email_key);

-- allow_sign_up: whether POST /account/v1/sign-up may create users for
-- this client (off by default); sign_up_scope: the scopes a user created
-- that way holds (space-delimited, may be empty).
ALTER TABLE clients ADD COLUMN allow_sign_up BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN sign_up_scope TEXT NOT NULL DEFAULT '';
-- Secret rotation: the hash of the secret replaced last, still accepted
-- until prev_secret_expires_at (the grace period); NULL when there is none.
ALTER TABLE clients ADD COLUMN prev_secret_hash BYTEA;
ALTER TABLE clients ADD COLUMN prev_secret_expires_at BIGINT;
