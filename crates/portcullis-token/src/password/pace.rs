//! Hashing paced to sign-ins' share of the machine while refreshes run.
//!
//! A hash costs about a hundred refreshes' worth of CPU. When both grants
//! are in flight and the CPU is short, a hashing thread could take far
//! more than sign-ins' share of the machine, even at a low priority: the
//! priority orders this process's threads only, not the database's
//! processes a refresh also waits for (PostgreSQL gives each backend a
//! session, so a scheduling group, of its own).
//!
//! So, while refreshes are in flight *and* hashes are running slower than
//! the CPU time they use (they wait for the CPU: it is short), the hashing
//! threads together use at most the share of the machine's cores that
//! hashing jobs are of the requests in flight: with 8 hashes queued or
//! running and 56 refreshes in flight on 2 cores, 8/64 × 2 = a quarter of
//! a core. A thread that finishes a hash costing `c` of CPU moves the pace
//! on by `c / budget`, and no thread takes another job before then.
//!
//! - No refresh in flight, or CPU to spare (hashes run at full speed, as
//!   beside a database on another machine): no pacing; hashing uses every
//!   thread, whatever the counts.
//! - A sign-in flood beside a few refreshes: the flood's share is nearly
//!   all of it, so it is barely slowed.
//! - A lone sign-in beside a refresh flood: hashing keeps at least
//!   [`MIN_CORES`] of a core, so sign-ins never stop.
//! - Where a thread's CPU time cannot be read, no pacing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The least CPU hashing keeps while paced, in cores: a 20 ms hash then
/// holds the next back 200 ms at most.
pub(super) const MIN_CORES: f64 = 0.1;

/// Hashes whose CPU time is less than this fraction of their wall time
/// waited for the CPU (with none to spare, a thread at nice +5 gets far
/// less than this; with CPU to spare it gets nearly all of it).
const CONTENDED: f64 = 0.8;

/// Jobs shorter than this are not hashes (see [`Pace::finished`]).
const SHORTEST: Duration = Duration::from_millis(1);

/// The weight of the newest hash in the running mean of their speed.
const WEIGHT: f64 = 0.25;

