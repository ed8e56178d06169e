//! Rotations on SQLite: one path for a group of n rotations, n = 1
//! included, inside the caller's write transaction.
//!
//! A group costs two statements whatever its size (rotate the families,
//! record the audit events). Their text depends only on n, and sqlx keeps a
//! statement prepared per text: a group of one (every rotation when group
//! commit is off, the usual case on a quiet server, and each rotation of a
//! failed group run again alone) always reuses the same prepared
//! statements, while larger groups, whose sizes vary, are prepared each
//! time instead of crowding the cache.

use std::collections::HashMap;

use sqlx::SqliteConnection;

use super::rotate::{REQUEST_COLUMNS, RotateJob, Won, rotate_sql};
use super::rows::FamilyRow;
use crate::{StoreError, UnixTime};

/// Rotations of a group in a transaction of their own, committed before
/// this returns: what the group-commit writer runs for a group, and for
/// each rotation of a failed group again alone, and what a rotation runs
/// when group commit is off.
///
/// # Errors
/// Any database error; nothing of the group is written then.
pub(super) async fn rotate_committed(
    pool: &sqlx::SqlitePool,
    jobs: &[&RotateJob],
) -> Result<Vec<Option<Won>>, StoreError> {
    let mut tx = pool.begin().await?;
    // Dropping `tx` on an error rolls the group back.
    let outcomes = rotate_group(&mut tx, jobs).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// Rotations of a group, inside the caller's SQLite write transaction: the
/// same effect as running each job in turn, in two statements for the
/// whole group. One outcome per job, in order: `None` when its family was
/// not rotated (nothing of it written).
///
/// Two jobs presenting the same token: the family is rotated once, for one
/// of them; the other finds the token spent.
///
/// # Errors
/// Any database error; the caller rolls the group back (and, for a group
/// of more than one, runs its jobs again one by one to find the one at
/// fault).
async fn rotate_group(conn: &mut SqliteConnection, jobs: &[&RotateJob]) -> Result<Vec<Option<Won>>, StoreError> {
    // Keep the statements prepared for a group of one only (see above).
    let keep = jobs.len() == 1;

    // 1. Rotate every family whose current token a job presents.
    let sql = format!(
        "WITH r ({REQUEST_COLUMNS}) AS (VALUES {}) {}",
        rows(jobs.len(), 8),
        rotate_sql("MIN")
    );
    let mut q = sqlx::query_as::<_, FamilyRow>(&sql).persistent(keep);
    for j in jobs {
        q = q
            .bind(&j.family_id)
            .bind(&j.presented)
            .bind(&j.client_id)
            .bind(j.now)
            .bind(&j.selector)
            .bind(&j.child)
            .bind(j.child_expires_at)
            .bind(j.successor.as_deref());
    }
    // A rotated family's new token hash is the winning job's child.
    let mut won: HashMap<Vec<u8>, FamilyRow> = q
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .filter_map(|f| f.token_hash.clone().map(|h| (h, f)))
        .collect();
    let outcomes: Vec<Option<Won>> = jobs.iter().map(|j| won.remove(&j.child)).collect();

    // 2. The winners' audit events.
    let events: Vec<(i64, &crate::NewAuditEvent)> = jobs
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_some())
        .filter_map(|(j, _)| j.audit.as_ref().map(|e| (j.now, e)))
        .collect();
    if !events.is_empty() {
        let sql = format!(
            "INSERT INTO audit_events (at, action, actor, client_id, subject, ip, detail) VALUES {}",
            rows(events.len(), 7)
        );
        let mut q = sqlx::query(&sql).persistent(events.len() == 1);
        for (now, e) in &events {
            q = crate::audit::bind_event!(q, UnixTime(*now), e);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(outcomes)
}

/// `n` rows of `width` placeholders: `(?, ?), (?, ?)` for n = 2, width 2.
fn rows(n: usize, width: usize) -> String {
    let one = format!("({})", vec!["?"; width].join(", "));
    vec![one; n].join(", ")
}
