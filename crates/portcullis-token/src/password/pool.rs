//! The hashing threads: `workers` threads of their own at a lower
//! scheduling priority than the threads serving requests, fed through a
//! channel; each job holds its place in the pool until it is done.

use super::slots::Slot;

/// The hashing pool is full: retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is saturated")]
pub struct Busy;

/// A unit of work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads; they end when this is dropped.
pub(super) struct Workers {
    jobs: flume::Sender<Job>,
}

impl Workers {
    /// Starts `n` hashing threads.
    pub(super) fn start(n: usize) -> std::io::Result<Self> {
        let (jobs, rx) = flume::unbounded::<Job>();
        for i in 0..n {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("portcullis-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    for job in rx.iter() {
                        // A panic fails that one request (its reply is
                        // dropped: `Busy`), not the thread.
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                            tracing::error!("password hashing panicked");
                        }
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Runs `f` on a hashing thread in a place already taken. The job
    /// holds the place until it is done, not the request: a client that
    /// hangs up does not free its place while its hash is still queued
    /// (or the caps could be dodged by sending and disconnecting), and a
    /// job whose requester is gone is skipped rather than hashed.
    pub(super) async fn run_in<T: Send + 'static>(
        &self,
        slot: Slot,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let queued = std::time::Instant::now();
        self.jobs
            .send(Box::new(move || {
                let _slot = slot;
                metrics::histogram!("portcullis_hash_wait_seconds").record(queued.elapsed().as_secs_f64());
                if !reply.is_closed() {
                    let _ = reply.send(f());
                }
            }))
            .map_err(|_| Busy)?;
        outcome.await.map_err(|_| {
            tracing::error!("password hashing task failed");
            Busy
        })
    }
}

/// Lowers the calling thread's scheduling priority, best effort: nice +10
/// on Linux (a CPU share about a tenth of a request thread's when both
/// want the CPU).
fn lower_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    // thread-priority maps 0..=99 onto nice 19..=-20; 22 is nice +10.
    let Ok(value) = ThreadPriorityValue::try_from(HASH_THREAD_PRIORITY) else {
        return;
    };
    if let Err(e) = set_current_thread_priority(ThreadPriority::Crossplatform(value)) {
        tracing::debug!(error = ?e, "hashing thread keeps the default priority");
    }
}

/// The hashing threads' priority on thread-priority's 0..=99 scale.
const HASH_THREAD_PRIORITY: u8 = 22;
