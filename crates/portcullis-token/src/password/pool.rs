//! The hashing threads: `workers` threads of their own at a lower
//! scheduling priority than the threads serving requests, fed through a
//! channel; each job holds its place in the pool until it is done. While
//! refreshes run and the CPU is short, the threads keep to sign-ins' share
//! of the machine between jobs ([`super::pace`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pace::{Pace, Refreshing};
use super::slots::Slot;

/// The hashing pool is full: retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is saturated")]
pub struct Busy;

/// A unit of work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// How often a paced thread looks again whether the refreshes have ended.
const PACE_POLL: Duration = Duration::from_millis(5);

/// The hashing threads; they end when this is dropped.
pub(super) struct Workers {
    jobs: flume::Sender<Job>,
    pace: Arc<Pace>,
}

impl Workers {
    /// Starts `n` hashing threads.
    pub(super) fn start(n: usize) -> std::io::Result<Self> {
        let (jobs, rx) = flume::unbounded::<Job>();
        let cores = std::thread::available_parallelism().map_or(n, usize::from);
        let pace = Arc::new(Pace::new(cores));
        for i in 0..n {
            let rx = rx.clone();
            let pace = Arc::clone(&pace);
            std::thread::Builder::new()
                .name(format!("portcullis-hash-{i}"))
                .spawn(move || {
                    lower_priority();
                    for job in rx.iter() {
                        run_job(&pace, job);
                        // Between jobs only: a job taken is always finished.
                        keep_pace(&pace);
                    }
                })?;
        }
        Ok(Self { jobs, pace })
    }

    /// Counts a refresh in flight until the guard is dropped.
    pub(super) fn refreshing(&self) -> Refreshing {
        self.pace.refreshing()
    }

    /// What pacing allows hashing now, in cores (`None`: no limit).
    #[cfg(test)]
    pub(super) fn budget(&self) -> Option<f64> {
        self.pace.budget()
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
        let queued = Instant::now();
        let counted = self.pace.queued();
        self.jobs
            .send(Box::new(move || {
                let _slot = slot;
                let _counted = counted;
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

/// Runs one job, and tells the pace what it cost.
fn run_job(pace: &Pace, job: Job) {
    let budget = pace.budget();
    let start = Instant::now();
    let cpu = cpu_time::ThreadTime::try_now().ok();
    // A panic fails that one request (its reply is dropped: `Busy`), not
    // the thread.
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
        tracing::error!("password hashing panicked");
    }
    if let Some(cpu) = cpu.and_then(|t| t.try_elapsed().ok()) {
        pace.finished(Instant::now(), cpu, start.elapsed(), budget);
    }
}

/// Waits, in short steps, until the pace lets this thread take a job.
fn keep_pace(pace: &Pace) {
    let mut waited = Duration::ZERO;
    loop {
        let wait = pace.wait(Instant::now());
        if wait.is_zero() {
            break;
        }
        let step = wait.min(PACE_POLL);
        std::thread::sleep(step);
        waited += step;
    }
    if !waited.is_zero() {
        metrics::histogram!("portcullis_hash_pace_seconds").record(waited.as_secs_f64());
    }
}

/// Lowers the calling thread's scheduling priority, best effort: nice +5
/// on Linux (a CPU share about a third of a request thread's when both
/// want the CPU). The pace, not the priority, keeps hashing to its share
/// beside refreshes; at nice +10 the hashes ran slower than the pace
/// allowed beside PostgreSQL (sign-ins at about 60 % of their share, 90 %
/// at nice +5: docs/benchmarks.md).
fn lower_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    // thread-priority maps 0..=99 onto nice 19..=-20; 35 is nice +5.
    let Ok(value) = ThreadPriorityValue::try_from(HASH_THREAD_PRIORITY) else {
        return;
    };
    if let Err(e) = set_current_thread_priority(ThreadPriority::Crossplatform(value)) {
        tracing::debug!(error = ?e, "hashing thread keeps the default priority");
    }
}

/// The hashing threads' priority on thread-priority's 0..=99 scale.
const HASH_THREAD_PRIORITY: u8 = 35;
