//! The periodic clean-ups of refresh families, run by the server's
//! housekeeping. They must stay cheap with millions of sign-ins stored and
//! never hold the writer long: on SQLite a rotation waits for the one
//! writer, so each clean-up statement changes at most [`CHUNK`] rows and
//! commits, and rotations queued meanwhile go between two chunks.

use crate::db::with_pool;
use crate::{SqlStore, StoreError, UnixTime};

/// Rows a clean-up statement changes at most.
const CHUNK: usize = 1000;

/// Clears the sealed successors of families last rotated before `cutoff`
/// (see [`super::RefreshStore::clear_successors`]).
///
/// The families are found by a read (on SQLite a read blocks no writer; on
/// PostgreSQL it takes no row lock), a scan on purpose: an index on the
/// columns a rotation changes would keep PostgreSQL from updating the row
/// in place on every refresh. Then they are cleared in chunks, each
/// re-checking the condition, so a family rotated in between keeps its new
/// successor.
pub(super) async fn clear_successors(store: &SqlStore, cutoff: UnixTime) -> Result<u64, StoreError> {
    let ids: Vec<(String,)> = with_pool!(&store.read, |c| sqlx::query_as(
        "SELECT id FROM refresh_families WHERE successor IS NOT NULL AND prev_used_at < $1"
    )
    .bind(cutoff.0)
    .fetch_all(c)
    .await?);
    let mut cleared = 0;
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "UPDATE refresh_families SET successor = NULL \
             WHERE successor IS NOT NULL AND prev_used_at < $1 AND id IN ({})",
            placeholders(2, chunk.len())
        );
        cleared += with_pool!(&store.write, |c| {
            let mut q = sqlx::query(&sql).persistent(chunk.len() == CHUNK).bind(cutoff.0);
            for (id,) in chunk {
                q = q.bind(id);
            }
            q.execute(c).await?.rows_affected()
        });
    }
    Ok(cleared)
}

/// Deletes families expired or revoked before `cutoff`, and rows of
/// legacy tokens expired before it (see
/// [`super::RefreshStore::purge_families`]), [`CHUNK`] rows a statement,
/// each found by an index.
pub(super) async fn purge_families(store: &SqlStore, cutoff: UnixTime) -> Result<u64, StoreError> {
    // Rows of tokens issued before constant state go once expired: such a
    // token refreshes no more, and reuse of a spent one is then answered
    // like an unknown token.
    delete_chunks(store, "refresh_tokens", "expires_at", cutoff).await?;
    // The rest of a family's legacy rows go with it (ON DELETE CASCADE).
    let expired = delete_chunks(store, "refresh_families", "expires_at", cutoff).await?;
    let revoked = delete_chunks(store, "refresh_families", "revoked_at", cutoff).await?;
    Ok(expired + revoked)
}

/// Deletes the rows of `table` whose `column` is before `cutoff`, a chunk
/// a statement, until none is left.
///
/// `ORDER BY` the indexed column makes each chunk a walk of that index
/// from its start: without it PostgreSQL's planner, expecting many
/// matches, scans the table from its first page for each chunk, past every
/// live row, which made a chunk cost as much as the table is large.
async fn delete_chunks(store: &SqlStore, table: &str, column: &str, cutoff: UnixTime) -> Result<u64, StoreError> {
    let sql = format!(
        "DELETE FROM {table} WHERE id IN \
         (SELECT id FROM {table} WHERE {column} < $1 ORDER BY {column} LIMIT {CHUNK})"
    );
    let mut deleted = 0;
    loop {
        let n = with_pool!(&store.write, |c| sqlx::query(&sql)
            .bind(cutoff.0)
            .execute(c)
            .await?
            .rows_affected());
        deleted += n;
        if n < CHUNK as u64 {
            return Ok(deleted);
        }
    }
}

/// `$first, $first+1, …`: `n` numbered placeholders.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
