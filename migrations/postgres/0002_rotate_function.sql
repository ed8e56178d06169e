-- A refresh-token rotation in one round trip. Same rules as the SQLite
-- path (crates/portcullis-store/src/refresh.rs), in one statement's
-- transaction:
-- 1. lock the presented token's family row (FOR UPDATE re-reads it after a
--    concurrent revoke commits, and takes locks in the same order as a
--    revoke: family, then tokens);
-- 2. require it to be the client's, live and unexpired;
-- 3. consume the token only while it is unused and unexpired (of N
--    concurrent callers exactly one matches);
-- 4. write the child, the family's last use, the grandparent's cleared
--    successor and the audit event.
-- Returns one row (parent token, family, child token columns, in the
-- store's column order) when the token was consumed, none otherwise; when
-- none is returned nothing was written.
CREATE FUNCTION portcullis_rotate_refresh(
    p_now              BIGINT,
    p_child_id         TEXT,
    p_presented        BYTEA,
    p_client_id        TEXT,
    p_successor        BYTEA,
    p_child_hash       BYTEA,
    p_child_expires_at BIGINT,
    p_audit_action     TEXT,
    p_audit_actor      TEXT,
    p_audit_client_id  TEXT,
    p_audit_subject    TEXT,
    p_audit_ip         TEXT,
    p_audit_detail     TEXT
) RETURNS TABLE (
    p_id TEXT, p_family_id TEXT, p_parent_id TEXT, p_token_hash BYTEA, p_issued_at BIGINT, p_expires_at BIGINT,
    p_used_at BIGINT, p_replaced_by TEXT, p_successor_out BYTEA,
    f_id TEXT, f_user_id TEXT, f_client_id TEXT, f_scope TEXT, f_device_label TEXT, f_created_at BIGINT,
    f_last_used_at BIGINT, f_expires_at BIGINT, f_revoked_at BIGINT, f_revoke_reason TEXT,
    c_id TEXT, c_family_id TEXT, c_parent_id TEXT, c_token_hash BYTEA, c_issued_at BIGINT, c_expires_at BIGINT,
    c_used_at BIGINT, c_replaced_by TEXT, c_successor BYTEA
) LANGUAGE plpgsql AS $$
DECLARE
    fam refresh_families%ROWTYPE;
    par refresh_tokens%ROWTYPE;
    chi refresh_tokens%ROWTYPE;
BEGIN
    SELECT f.* INTO fam FROM refresh_families f
     WHERE f.id = (SELECT t.family_id FROM refresh_tokens t WHERE t.token_hash = p_presented)
       FOR UPDATE;
    IF NOT FOUND OR fam.client_id <> p_client_id OR fam.revoked_at IS NOT NULL OR fam.expires_at <= p_now THEN
        RETURN;
    END IF;

    UPDATE refresh_tokens t SET used_at = p_now, replaced_by = p_child_id, successor = p_successor
     WHERE t.token_hash = p_presented AND t.family_id = fam.id AND t.used_at IS NULL AND t.expires_at > p_now
    RETURNING t.* INTO par;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    UPDATE refresh_families f SET last_used_at = p_now WHERE f.id = fam.id RETURNING f.* INTO fam;

    INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, expires_at)
    VALUES (p_child_id, fam.id, par.id, p_child_hash, p_now, LEAST(p_child_expires_at, fam.expires_at))
    RETURNING * INTO chi;

    IF par.parent_id IS NOT NULL THEN
        UPDATE refresh_tokens t SET successor = NULL WHERE t.id = par.parent_id;
    END IF;

    IF p_audit_action IS NOT NULL THEN
        INSERT INTO audit_events (at, action, actor, client_id, subject, ip, detail)
        VALUES (p_now, p_audit_action, p_audit_actor, p_audit_client_id, p_audit_subject, p_audit_ip, p_audit_detail);
    END IF;

    RETURN QUERY SELECT
        par.id, par.family_id, par.parent_id, par.token_hash, par.issued_at, par.expires_at,
        par.used_at, par.replaced_by, par.successor,
        fam.id, fam.user_id, fam.client_id, fam.scope, fam.device_label, fam.created_at,
        fam.last_used_at, fam.expires_at, fam.revoked_at, fam.revoke_reason,
        chi.id, chi.family_id, chi.parent_id, chi.token_hash, chi.issued_at, chi.expires_at,
        chi.used_at, chi.replaced_by, chi.successor;
END;
$$;
