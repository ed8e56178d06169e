//! The hashing threads: `workers` threads of their own at a lower
//! scheduling priority than the threads serving requests, fed through a
//! channel; each job holds its place in the pool until it is done.
//!
//! While many refreshes are in flight (more than twice the threads), the
//! upper half of the threads stop taking jobs: a hash is about a hundred
//! refreshes' worth of CPU, and the priority alone orders only this
//! process's threads, not the database's processes a refresh also waits
//! for. Sign-ins then hash on the lower half, so they go on (slower), and
//! get every thread back as soon as the refreshes thin out. One refresh at
//! a time (a user beside a credential-stuffing flood) changes nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::slots::Slot;

/// The hashing pool is full: retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is saturated")]
pub struct Busy;

/// A unit of work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// How often a thread standing aside looks again whether the refreshes
/// have thinned out.
const STAND_ASIDE_POLL: Duration = Duration::from_millis(5);

/// Refreshes in flight, counted by [`Refreshing`].
#[derive(Debug)]
struct Pressure {
    refreshes: AtomicUsize,
    /// More refreshes in flight than this: the upper threads stand aside.
    threshold: usize,
}

impl Pressure {
    fn new(threshold: usize) -> Self {
        Self {
            refreshes: AtomicUsize::new(0),
            threshold,
        }
    }

    /// Whether the upper hashing threads stand aside now.
    fn high(&self) -> bool {
        self.refreshes.load(Ordering::Relaxed) > self.threshold
    }
}

/// A refresh in flight, counted until dropped (see the module's text).
#[derive(Debug)]
#[must_use = "the refresh counts only while this is held"]
pub struct Refreshing(Arc<Pressure>);

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.refreshes.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The hashing threads; they end when this is dropped.
pub(super) struct Workers {
    jobs: flume::Sender<Job>,
    pressure: Arc<Pressure>,
}

impl Workers {
    /// Starts `n` hashing threads; the lower half (rounded up, so at least
    /// one) never stands aside.
    pub(super) fn start(n: usize) -> std::io::Result<Self> {
        let (jobs, rx) = flume::unbounded::<Job>();
        let pressure = Arc::new(Pressure::new(2 * n));
        let keep = n.div_ceil(2);
        for i in 0..n {
            let rx = rx.clone();
            let pressure = (i >= keep).then(|| Arc::clone(&pressure));
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
                        // Between jobs only: a job taken is always finished.
                        while pressure.as_ref().is_some_and(|p| p.high()) {
                            std::thread::sleep(STAND_ASIDE_POLL);
                        }
                    }
                })?;
        }
        Ok(Self { jobs, pressure })
    }

    /// Counts a refresh in flight until the guard is dropped.
    pub(super) fn refreshing(&self) -> Refreshing {
        self.pressure.refreshes.fetch_add(1, Ordering::Relaxed);
        Refreshing(Arc::clone(&self.pressure))
    }

    /// Whether the upper threads stand aside now.
    #[cfg(test)]
    pub(super) fn standing_aside(&self) -> bool {
        self.pressure.high()
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
