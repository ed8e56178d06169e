//! Rotations on SQLite: one path for a group of n rotations, n = 1
//! included, inside the caller's write transaction.
//!
//! A group costs five statements whatever its size (consume, touch the
//! families, insert the children, clear the grandparents' successors,
//! audit). Their text depends only on n, and sqlx keeps a statement
//! prepared per text: a group of one (every rotation when group commit is
//! off, the usual case on a quiet server, and each rotation of a failed
//! group run again alone) always reuses the same prepared statements, while
//! larger groups, whose sizes vary, are prepared each time instead of
//! crowding the cache.

use std::collections::HashMap;

use sqlx::SqliteConnection;

use super::rotate::{RotateJob, Won, consume_sql};
use super::rows::{FAMILY_COLUMNS, FamilyRow, TOKEN_COLUMNS, TokenRow};
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
/// same effect as running each job in turn, in five statements for the
/// whole group. One outcome per job, in order: `None` when its token was
/// not consumed (nothing of it written).
///
/// SQLite has one writer, so nothing changes between these statements: a
/// family whose token the first statement consumed is still live for the
/// rest of the transaction. Two jobs presenting the same token: it is
/// consumed once, for one of them; the other finds it spent.
///
/// # Errors
/// Any database error; the caller rolls the group back (and, for a group
/// of more than one, runs its jobs again one by one to find the one at
/// fault).
async fn rotate_group(conn: &mut SqliteConnection, jobs: &[&RotateJob]) -> Result<Vec<Option<Won>>, StoreError> {
    // Keep the statements prepared for a group of one only (see above).
    let keep = jobs.len() == 1;

    // 1. Consume every presented token that may be consumed.
    let consume_sql = format!(
        "WITH r (token_hash, client_id, now, child_id, successor) AS (VALUES {}) {}",
        rows(jobs.len(), 5),
        consume_sql("refresh_families", TOKEN_COLUMNS)
    );
    let mut q = sqlx::query_as::<_, TokenRow>(&consume_sql).persistent(keep);
    for j in jobs {
        q = q
            .bind(&j.presented)
            .bind(&j.client_id)
            .bind(j.now)
            .bind(&j.child_id)
            .bind(j.successor.as_deref());
    }
    let mut parents: HashMap<String, TokenRow> = q
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .filter_map(|p| p.replaced_by.clone().map(|child| (child, p)))
        .collect();
    let winners: Vec<(&RotateJob, TokenRow)> = jobs
        .iter()
        .filter_map(|j| parents.remove(&j.child_id).map(|p| (*j, p)))
        .collect();
    if winners.is_empty() {
        return Ok(jobs.iter().map(|_| None).collect());
    }
    let keep = winners.len() == 1;

    // 2. Touch their families.
    let touch_sql = format!(
        "WITH v (v_id, v_now) AS (VALUES {}) \
         UPDATE refresh_families AS f SET last_used_at = v.v_now FROM v WHERE f.id = v.v_id \
         RETURNING {FAMILY_COLUMNS}",
        rows(winners.len(), 2)
    );
    let mut q = sqlx::query_as::<_, FamilyRow>(&touch_sql).persistent(keep);
    for (j, p) in &winners {
        q = q.bind(&p.family_id).bind(j.now);
    }
    let families: HashMap<String, FamilyRow> = q
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|f| (f.id.clone(), f))
        .collect();

    // 3. Insert the children, their idle expiry capped at the family's.
    let child_sql = format!(
        "INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, expires_at) VALUES {} \
         RETURNING {TOKEN_COLUMNS}",
        rows(winners.len(), 6)
    );
    let mut q = sqlx::query_as::<_, TokenRow>(&child_sql).persistent(keep);
    for (j, p) in &winners {
        // Unreachable with one writer (the consume checked the family); if
        // it happens, the caller rolls the consumption back.
        let family = families.get(&p.family_id).ok_or(StoreError::Backend)?;
        q = q
            .bind(&j.child_id)
            .bind(&p.family_id)
            .bind(&p.id)
            .bind(&j.child)
            .bind(j.now)
            .bind(j.child_expires_at.min(family.expires_at));
    }
    let mut children: HashMap<String, TokenRow> = q
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();

    // 4. The grandparents' sealed successors (the tokens just consumed)
    //    can no longer be asked for.
    let grandparents: Vec<&str> = winners.iter().filter_map(|(_, p)| p.parent_id.as_deref()).collect();
    if !grandparents.is_empty() {
        let sql = format!(
            "UPDATE refresh_tokens SET successor = NULL WHERE id IN ({})",
            vec!["?"; grandparents.len()].join(", ")
        );
        let mut q = sqlx::query(&sql).persistent(grandparents.len() == 1);
        for g in &grandparents {
            q = q.bind(*g);
        }
        q.execute(&mut *conn).await?;
    }

    // 5. The audit events.
    let events: Vec<(i64, &crate::NewAuditEvent)> = winners
        .iter()
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

    let mut won: HashMap<String, Won> = HashMap::with_capacity(winners.len());
    for (j, parent) in winners {
        let family = families.get(&parent.family_id).ok_or(StoreError::Backend)?;
        let child = children.remove(&j.child_id).ok_or(StoreError::Backend)?;
        won.insert(
            j.child_id.clone(),
            Won {
                parent,
                family: family.clone(),
                child,
            },
        );
    }
    Ok(jobs.iter().map(|j| won.remove(&j.child_id)).collect())
}

/// `n` rows of `width` placeholders: `(?, ?), (?, ?)` for n = 2, width 2.
fn rows(n: usize, width: usize) -> String {
    let one = format!("({})", vec!["?"; width].join(", "));
    vec![one; n].join(", ")
}
