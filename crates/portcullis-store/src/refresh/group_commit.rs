//! Group commit of refresh-token rotations.
//!
//! Every commit waits for the database's log to reach the disk (SQLite with
//! `synchronous=FULL`, PostgreSQL with `synchronous_commit=on`): one commit
//! per rotation caps refreshes at one log flush each, and on PostgreSQL
//! also at one round trip and one pooled connection each. Here the
//! rotations that arrive while a group is in flight queue up, and the next
//! group runs them all in one transaction and commits once: on SQLite the
//! one writer's transaction ([`super::sqlite`]), on PostgreSQL one
//! statement ([`super::postgres`]).
//!
//! Durability is unchanged: a caller gets its outcome only after the
//! transaction holding its rotation committed. A group runs the backend's
//! one rotation path, the same conditional write as a rotation alone, so
//! exactly-once consumption holds as before.

use tokio::sync::{mpsc, oneshot};

use super::rotate::{RotateJob, Won};
use crate::StoreError;

/// The database a group is committed to.
#[derive(Debug, Clone)]
pub(crate) enum Committer {
    /// The SQLite writer connection.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    /// The PostgreSQL pool (a group takes one connection).
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

impl Committer {
    /// Commits the rotations of `jobs` together; see [`super::sqlite`] and
    /// [`super::postgres`].
    pub(super) async fn commit(&self, jobs: &[&RotateJob]) -> Result<Vec<Option<Won>>, StoreError> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => super::sqlite::rotate_committed(pool, jobs).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => super::postgres::rotate_group(pool, jobs).await,
        }
    }

    async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(pool) => pool.close().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

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
    db: Committer,
}

impl GroupCommit {
    /// Starts the writer task on the current tokio runtime.
    pub(crate) fn start(committer: Committer) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(committer.clone(), rx));
        Self { jobs, db: committer }
    }

    /// Closes the writer's connections.
    pub(crate) async fn close(&self) {
        self.db.close().await;
    }

    /// Runs one rotation in the next group; returns once it is committed
    /// (or failed).
    pub(super) async fn rotate(&self, job: RotateJob) -> Result<Option<Won>, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.jobs
            .send((job, reply))
            .await
            .map_err(|_| StoreError::Unavailable)?;
        outcome.await.map_err(|_| StoreError::Unavailable)?
    }

    /// Rotations queued and not yet taken by the writer: lets a test know
    /// that the rotations it started will be taken as one group.
    #[cfg(feature = "testing")]
    pub(crate) fn queued(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }
}

async fn writer(db: Committer, mut rx: mpsc::Receiver<(RotateJob, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if commit_group(&db, &mut batch).await.is_err() {
            // The database is unreachable or locked: the rotations that
            // queued meanwhile would each wait out the same timeout in
            // turn. They fail now (503), and callers retry; the next group
            // tries the database again.
            while let Ok((_, reply)) = rx.try_recv() {
                let _ = reply.send(Err(StoreError::Unavailable));
            }
        }
        batch.clear();
    }
}

/// Commits `batch` as one transaction and answers every caller. If the
/// group fails on a statement (a constraint, a corrupt row), it is rolled
/// back and each rotation is run again in a transaction of its own, so that
/// only the one at fault fails; a failure of the database itself (it went
/// away, is locked, the disk is full) fails them all at once, and is
/// returned.
async fn commit_group(db: &Committer, batch: &mut Vec<(RotateJob, Reply)>) -> Result<(), StoreError> {
    let jobs: Vec<&RotateJob> = batch.iter().map(|(job, _)| job).collect();
    match db.commit(&jobs).await {
        Ok(outcomes) => {
            for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(StoreError::Unavailable) => {
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(StoreError::Unavailable));
            }
            return Err(StoreError::Unavailable);
        }
        Err(_) => {
            for (job, reply) in batch.drain(..) {
                let one = db.commit(&[&job]).await.map(|mut won| won.pop().flatten());
                let _ = reply.send(one);
            }
        }
    }
    Ok(())
}
