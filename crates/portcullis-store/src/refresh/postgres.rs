//! A rotation on PostgreSQL: one statement, one round trip.
//!
//! The statement is a chain of data-modifying CTEs in the statement's own
//! transaction:
//! 1. `locked` takes the presented token's family row lock (`FOR UPDATE`),
//!    in the same order as a revoke (family, then tokens). When a revoke
//!    holds the row, it waits, then reads the row as the revoke committed
//!    it;
//! 2. `consumed` is the shared conditional write ([`consume_sql`]) against
//!    that locked row: of N concurrent callers exactly one consumes the
//!    token, since PostgreSQL re-checks `used_at IS NULL` against a row a
//!    concurrent writer committed;
//! 3. `touched`, `child`, `cleared` and `audited` write the family's last
//!    use, the child (its idle expiry capped at the family's), the
//!    grandparent's cleared successor and the audit event, each only for a
//!    consumed row, so when none was consumed nothing is written.
//!
//! This replaces the PL/pgSQL function of migration 0002, which held a
//! second copy of the rules. The function stays in the database (unused by
//! this version) so that instances of the previous version keep rotating
//! during a rolling upgrade.

use std::sync::LazyLock;

use super::rotate::{RotateJob, Won, consume_sql};
use super::rows::{
    FAMILY_COLUMN_COUNT, FAMILY_COLUMNS_F, FamilyRow, TOKEN_COLUMN_COUNT, TOKEN_COLUMNS, TOKEN_COLUMNS_T, TokenRow,
};
use crate::StoreError;

/// The statement, built once: sqlx keeps it prepared per connection.
static ROTATE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH r (token_hash, client_id, now, child_id, successor, child_hash, child_expires_at) AS \
           (VALUES ($1::bytea, $2::text, $3::bigint, $4::text, $5::bytea, $6::bytea, $7::bigint)), \
         locked AS MATERIALIZED ( \
           SELECT f.* FROM refresh_families AS f, r \
           WHERE f.id = (SELECT x.family_id FROM refresh_tokens AS x WHERE x.token_hash = r.token_hash) \
           FOR UPDATE OF f), \
         consumed AS ({consume}), \
         touched AS ( \
           UPDATE refresh_families AS f SET last_used_at = r.now FROM r, consumed AS p WHERE f.id = p.family_id \
           RETURNING {FAMILY_COLUMNS_F}), \
         child AS ( \
           INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, expires_at) \
           SELECT r.child_id, p.family_id, p.id, r.child_hash, r.now, LEAST(r.child_expires_at, f.expires_at) \
           FROM r, consumed AS p, locked AS f \
           RETURNING {TOKEN_COLUMNS}), \
         cleared AS ( \
           UPDATE refresh_tokens AS g SET successor = NULL FROM consumed AS p WHERE g.id = p.parent_id), \
         audited AS ( \
           INSERT INTO audit_events (at, action, actor, client_id, subject, ip, detail) \
           SELECT r.now, $8, $9, $10, $11, $12, $13 FROM r, consumed WHERE $8::text IS NOT NULL) \
         SELECT p.*, f.*, c.* FROM consumed AS p, touched AS f, child AS c",
        consume = consume_sql("locked", TOKEN_COLUMNS_T),
    )
});

/// A rotation on PostgreSQL; `None` when the token was not consumed
/// (nothing written).
///
/// # Errors
/// Any database error (the statement is rolled back whole).
pub(super) async fn rotate(pool: &sqlx::PgPool, r: &RotateJob) -> Result<Option<Won>, StoreError> {
    let audit = r.audit.as_ref();
    let row = sqlx::query(&ROTATE_SQL)
        .bind(&r.presented)
        .bind(&r.client_id)
        .bind(r.now)
        .bind(&r.child_id)
        .bind(r.successor.as_deref())
        .bind(&r.child)
        .bind(r.child_expires_at)
        .bind(audit.map(|e| e.action.as_str()))
        .bind(audit.and_then(|e| e.actor.as_deref()))
        .bind(audit.and_then(|e| e.client_id.as_deref()))
        .bind(audit.and_then(|e| e.subject.as_deref()))
        .bind(audit.and_then(|e| e.ip.as_deref()))
        .bind(audit.and_then(|e| e.detail.as_deref()))
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Won {
        parent: TokenRow::at(&row, 0)?,
        family: FamilyRow::at(&row, TOKEN_COLUMN_COUNT)?,
        child: TokenRow::at(&row, TOKEN_COLUMN_COUNT + FAMILY_COLUMN_COUNT)?,
    }))
}
