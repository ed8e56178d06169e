-- Portcullis schema, SQLite dialect. Times are integer seconds since the Unix
-- epoch; ids are TEXT. migrations/postgres/0001_initial.sql is the same schema
-- in the PostgreSQL dialect: change both together, never edit an applied one.

CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('active', 'disabled')),
    scope         TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE clients (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    secret_hash   BLOB,
    grant_types   TEXT    NOT NULL,
    scope         TEXT    NOT NULL,
    default_scope TEXT    NOT NULL,
    introspect    BOOLEAN NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('active', 'revoked')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE refresh_families (
    id            TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id     TEXT    NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope         TEXT    NOT NULL,
    device_label  TEXT,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoke_reason TEXT
);
CREATE INDEX refresh_families_user ON refresh_families (user_id);
CREATE INDEX refresh_families_client ON refresh_families (client_id);
CREATE INDEX refresh_families_expires ON refresh_families (expires_at);

CREATE TABLE refresh_tokens (
    id          TEXT    PRIMARY KEY,
    family_id   TEXT    NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    parent_id   TEXT,
    token_hash  BLOB    NOT NULL UNIQUE,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    replaced_by TEXT,
    -- The child token sealed under a key derived from this token, for
    -- answering a retried refresh within the retry window.
    successor   BLOB
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_successor ON refresh_tokens (used_at) WHERE successor IS NOT NULL;

CREATE TABLE signing_keys (
    kid          TEXT    PRIMARY KEY,
    alg          TEXT    NOT NULL,
    public_jwk   TEXT    NOT NULL,
    private_key  BLOB    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('active', 'retired')),
    created_at   INTEGER NOT NULL,
    retire_after INTEGER,
    retired_at   INTEGER
);

CREATE TABLE audit_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    action    TEXT    NOT NULL,
    actor     TEXT,
    client_id TEXT,
    subject   TEXT,
    ip        TEXT,
    detail    TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);

CREATE TABLE throttle_counters (
    key          TEXT    PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
);

CREATE TABLE revocations (
    cursor     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL CHECK (kind IN ('client', 'user', 'family', 'jti')),
    subject    TEXT    NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX revocations_subject ON revocations (kind, subject);
