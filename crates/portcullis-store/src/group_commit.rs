//! Group commit of refresh-token rotations on SQLite.
//!
//! With `synchronous=FULL` every commit waits for an `fsync` of the WAL, and
//! SQLite has one writer: one commit per rotation caps refreshes at one
//! `fsync` each. Here the rotations that arrive while a commit is in flight
//! queue up, and the next transaction runs them all and commits once.
//!
//! Durability is unchanged: a caller gets its outcome only after the
//! transaction holding its rotation committed. Each rotation is the same
//! conditional UPDATE as alone, and runs in arrival order inside the one
//! writer's transaction, so exactly-once consumption holds as before.

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;
use crate::refresh::{RotateJob, Won, rotate_sqlite};

/// Rotations committed together at most.
const MAX_BATCH: usize = 256;
/// Rotations waiting for the writer at most; further callers wait to queue.
const QUEUE: usize = 4096;

type Reply = oneshot::Sender<Result<Option<Won>, StoreError>>;

/// The handle callers queue rotations on; the writer task ends when the
/// last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<(RotateJob, Reply)>,
}

impl GroupCommit {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn start(pool: SqlitePool) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(pool, rx));
        Self { jobs }
    }

    /// Runs one rotation in the next group; returns once it is committed
    /// (or failed).
    pub(crate) async fn rotate(&self, job: RotateJob) -> Result<Option<Won>, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.jobs
            .send((job, reply))
            .await
            .map_err(|_| StoreError::Unavailable)?;
        outcome.await.map_err(|_| StoreError::Unavailable)?
    }
}

async fn writer(pool: SqlitePool, mut rx: mpsc::Receiver<(RotateJob, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit_group(&pool, &mut batch).await;
        batch.clear();
    }
}

/// Commits `batch` as one transaction and answers every caller. A rotation
/// that fails on its own (a constraint, a corrupt row) is answered with its
/// error and the others are run again without it; a failure of the
/// database itself fails them all.
async fn commit_group(pool: &SqlitePool, batch: &mut Vec<(RotateJob, Reply)>) {
    while !batch.is_empty() {
        match run_group(pool, batch).await {
            Ok(outcomes) => {
                for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(Failure::One(i, e)) => {
                let (_, reply) = batch.remove(i);
                let _ = reply.send(Err(e));
            }
            Err(Failure::All(e)) => {
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

enum Failure {
    /// Rotation `i` failed; the transaction was rolled back.
    One(usize, StoreError),
    /// The transaction could not be begun or committed.
    All(StoreError),
}

async fn run_group(pool: &SqlitePool, batch: &[(RotateJob, Reply)]) -> Result<Vec<Option<Won>>, Failure> {
    let mut tx = pool.begin().await.map_err(|e| Failure::All(e.into()))?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for (i, (job, _)) in batch.iter().enumerate() {
        match rotate_sqlite(&mut tx, job).await {
            Ok(outcome) => outcomes.push(outcome),
            // The database is going away: the others would fail alike.
            Err(StoreError::Unavailable) => return Err(Failure::All(StoreError::Unavailable)),
            // Dropping `tx` rolls the group back.
            Err(e) => return Err(Failure::One(i, e)),
        }
    }
    tx.commit().await.map_err(|e| Failure::All(e.into()))?;
    Ok(outcomes)
}
