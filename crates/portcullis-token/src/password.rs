//! Password hashing: Argon2id on a bounded pool.
//!
//! - Parameters at least OWASP's (m=19456 KiB, t=2, p=1); a stored hash with
//!   other parameters is verified, then rehashed with the current ones.
//! - A stored hash whose parameters are out of range (a tampered row asking
//!   for 4 GiB) is refused without being computed.
//! - Unknown users are checked against a dummy hash with the current
//!   parameters, so timing does not tell who exists.
//! - At most `workers` hashes run at once, at most `queue` more wait; past
//!   that the caller gets [`Busy`] (the endpoint answers 503 + Retry-After)
//!   instead of memory growing with the flood.
//! - One client address holds at most `per_address` of those places at
//!   once; past that it gets [`SlotError::Address`] (429), so a flood from
//!   one address cannot fill the queue and shut everyone else out. A place
//!   is taken before the attempt is counted by the throttle
//!   ([`Passwords::reserve`]): an attempt refused here is not counted
//!   against the account it names and costs no database write.
//! - Hashes run on `workers` threads of their own, at a lower scheduling
//!   priority (nice +10 on Linux) than the threads serving requests: a
//!   sign-in flood uses the CPU that is left over, and refreshes, JWKS and
//!   health checks keep their latency (docs/benchmarks.md).
//! - Each worker reuses one memory block ([`portcullis_argon2::Hasher`]):
//!   a fresh 19 MiB block per hash costs ~40% more in page faults, and the
//!   memory in use stays at `workers` × m. The hash itself runs the fastest
//!   code the CPU supports (AVX-512, AVX2 or portable, chosen at start),
//!   bit-identical to the reference implementation.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Params, Version};
use subtle::ConstantTimeEq as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest memory cost accepted in a stored hash (256 MiB).
const MAX_M_COST_KIB: u32 = 256 * 1024;
/// Largest time cost accepted in a stored hash.
const MAX_T_COST: u32 = 16;
/// Largest parallelism accepted in a stored hash.
const MAX_P_COST: u32 = 16;

/// How passwords are hashed and how much hashing may run at once.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// Argon2id memory cost in KiB (default 19456).
    pub m_cost_kib: u32,
    /// Argon2id iterations (default 2).
    pub t_cost: u32,
    /// Argon2id lanes (default 1).
    pub p_cost: u32,
    /// Longest accepted password in bytes; longer ones are refused before
    /// any hashing (default 1024).
    pub max_bytes: usize,
    /// Hashes computed at once (default: the number of CPUs).
    pub workers: usize,
    /// Hashes allowed to wait for a worker (default 64).
    pub queue: usize,
    /// Places (running or waiting) one client address may hold at once
    /// (default 8). IPv6 addresses count per /64.
    pub per_address: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            m_cost_kib: Params::DEFAULT_M_COST,
            t_cost: Params::DEFAULT_T_COST,
            p_cost: Params::DEFAULT_P_COST,
            max_bytes: 1024,
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            queue: 64,
            per_address: 8,
        }
    }
}

/// The hashing pool is full: retry later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing is saturated")]
pub struct Busy;

/// Why [`Passwords::reserve`] found no place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// The pool is full (the endpoint answers 503).
    #[error("password hashing is saturated")]
    Busy,
    /// This client address already holds its share (429).
    #[error("too many sign-ins at once from this address")]
    Address,
}

/// A place in the hashing pool, from [`Passwords::reserve`]; given back
/// when dropped.
#[must_use = "a reservation is used by `verify_reserved`"]
pub struct Slot {
    _queued: OwnedSemaphorePermit,
    _address: Option<AddressHold>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

/// Places held per client address block.
#[derive(Default)]
struct AddressCounts(Mutex<HashMap<IpAddr, usize>>);

/// One place held by an address; counted down when dropped.
struct AddressHold {
    counts: Arc<AddressCounts>,
    block: IpAddr,
}

impl AddressCounts {
    fn take(self: &Arc<Self>, block: IpAddr, max: usize) -> Option<AddressHold> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = map.entry(block).or_insert(0);
        if *held >= max {
            return None;
        }
        *held += 1;
        Some(AddressHold {
            counts: self.clone(),
            block,
        })
    }
}

impl Drop for AddressHold {
    fn drop(&mut self) {
        let mut map = self.counts.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(held) = map.get_mut(&self.block) {
            *held -= 1;
            if *held == 0 {
                map.remove(&self.block);
            }
        }
    }
}

