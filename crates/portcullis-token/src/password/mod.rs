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
//!   priority (nice +5 on Linux) than the threads serving requests: a
//!   sign-in flood uses the CPU that is left over, and refreshes, JWKS and
//!   health checks keep their latency (docs/benchmarks.md).
//! - While refreshes are in flight ([`Passwords::refreshing`]) and the CPU
//!   is short, the threads keep to the hashing jobs' share of the requests
//!   in flight ([`pace`]).
//! - Each worker reuses one memory block ([`portcullis_argon2::Hasher`]):
//!   a fresh 19 MiB block per hash costs ~40% more in page faults, and the
//!   memory in use stays at `workers` × m. The hash itself runs the fastest
//!   code the CPU supports (AVX-512, AVX2 or portable, chosen at start),
//!   bit-identical to the reference implementation.

mod pace;
mod phc;
mod pool;
mod slots;
pub mod strength;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;

use argon2::Params;

pub use pace::Refreshing;
use phc::{
    HasherPool, MAX_M_COST_KIB, MAX_P_COST, MAX_T_COST, hash_blocking, needs_rehash, random_password, verify_blocking,
};
pub use pool::Busy;
use pool::Workers;
use slots::Places;
pub use slots::{Slot, SlotError};
pub use strength::Refused;

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
    /// Shortest new password, in characters, for an account the password
    /// alone protects (default 15, at least 8; see [`strength`]).
    pub min_length: usize,
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
            min_length: 15,
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            queue: 64,
            per_address: 8,
        }
    }
}

impl PasswordPolicy {
    /// Checks a new password (one being set, not one signing in) against
    /// the rules of [`strength`]. `second_factor`: whether the account has
    /// a second factor.
    ///
    /// # Errors
    /// [`Refused`] with the rule the password breaks.
    pub fn check_new(&self, password: &str, second_factor: bool) -> Result<(), Refused> {
        strength::check(password, self.min_length, self.max_bytes, second_factor)
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
    workers: Workers,
    places: Places,
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
        let pool = || HasherPool::new(&params).map_err(|e| InvalidPolicy(e.to_string()));
        let hashers = Arc::new(pool()?);
        // On a pool of its own, dropped at once: an idle server holds no
        // hashing memory until the first sign-in.
        let dummy =
            hash_blocking(&pool()?, &params, &random_password()).map_err(|_| InvalidPolicy("hashing failed".into()))?;
        let workers = policy.workers.max(1);
        Ok(Self {
            dummy: dummy.into(),
            workers: Workers::start(workers)
                .map_err(|e| InvalidPolicy(format!("cannot start a hashing thread: {e}")))?,
            places: Places::new(workers + policy.queue, policy.per_address),
            max_bytes: policy.max_bytes,
            hashers,
            params,
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

    /// [`Passwords::hash`] in a place taken earlier with
    /// [`Passwords::reserve`] (a sign-up: it shares the per-address
    /// places of sign-ins).
    ///
    /// # Errors
    /// [`Busy`] when the hashing thread fails.
    pub async fn hash_reserved(&self, slot: Slot, password: &str) -> Result<String, Busy> {
        let (params, hashers) = (self.params.clone(), self.hashers.clone());
        let password = password.to_owned();
        self.workers
            .run_in(slot, move || {
                hash_blocking(&hashers, &params, &password).map_err(|_| Busy)
            })
            .await?
    }

    /// Counts a refresh in flight until the guard is dropped (hashing keeps
    /// to its share beside them; see [`pace`]).
    pub fn refreshing(&self) -> Refreshing {
        self.workers.refreshing()
    }

    /// Places in the pool taken now (hashing or waiting).
    #[must_use]
    pub fn in_use(&self) -> usize {
        self.places.in_use()
    }

    /// Takes a place in the pool for a sign-in from `ip`, without waiting.
    ///
    /// # Errors
    /// [`SlotError::Address`] when `ip` already holds `per_address` places,
    /// [`SlotError::Busy`] when the pool is full.
    pub fn reserve(&self, ip: Option<IpAddr>) -> Result<Slot, SlotError> {
        self.places.reserve(ip)
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
        self.workers
            .run_in(slot, move || {
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
        self.workers.run_in(slot, f).await
    }
}