/// A refresh in flight, counted until dropped (see the module's text).
#[derive(Debug)]
#[must_use = "the refresh counts only while this is held"]
pub struct Refreshing(Arc<Pace>);

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.refreshes.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A hashing job queued or running, counted until dropped.
#[must_use = "the job counts only while this is held"]
pub(super) struct Queued(Arc<Pace>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.jobs.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What is in flight and the pace hashing keeps (see the module's text).
#[derive(Debug)]
pub(super) struct Pace {
    refreshes: AtomicUsize,
    jobs: AtomicUsize,
    cores: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// While paced, no thread takes a job before this.
    next: Instant,
    /// Running mean of CPU time / wall time over recent hashes.
    speed: f64,
}

impl Pace {
    /// `cores`: the CPUs this process may use.
    pub(super) fn new(cores: usize) -> Self {
        Self {
            refreshes: AtomicUsize::new(0),
            jobs: AtomicUsize::new(0),
            cores: cores.max(1) as f64,
            state: Mutex::new(State {
                next: Instant::now(),
                speed: 1.0,
            }),
        }
    }

    /// Counts a refresh in flight until the guard is dropped.
    pub(super) fn refreshing(self: &Arc<Self>) -> Refreshing {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        Refreshing(Arc::clone(self))
    }

    /// Counts a hashing job queued or running until the guard is dropped.
    pub(super) fn queued(self: &Arc<Self>) -> Queued {
        self.jobs.fetch_add(1, Ordering::Relaxed);
        Queued(Arc::clone(self))
    }

    /// The CPU hashing may use now, in cores, if refreshes are in flight:
    /// the hashing jobs' share of the requests in flight (at least
    /// [`MIN_CORES`]). `None`: no refresh in flight, no limit.
    pub(super) fn budget(&self) -> Option<f64> {
        let refreshes = self.refreshes.load(Ordering::Relaxed);
        if refreshes == 0 {
            return None;
        }
        let jobs = self.jobs.load(Ordering::Relaxed).max(1);
        let share = jobs as f64 / (jobs + refreshes) as f64;
        Some((share * self.cores).max(MIN_CORES))
    }

    /// Records a finished hash: `cpu` the CPU time it used, `wall` the
    /// time it took, `budget` what [`Pace::budget`] said when it started.
    /// A job shorter than [`SHORTEST`] (skipped: its requester was gone)
    /// tells nothing and costs nothing.
    pub(super) fn finished(&self, now: Instant, cpu: Duration, wall: Duration, budget: Option<f64>) {
        if wall < SHORTEST {
            return;
        }
        let speed = (cpu.as_secs_f64() / wall.as_secs_f64()).min(1.0);
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.speed = state.speed * (1.0 - WEIGHT) + speed * WEIGHT;
        if let Some(cores) = budget
            && state.speed < CONTENDED
        {
            state.next = state.next.max(now) + cpu.div_f64(cores);
        }
    }

    /// How long a thread waits before it takes another job.
    pub(super) fn wait(&self, now: Instant) -> Duration {
        if self.refreshes.load(Ordering::Relaxed) == 0 {
            return Duration::ZERO;
        }
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.next.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: Duration = Duration::from_millis(20);

    /// A pace with `refreshes` and `jobs` in flight, and their guards.
    fn pace(cores: usize, refreshes: usize, jobs: usize) -> (Arc<Pace>, Vec<Refreshing>, Vec<Queued>) {
        let p = Arc::new(Pace::new(cores));
        let r = (0..refreshes).map(|_| p.refreshing()).collect();
        let j = (0..jobs).map(|_| p.queued()).collect();
        (p, r, j)
    }

    /// Hashes that ran at `speed` (CPU / wall), each finished at `now`.
    fn hashes(p: &Pace, now: Instant, n: usize, speed: f64) {
        for _ in 0..n {
            p.finished(now, HASH, HASH.div_f64(speed), p.budget());
        }
    }

    fn close(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) < Duration::from_micros(10)
    }

    #[test]
    fn without_refreshes_hashing_is_not_paced() {
        let (p, _r, _j) = pace(2, 0, 8);
        assert_eq!(p.budget(), None);
        let now = Instant::now();
        hashes(&p, now, 10, 0.1);
        assert_eq!(p.wait(now), Duration::ZERO);
    }

    #[test]
    fn hashes_at_full_speed_are_not_paced() {
        // Refreshes in flight, but the CPU has room (the database is
        // elsewhere): the hashes run as fast as the CPU they use.
        let (p, _r, _j) = pace(2, 56, 8);
        let now = Instant::now();
        hashes(&p, now, 10, 0.95);
        assert_eq!(p.wait(now), Duration::ZERO);
    }

    #[test]
    fn short_cpu_paces_hashing_to_its_share_of_requests() {
        // 8 of 64 requests in flight hash, on 2 cores: a quarter of a core,
        // so each 20 ms hash holds the next back 80 ms.
        let (p, refreshes, _j) = pace(2, 56, 8);
        assert!(p.budget().is_some_and(|b| (b - 0.25).abs() < 1e-9));
        let now = Instant::now();
        // One slow hash is not yet a short CPU (the running mean is 0.825).
        hashes(&p, now, 1, 0.3);
        assert_eq!(p.wait(now), Duration::ZERO);
        hashes(&p, now, 1, 0.3);
        assert!(close(p.wait(now), Duration::from_millis(80)), "{:?}", p.wait(now));
        hashes(&p, now, 1, 0.3);
        assert!(close(p.wait(now), Duration::from_millis(160)), "{:?}", p.wait(now));
        // Time spent waiting counts.
        let later = now + Duration::from_millis(100);
        assert!(close(p.wait(later), Duration::from_millis(60)));
        // The refreshes end: no wait at once.
        drop(refreshes);
        assert_eq!(p.wait(now), Duration::ZERO);
    }

    #[test]
    fn a_sign_in_flood_beside_a_few_refreshes_is_barely_slowed() {
        let (p, _r, _j) = pace(2, 2, 62);
        let budget = p.budget().expect("refreshes in flight");
        assert!(budget > 1.9, "{budget}");
    }

    #[test]
    fn a_lone_sign_in_beside_a_refresh_flood_keeps_a_tenth_of_a_core() {
        let (p, _r, _j) = pace(2, 10_000, 1);
        assert_eq!(p.budget(), Some(MIN_CORES));
        let now = Instant::now();
        hashes(&p, now, 1, 0.1);
        assert!(close(p.wait(now), Duration::from_millis(200)), "{:?}", p.wait(now));
    }

    #[test]
    fn skipped_jobs_neither_pace_nor_count_as_slow() {
        let (p, _r, _j) = pace(2, 56, 8);
        let now = Instant::now();
        for _ in 0..10 {
            p.finished(now, Duration::ZERO, Duration::from_micros(50), p.budget());
        }
        hashes(&p, now, 1, 1.0);
        assert_eq!(p.wait(now), Duration::ZERO);
    }

    #[test]
    fn one_slow_hash_among_fast_ones_does_not_pace() {
        let (p, _r, _j) = pace(2, 56, 8);
        let now = Instant::now();
        hashes(&p, now, 10, 1.0);
        hashes(&p, now, 1, 0.5);
        assert_eq!(p.wait(now), Duration::ZERO, "the running mean is still above the mark");
    }
}
