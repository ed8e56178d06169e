-- One-time codes sent by mail: email verification and password reset.
-- Codes are short (8 characters), so only a salted SHA-256 of each is kept,
-- a code lives 15 minutes, is deleted when used, and is deleted after its
-- fifth wrong try (`attempts` counts every try, right ones too). A user has
-- at most one live code per purpose: a new one replaces the old.
CREATE TABLE one_time_codes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    salt BLOB NOT NULL,
    code_hash BLOB NOT NULL,
    -- The address a verification code was sent to (it becomes verified).
    email TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX one_time_codes_user_purpose ON one_time_codes (user_id, purpose);
CREATE INDEX one_time_codes_expires ON one_time_codes (expires_at);
