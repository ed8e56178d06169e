-- DPoP (RFC 9449): sender-constrained tokens.
--
-- refresh_families.dpop_jkt: the RFC 7638 SHA-256 thumbprint (base64url)
-- of the key a public client's sign-in is bound to; every refresh of the
-- family must prove possession of that key (RFC 9449 §5). NULL for a
-- sign-in without DPoP, or by a confidential client (whose refresh tokens
-- are bound to its own authentication). It never changes: rotation keeps
-- the binding.
ALTER TABLE refresh_families ADD COLUMN dpop_jkt TEXT;

-- dpop_bound_access_tokens (RFC 9449 §5.2, the RFC 7591 name): the client
-- must send a DPoP proof with every token request. dpop_nonce_required:
-- its proofs must carry a current server nonce (RFC 9449 §8).
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN dpop_nonce_required BOOLEAN NOT NULL DEFAULT FALSE;

-- Secrets the server makes for itself and every instance shares, by name:
-- 'dpop_nonce' keys the MAC of DPoP nonces, so any instance can check a
-- nonce another issued. Created on first start, never changed.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    secret BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