/// The outcome of [`Passwords::verify`].
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right. `rehash` holds a new hash with the current
    /// parameters when the stored one used others.
    Valid {
        /// The replacement hash to store, if any.
        rehash: Option<String>,
    },
    /// Wrong password, unknown user, or an unusable stored hash.
    Invalid,
}

/// Argon2id hashing and verification on a bounded pool.
pub struct Passwords {
    params: Params,
    dummy: Arc<str>,
    jobs: flume::Sender<Job>,
    queue: Arc<Semaphore>,
    capacity: usize,
    per_address: usize,
    addresses: Arc<AddressCounts>,
    max_bytes: usize,
    hashers: Arc<HasherPool>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("params", &self.params)
            .field("backend", &self.hashers.backend)
            .finish_non_exhaustive()
    }
}

/// Hashers for the current parameters, each with its memory block, kept
/// between hashes. At most `workers` exist: that many threads hash, each
/// taking one hasher for the duration of a hash.
struct HasherPool {
    params: portcullis_argon2::Params,
    backend: portcullis_argon2::Backend,
    idle: Mutex<Vec<portcullis_argon2::Hasher>>,
}

impl HasherPool {
    fn new(params: &Params) -> Result<Self, InvalidPolicy> {
        let params = portcullis_argon2::Params::new(params.m_cost(), params.t_cost(), params.p_cost())
            .map_err(|e| InvalidPolicy(e.to_string()))?;
        Ok(Self {
            params,
            backend: portcullis_argon2::Backend::detect(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` with a hasher for `params`: a pooled one when they are the
    /// current parameters, a one-off otherwise (a stored hash made with
    /// older parameters, verified once before its rehash).
    fn with<T>(&self, params: portcullis_argon2::Params, f: impl FnOnce(&mut portcullis_argon2::Hasher) -> T) -> T {
        if params != self.params {
            return f(&mut portcullis_argon2::Hasher::new(params));
        }
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut hasher = pooled.unwrap_or_else(|| portcullis_argon2::Hasher::new(self.params));
        let result = f(&mut hasher);
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(hasher);
        result
    }
}

/// The policy's parameters are invalid.
#[derive(Debug, thiserror::Error)]
#[error("invalid Argon2 parameters: {0}")]
pub struct InvalidPolicy(String);

impl Passwords {
    /// Sets up the pool and computes the dummy hash (one hash, at start).
    ///
    /// # Errors
    /// When the parameters are below OWASP's minimum or rejected by Argon2.
    pub fn new(policy: &PasswordPolicy) -> Result<Self, InvalidPolicy> {
        if policy.m_cost_kib < Params::DEFAULT_M_COST || policy.t_cost < 2 || policy.p_cost < 1 {
            return Err(InvalidPolicy("below the OWASP minimum m=19456 KiB, t=2, p=1".into()));
        }
        if policy.m_cost_kib > MAX_M_COST_KIB || policy.t_cost > MAX_T_COST || policy.p_cost > MAX_P_COST {
            return Err(InvalidPolicy(
                "above the accepted maximum m=262144 KiB, t=16, p=16".into(),
            ));
        }
        let params = Params::new(policy.m_cost_kib, policy.t_cost, policy.p_cost, None)
            .map_err(|e| InvalidPolicy(e.to_string()))?;
        let hashers = Arc::new(HasherPool::new(&params)?);
        // On a pool of its own, dropped at once: an idle server holds no
        // hashing memory until the first sign-in.
        let dummy = hash_blocking(&HasherPool::new(&params)?, &params, &random_password())
            .map_err(|_| InvalidPolicy("hashing failed".into()))?;
        let workers = policy.workers.max(1);
        Ok(Self {
            params,
            dummy: dummy.into(),
            jobs: start_workers(workers)?,
            queue: Arc::new(Semaphore::new(workers + policy.queue)),
            capacity: workers + policy.queue,
            per_address: policy.per_address.max(1),
            addresses: Arc::default(),
            max_bytes: policy.max_bytes,
            hashers,
        })
    }

    /// Whether a password is short enough to be hashed at all.
    #[must_use]
    pub fn acceptable_length(&self, password: &str) -> bool {
        password.len() <= self.max_bytes
    }

    /// Hashes a new password (PHC string).
    ///
    /// # Errors
    /// [`Busy`] when the pool is full.
    pub async fn hash(&self, password: &str) -> Result<String, Busy> {
        let (params, hashers) = (self.params.clone(), self.hashers.clone());
        let password = password.to_owned();
        self.run(move || hash_blocking(&hashers, &params, &password).map_err(|_| Busy))
            .await?
    }

    /// Places in the pool taken now (hashing or waiting).
    #[must_use]
    pub fn in_use(&self) -> usize {
        self.capacity.saturating_sub(self.queue.available_permits())
    }

    /// Takes a place in the pool for a sign-in from `ip`, without waiting.
    ///
    /// # Errors
    /// [`SlotError::Address`] when `ip` already holds `per_address` places,
    /// [`SlotError::Busy`] when the pool is full.
    pub fn reserve(&self, ip: Option<IpAddr>) -> Result<Slot, SlotError> {
        let address = match ip {
            Some(ip) => Some(
                self.addresses
                    .take(crate::throttle::address_block(ip), self.per_address)
                    .ok_or(SlotError::Address)?,
            ),
            None => None,
        };
        let queued = self.queue.clone().try_acquire_owned().map_err(|_| SlotError::Busy)?;
        Ok(Slot {
            _queued: queued,
            _address: address,
        })
    }

    /// Checks `password` against `stored` (`None`: unknown user, checked
    /// against the dummy hash so that it takes as long).
    ///
    /// # Errors
    /// [`Busy`] when the pool is full.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<Verdict, Busy> {
        let slot = self.reserve(None).map_err(|_| Busy)?;
        self.verify_reserved(slot, password, stored).await
    }

    /// [`Passwords::verify`] in a place taken earlier with
    /// [`Passwords::reserve`].
    ///
    /// # Errors
    /// [`Busy`] when the hashing thread fails.
    pub async fn verify_reserved(&self, slot: Slot, password: &str, stored: Option<&str>) -> Result<Verdict, Busy> {
        let params = self.params.clone();
        let password = password.to_owned();
        let (target, real) = match stored {
            Some(s) => (Arc::<str>::from(s), true),
            None => (self.dummy.clone(), false),
        };
        let (dummy, hashers) = (self.dummy.clone(), self.hashers.clone());
        self.run_in(slot, move || {
            let ok = verify_blocking(&hashers, &password, &target, &dummy);
            if !(ok && real) {
                return Verdict::Invalid;
            }
            let rehash = needs_rehash(&target, &params)
                .then(|| hash_blocking(&hashers, &params, &password).ok())
                .flatten();
            Verdict::Valid { rehash }
        })
        .await
    }

    /// Runs `f` on a hashing thread once one is free.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let slot = self.reserve(None).map_err(|_| Busy)?;
        self.run_in(slot, f).await
    }

    /// Runs `f` on a hashing thread in a place already taken. The job
    /// holds the place until it is done, not the request: a client that
    /// hangs up does not free its place while its hash is still queued
    /// (or the caps could be dodged by sending and disconnecting), and a
    /// job whose requester is gone is skipped rather than hashed.
    async fn run_in<T: Send + 'static>(&self, slot: Slot, f: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
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

/// A unit of work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// Starts `n` hashing threads; they end when the returned sender (the
/// [`Passwords`]) is dropped.
fn start_workers(n: usize) -> Result<flume::Sender<Job>, InvalidPolicy> {
    let (jobs, rx) = flume::unbounded::<Job>();
    for i in 0..n {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("portcullis-hash-{i}"))
            .spawn(move || {
                lower_priority();
                for job in rx.iter() {
                    // A panic fails that one request (its reply is dropped:
                    // `Busy`), not the thread.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("password hashing panicked");
                    }
                }
            })
            .map_err(|e| InvalidPolicy(format!("cannot start a hashing thread: {e}")))?;
    }
    Ok(jobs)
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

/// Length of the hashes this server writes (the PHC default).
const OUTPUT_LEN: usize = 32;
/// Length of the salts this server writes.
const SALT_LEN: usize = 16;

/// A new PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for `password`.
fn hash_blocking(
    hashers: &HasherPool,
    params: &Params,
    password: &str,
) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::Error as E;
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|_| E::Crypto)?;
    let p = portcullis_argon2::Params::new(params.m_cost(), params.t_cost(), params.p_cost()).map_err(|_| E::Crypto)?;
    let mut out = [0u8; OUTPUT_LEN];
    hashers
        .with(p, |h| h.hash_into(password.as_bytes(), &salt, &mut out))
        .map_err(|_| E::Crypto)?;
    Ok(format!(
        "${}$v={}$m={},t={},p={}${}${}",
        Algorithm::Argon2id.ident(),
        u32::from(Version::V0x13),
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        SaltString::encode_b64(&salt)?.as_str(),
        Output::new(&out)?,
    ))
}

/// Whether `password` matches the parsed `hash` (compared in constant time).
fn matches(hashers: &HasherPool, password: &str, hash: &PasswordHash<'_>) -> bool {
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let Ok(p) = Params::try_from(hash) else { return false };
    let Ok(p) = portcullis_argon2::Params::new(p.m_cost(), p.t_cost(), p.p_cost()) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    hashers
        .with(p, |h| h.hash_into(password.as_bytes(), salt, &mut out))
        .is_ok_and(|()| bool::from(out.as_slice().ct_eq(expected.as_bytes())))
}

/// Verifies against `stored` if its parameters are acceptable; otherwise
/// spends the same time on the dummy hash and fails.
fn verify_blocking(hashers: &HasherPool, password: &str, stored: &str, dummy: &str) -> bool {
    match acceptable_hash(stored) {
        Some(hash) => matches(hashers, password, &hash),
        None => {
            tracing::error!("a stored password hash is not an acceptable Argon2id hash; refused");
            if let Some(d) = acceptable_hash(dummy) {
                let _ = matches(hashers, password, &d);
            }
            false
        }
    }
}

/// The parsed hash, if it is Argon2id v1.3 with parameters in range.
fn acceptable_hash(stored: &str) -> Option<PasswordHash<'_>> {
    let hash = PasswordHash::new(stored).ok()?;
    if hash.algorithm != Algorithm::Argon2id.ident() || hash.version != Some(Version::V0x13.into()) {
        return None;
    }
    let p = Params::try_from(&hash).ok()?;
    (p.m_cost() <= MAX_M_COST_KIB && p.t_cost() <= MAX_T_COST && p.p_cost() <= MAX_P_COST).then_some(hash)
}

fn needs_rehash(stored: &str, params: &Params) -> bool {
    let Some(hash) = acceptable_hash(stored) else {
        return true;
    };
    let Ok(p) = Params::try_from(&hash) else { return true };
    (p.m_cost(), p.t_cost(), p.p_cost()) != (params.m_cost(), params.t_cost(), params.p_cost())
}

fn random_password() -> String {
    let mut bytes = [0u8; 24];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy {
            workers: 2,
            queue: 4,
            ..PasswordPolicy::default()
        }
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let p = Passwords::new(&policy()).expect("policy");
        let long = "correct horse battery staple ".repeat(5); // 145 characters, never truncated
        let h = p.hash(&long).await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(p.verify(&long, Some(&h)).await, Ok(Verdict::Valid { rehash: None }));
        assert_eq!(p.verify(&long[..long.len() - 1], Some(&h)).await, Ok(Verdict::Invalid));
        assert_eq!(p.verify(&long, None).await, Ok(Verdict::Invalid));
    }

    /// Hashes written here verify with the reference implementation, and
    /// the reverse, so stored hashes move freely between the two.
    #[tokio::test]
    async fn hashes_interoperate_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let p = Passwords::new(&policy()).expect("policy");
        let ours = p.hash("correct horse").await.expect("hash");
        let reference = argon2::Argon2::default();
        let parsed = PasswordHash::new(&ours).expect("PHC string");
        assert!(reference.verify_password(b"correct horse", &parsed).is_ok(), "{ours}");
        assert!(reference.verify_password(b"correct hors", &parsed).is_err());
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let theirs = reference
            .hash_password(b"battery staple", &salt)
            .expect("reference hash")
            .to_string();
        assert_eq!(
            p.verify("battery staple", Some(&theirs)).await,
            Ok(Verdict::Valid { rehash: None })
        );
        assert_eq!(p.verify("battery stapl", Some(&theirs)).await, Ok(Verdict::Invalid));
        // A truncated hash output is refused, not compared on a prefix.
        let short = &theirs[..theirs.len() - 8];
        assert_eq!(p.verify("battery staple", Some(short)).await, Ok(Verdict::Invalid));
    }

    #[tokio::test]
    async fn a_hash_with_other_parameters_is_rehashed_on_success() {
        let stronger = PasswordPolicy { t_cost: 3, ..policy() };
        let old = Passwords::new(&policy())
            .expect("policy")
            .hash("pw")
            .await
            .expect("hash");
        let p = Passwords::new(&stronger).expect("policy");
        let Ok(Verdict::Valid { rehash: Some(new) }) = p.verify("pw", Some(&old)).await else {
            panic!("expected a rehash")
        };
        assert!(new.contains("m=19456,t=3,p=1"), "{new}");
        assert_eq!(
            p.verify("wrong", Some(&old)).await,
            Ok(Verdict::Invalid),
            "no rehash on failure"
        );
    }

    #[tokio::test]
    async fn absurd_stored_parameters_are_refused_not_computed() {
        let p = Passwords::new(&policy()).expect("policy");
        let h = p.hash("pw").await.expect("hash");
        let absurd = h.replace("m=19456", "m=4194304");
        let started = std::time::Instant::now();
        assert_eq!(p.verify("pw", Some(&absurd)).await, Ok(Verdict::Invalid));
        // 4 GiB would take seconds and might not even allocate.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        for other in [
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            "plain",
            "$2b$12$abc",
        ] {
            assert_eq!(p.verify("pw", Some(other)).await, Ok(Verdict::Invalid), "{other}");
        }
    }

    /// Hashing threads yield the CPU to request threads (nice +10).
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_runs_at_a_lower_priority_than_requests() {
        fn nice() -> i64 {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
            let after = &stat[stat.rfind(')').expect("comm") + 2..];
            after.split_whitespace().nth(16).expect("nice").parse().expect("number")
        }
        let p = Passwords::new(&policy()).expect("policy");
        let here = nice();
        let there = p.run(nice).await.expect("run");
        assert!(
            there >= (here + 5).min(19),
            "request thread {here}, hashing thread {there}"
        );
    }

    #[test]
    fn weak_policies_are_refused() {
        assert!(
            Passwords::new(&PasswordPolicy {
                m_cost_kib: 4096,
                ..policy()
            })
            .is_err()
        );
        assert!(Passwords::new(&PasswordPolicy { t_cost: 1, ..policy() }).is_err());
        assert!(
            Passwords::new(&PasswordPolicy {
                m_cost_kib: 8 * 1024 * 1024,
                ..policy()
            })
            .is_err()
        );
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_instead_of_waiting() {
        let p = Arc::new(
            Passwords::new(&PasswordPolicy {
                workers: 1,
                queue: 1,
                ..policy()
            })
            .expect("policy"),
        );
        let h = p.hash("pw").await.expect("hash");
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let (p, h) = (p.clone(), h.clone());
                tokio::spawn(async move { p.verify("pw", Some(&h)).await })
            })
            .collect();
        let mut busy = 0;
        for c in calls {
            if c.await.expect("task") == Err(Busy) {
                busy += 1;
            }
        }
        assert!(
            busy >= 1,
            "with 1 worker and 1 queue slot, 8 at once cannot all be admitted"
        );
    }

    #[tokio::test]
    async fn an_address_holds_its_places_until_its_hashes_are_done_even_if_it_hangs_up() {
        let p = Arc::new(
            Passwords::new(&PasswordPolicy {
                workers: 1,
                queue: 8,
                per_address: 2,
                ..policy()
            })
            .expect("policy"),
        );
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let same_64: IpAddr = "2001:db8:1:2::2".parse().expect("ip");
        let a = p.reserve(Some(ip)).expect("first place");
        let b = p.reserve(Some(ip)).expect("second place");
        assert_eq!(p.reserve(Some(ip)).expect_err("third"), SlotError::Address);
        let _v6 = p.reserve(Some(other)).expect("another address");
        let _v6b = p.reserve(Some(same_64)).expect("same /64, second place");
        assert_eq!(
            p.reserve(Some(same_64)).expect_err("same /64, third"),
            SlotError::Address
        );
        // Both hashes are queued, then their requests hang up.
        let jobs: Vec<_> = [a, b]
            .into_iter()
            .map(|slot| {
                let p = p.clone();
                tokio::spawn(async move { p.verify_reserved(slot, "pw", None).await })
            })
            .collect();
        tokio::task::yield_now().await;
        for j in &jobs {
            j.abort();
        }
        assert_eq!(
            p.reserve(Some(ip)).expect_err("still held by the queued jobs"),
            SlotError::Address
        );
        // Once the worker has been through them, the places are free.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if p.reserve(Some(ip)).is_ok() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "places never freed");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
