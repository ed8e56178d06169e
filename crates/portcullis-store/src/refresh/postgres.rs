//! Rotations on PostgreSQL: a group of n rotations (n = 1 included) in one
//! statement, one round trip and one commit.
//!
//! The statement is the shared conditional write ([`rotate_sql`]) on the
//! family rows, over a request relation unnested from one array per
//! column, with the winners' audit events inserted by a data-modifying
//! CTE. Its text does not depend on n, so it stays prepared on every
//! connection. Of N concurrent callers presenting the same token exactly
//! one rotates it, in one group or across groups: within a statement a
//! family row is updated at most once, and a statement that finds the row
//! updated by a concurrent one waits for its lock, then re-checks the
//! condition against the row that one committed, which no longer holds
//! that token. A concurrent revoke of the family is ordered the same way
//! (one row, one lock).

use std::collections::HashMap;
use std::sync::LazyLock;

use super::rotate::{REQUEST_COLUMNS, RotateJob, Won, rotate_sql};
use super::rows::{FAMILY_COLUMNS, FamilyRow};
use crate::StoreError;

/// The statement, built once: sqlx keeps it prepared per connection.
static ROTATE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH r ({REQUEST_COLUMNS}) AS ( \
           SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bigint[], $5::bytea[], $6::bytea[], \
                                $7::bigint[], $8::bytea[])), \
         rotated AS ({rotate}), \
         audited AS ( \
           INSERT INTO audit_events (at, action, actor, client_id, subject, ip, detail) \
           SELECT a.at, a.action, a.actor, a.client_id, a.subject, a.ip, a.detail \
           FROM unnest($9::bytea[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[], \
                       $15::text[], $16::text[]) AS a (child, at, action, actor, client_id, subject, ip, detail) \
           JOIN rotated ON rotated.token_hash = a.child) \
         SELECT {FAMILY_COLUMNS} FROM rotated",
        rotate = rotate_sql("LEAST"),
    )
});

/// Rotations of a group in one statement, committed before this returns.
/// One outcome per job, in order: `None` when its family was not rotated
/// (nothing of it written). Two jobs presenting the same token: the family
/// is rotated once, for one of them; the other finds the token spent.
///
/// # Errors
/// Any database error; the statement is rolled back whole.
pub(super) async fn rotate_group(pool: &sqlx::PgPool, jobs: &[&RotateJob]) -> Result<Vec<Option<Won>>, StoreError> {
    let n = jobs.len();
    let mut family = Vec::with_capacity(n);
    let mut presented = Vec::with_capacity(n);
    let mut client = Vec::with_capacity(n);
    let mut now = Vec::with_capacity(n);
    let mut selector = Vec::with_capacity(n);
    let mut child = Vec::with_capacity(n);
    let mut child_expires = Vec::with_capacity(n);
    let mut successor = Vec::with_capacity(n);
    for j in jobs {
        family.push(j.family_id.as_str());
        presented.push(j.presented.as_slice());
        client.push(j.client_id.as_str());
        now.push(j.now);
        selector.push(j.selector.as_slice());
        child.push(j.child.as_slice());
        child_expires.push(j.child_expires_at);
        successor.push(j.successor.as_deref());
    }
    // The audit events of the jobs that have one, keyed by the job's child:
    // only the winners' are inserted.
    let audited: Vec<&RotateJob> = jobs.iter().copied().filter(|j| j.audit.is_some()).collect();
    let event = |f: fn(&crate::NewAuditEvent) -> Option<&str>| -> Vec<Option<&str>> {
        audited.iter().map(|j| j.audit.as_ref().and_then(f)).collect()
    };
    let rows: Vec<FamilyRow> = sqlx::query_as(&ROTATE_SQL)
        .bind(&family)
        .bind(&presented)
        .bind(&client)
        .bind(&now)
        .bind(&selector)
        .bind(&child)
        .bind(&child_expires)
        .bind(&successor)
        .bind(audited.iter().map(|j| j.child.as_slice()).collect::<Vec<_>>())
        .bind(audited.iter().map(|j| j.now).collect::<Vec<_>>())
        .bind(event(|e| Some(e.action.as_str())))
        .bind(event(|e| e.actor.as_deref()))
        .bind(event(|e| e.client_id.as_deref()))
        .bind(event(|e| e.subject.as_deref()))
        .bind(event(|e| e.ip.as_deref()))
        .bind(event(|e| e.detail.as_deref()))
        .fetch_all(pool)
        .await
        .map_err(|e| group_failure(e, n))?;
    // A rotated family's new token hash is the winning job's child.
    let mut won: HashMap<Vec<u8>, FamilyRow> = rows
        .into_iter()
        .filter_map(|f| f.token_hash.clone().map(|h| (h, f)))
        .collect();
    Ok(jobs.iter().map(|j| won.remove(&j.child)).collect())
}

/// A group's failure as the group-commit writer needs it. A group locks
/// several family rows, in an order no other writer shares: a concurrent
/// revoke of many families (a user's, a client's) can deadlock with it.
/// PostgreSQL then aborts one of the two; for a group of more than one
/// that is [`StoreError::Backend`] here, so that the writer runs the
/// group's rotations again one by one (one row each: no deadlock), instead
/// of failing them all as unavailable.
fn group_failure(e: sqlx::Error, n: usize) -> StoreError {
    let deadlock = matches!(&e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40P01" | "40001")));
    if deadlock && n > 1 {
        tracing::info!("a group of refresh rotations met a concurrent revoke; running them one by one");
        return StoreError::Backend;
    }
    e.into()
}
