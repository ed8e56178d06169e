-- The Authorization Challenge Endpoint (draft-ietf-oauth-first-party-apps)
-- and the authorization_code grant with PKCE (RFC 7636).
--
-- auth_sessions: a sign-in whose password was right and that waits for the
-- user's second factor. Only SHA-256 of the `auth_session` value (256
-- random bits) is kept. It lives 5 minutes, counts every try of a code
-- (`attempts`, before the code is checked) and is deleted by the one
-- request that turns it into an authorization code. `account_key` is the
-- username key its failed tries are throttled under.
CREATE TABLE auth_sessions (
    session_hash   BLOB    PRIMARY KEY,
    client_id      TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_key    TEXT    NOT NULL,
    code_challenge TEXT    NOT NULL,
    scope          TEXT    NOT NULL,
    amr            TEXT    NOT NULL,
    sessions_epoch INTEGER NOT NULL,
    dpop_jkt       TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX auth_sessions_expires ON auth_sessions (expires_at);

-- authorization_codes: SHA-256 of each code (256 random bits), bound to
-- its client, PKCE challenge (S256), user, scope, the way the user signed
-- in (amr), the user's sessions_epoch and the DPoP key of the challenge.
-- A code lives 60 seconds and is used once (`used_at`, set by one
-- conditional UPDATE). The row stays a while after use: a second use is
-- recorded (`replayed_at`) and revokes the family the first use started
-- (`family_id`), RFC 6749 §4.1.2.
CREATE TABLE authorization_codes (
    code_hash      BLOB    PRIMARY KEY,
    client_id      TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_challenge TEXT    NOT NULL,
    scope          TEXT    NOT NULL,
    amr            TEXT    NOT NULL,
    sessions_epoch INTEGER NOT NULL,
    dpop_jkt       TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    replayed_at    INTEGER,
    family_id      TEXT
);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);
