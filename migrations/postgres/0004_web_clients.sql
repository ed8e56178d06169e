-- Browser clients: the origins (scheme://host[:port]) whose pages may use
-- the cookie endpoints (/web/...), space-delimited; empty for every other
-- client. A client with origins gets its refresh token only as an HttpOnly
-- cookie.
ALTER TABLE clients ADD COLUMN web_origins TEXT NOT NULL DEFAULT '';
