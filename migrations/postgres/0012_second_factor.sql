-- A second factor: TOTP (RFC 6238) and single-use recovery codes.
--
-- user_totp: one authenticator per user. `secret` is the 20-byte shared
-- secret, sealed under the key-encryption key when one is configured
-- (as signing keys are). `confirmed_at` is NULL while enrolment waits for
-- its first code; only a confirmed authenticator is asked for at sign-in.
-- `last_step` is the latest 30-second step whose code was accepted: a
-- code is accepted only for a later step, so each is used once.
CREATE TABLE user_totp (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret BYTEA NOT NULL,
    confirmed_at BIGINT,
    last_step BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

-- Recovery codes: SHA-256 of each (the codes carry 80 random bits), used
-- once (`used_at`). Regenerating replaces the user's whole set.
CREATE TABLE recovery_codes (
    code_hash BYTEA PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    used_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- How the sign-in of a family was authenticated (RFC 8176 `amr` values,
-- space-separated, e.g. 'pwd otp mfa'): every access token of the family
-- carries it. NULL for families started before this migration ('pwd').
ALTER TABLE refresh_families ADD COLUMN amr TEXT;

-- First-party clients may use the Authorization Challenge Endpoint
-- (draft-ietf-oauth-first-party-apps). mfa_required: users without a
-- second factor cannot sign in through the client.
ALTER TABLE clients ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN mfa_required BOOLEAN NOT NULL DEFAULT FALSE;
