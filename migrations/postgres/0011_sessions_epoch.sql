-- users.sessions_epoch counts the times every sign-in of the user was
-- ended at once: "sign out everywhere" (by the user or an admin), a
-- password reset, an admin setting the password, a disable. Each of those
-- adds one in the transaction that revokes the families. A sign-in reads
-- it with the user, before the password check, and starts its family only
-- if it is unchanged, so a sign-in whose check began before such an end is
-- refused, and one that began after it is not, within the same second too.
ALTER TABLE users ADD COLUMN sessions_epoch BIGINT NOT NULL DEFAULT 0;
