//! A rotation on PostgreSQL: one statement, one round trip.
//!
//! The statement is the shared conditional write ([`rotate_sql`]) on the
//! family row, with the audit event inserted by a data-modifying CTE only
//! when the family was rotated. Of N concurrent callers presenting the same
//! token exactly one rotates it: the others wait for its row lock, then
//! PostgreSQL re-checks the condition against the row it committed, which
//! no longer holds that token. A concurrent revoke of the family is ordered
//! the same way (one row, one lock).

use std::sync::LazyLock;

use super::rotate::{REQUEST_COLUMNS, RotateJob, Won, rotate_sql};
use super::rows::{FAMILY_COLUMNS, FamilyRow};
use crate::StoreError;

/// The statement, built once: sqlx keeps it prepared per connection.
static ROTATE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH r ({REQUEST_COLUMNS}) AS \
           (VALUES ($1::text, $2::bytea, $3::text, $4::bigint, $5::bytea, $6::bytea, $7::bigint, $8::bytea)), \
         rotated AS ({rotate}), \
         audited AS ( \
           INSERT INTO audit_events (at, action, actor, client_id, subject, ip, detail) \
           SELECT $4, $9, $10, $11, $12, $13, $14 FROM rotated WHERE $9::text IS NOT NULL) \
         SELECT {FAMILY_COLUMNS} FROM rotated",
        rotate = rotate_sql("LEAST"),
    )
});

/// A rotation on PostgreSQL; `None` when the family was not rotated
/// (nothing written).
///
/// # Errors
/// Any database error (the statement is rolled back whole).
pub(super) async fn rotate(pool: &sqlx::PgPool, r: &RotateJob) -> Result<Option<Won>, StoreError> {
    let audit = r.audit.as_ref();
    let row = sqlx::query(&ROTATE_SQL)
        .bind(&r.family_id)
        .bind(&r.presented)
        .bind(&r.client_id)
        .bind(r.now)
        .bind(&r.selector)
        .bind(&r.child)
        .bind(r.child_expires_at)
        .bind(r.successor.as_deref())
        .bind(audit.map(|e| e.action.as_str()))
        .bind(audit.and_then(|e| e.actor.as_deref()))
        .bind(audit.and_then(|e| e.client_id.as_deref()))
        .bind(audit.and_then(|e| e.subject.as_deref()))
        .bind(audit.and_then(|e| e.ip.as_deref()))
        .bind(audit.and_then(|e| e.detail.as_deref()))
        .fetch_optional(pool)
        .await?;
    row.map(|row| FamilyRow::at(&row, 0)).transpose().map_err(Into::into)
}
