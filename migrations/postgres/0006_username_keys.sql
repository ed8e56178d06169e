-- Usernames are compared in one form (RFC 8265 UsernameCaseMapped): width
-- mapping, lower case, NFC. `username` keeps the name as typed, for
-- display; `username_key` holds the comparison form and is unique, so
-- `alice`, `Alice` and fullwidth `ａｌｉｃｅ` are one account.
--
-- SQL cannot compute the key. The server checks every stored name before
-- applying this migration (stopping, with nothing changed, on a name the
-- rules refuse or on names that would become one account) and fills the
-- column right after it (crates/portcullis-store/src/usernames.rs). A row
-- whose key is still NULL is keyed at the next start.
ALTER TABLE users ADD COLUMN username_key TEXT;
CREATE UNIQUE INDEX users_key_unique ON users (username_key);
