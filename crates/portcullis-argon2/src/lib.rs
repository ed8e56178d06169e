//! Argon2id (version 0x13) raw hashing, bit-identical to the RustCrypto
//! `argon2` crate, with the memory-filling loop compiled for AVX-512, for
//! AVX2 and for the baseline target, and the fastest one the CPU supports
//! chosen at run time.
//!
//! Only what password hashing needs: no secret key, no associated data,
//! salts of 8–64 bytes, outputs of 4–1024 bytes. A [`Hasher`] owns its
//! memory and reuses it, so only its first hash pays for page faults.
//!
//! ```
//! use portcullis_argon2::{Hasher, Params};
//!
//! let mut hasher = Hasher::new(Params::new(64, 2, 1)?);
//! let mut out = [0u8; 32];
//! hasher.hash_into(b"password", b"somesalt", &mut out)?;
//! # Ok::<(), portcullis_argon2::Error>(())
//! ```
//!
//! Parts are adapted from RustCrypto's `argon2` 0.5.3 (MIT OR Apache-2.0,
//! Copyright RustCrypto Developers); see the headers of `block.rs`,
//! `fill.rs` and `hprime.rs`.

#[cfg(target_arch = "x86_64")]
mod avx512;
mod backend;
mod block;
mod fill;
mod hprime;
mod memory;
mod params;

use std::fmt;

use blake2::{Blake2b512, Digest};

pub use crate::backend::Backend;
use crate::block::Block;
use crate::fill::Geometry;
use crate::hprime::hprime;
pub use crate::params::Params;

/// Argon2 version 0x13 (RFC 9106).
const VERSION: u32 = 0x13;
/// Argon2 type number of Argon2id.
const ARGON2ID: u32 = 2;

/// Why parameters, inputs or a backend were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Less than 8 KiB of memory per lane.
    #[error("memory cost must be at least 8 KiB per lane")]
    MemoryTooLittle,
    /// Zero passes.
    #[error("time cost must be at least 1")]
    TimeTooSmall,
    /// Zero lanes, or more than 2^24 - 1.
    #[error("parallelism must be between 1 and 2^24 - 1")]
    LanesOutOfRange,
    /// Output buffer shorter than 4 or longer than 1024 bytes.
    #[error("output must be 4 to 1024 bytes")]
    OutputLength,
    /// Salt shorter than 8 or longer than 64 bytes.
    #[error("salt must be 8 to 64 bytes")]
    SaltLength,
    /// Password of 4 GiB or more.
    #[error("password must be shorter than 4 GiB")]
    PasswordTooLong,
    /// The CPU lacks the instructions the requested backend is compiled for.
    #[error("this CPU does not support the {0} backend")]
    BackendUnavailable(Backend),
}

/// An Argon2id v0x13 hasher for one set of [`Params`], owning its memory.
pub struct Hasher {
    params: Params,
    backend: Backend,
    memory: memory::Memory,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the memory: it is derived from the password.
        f.debug_struct("Hasher")
            .field("params", &self.params)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// A hasher using the fastest backend this CPU supports
    /// ([`Backend::detect`]). Allocates `m_cost_kib` KiB.
    pub fn new(params: Params) -> Hasher {
        Hasher::build(params, Backend::detect())
    }

    /// A hasher using the given backend. Allocates `m_cost_kib` KiB.
    ///
    /// # Errors
    ///
    /// [`Error::BackendUnavailable`] if this CPU does not support `backend`.
    pub fn with_backend(params: Params, backend: Backend) -> Result<Hasher, Error> {
        if !backend.available() {
            return Err(Error::BackendUnavailable(backend));
        }
        Ok(Hasher::build(params, backend))
    }

    /// Only called with an available backend: `fill::fill` relies on it.
    fn build(params: Params, backend: Backend) -> Hasher {
        let memory = memory::Memory::new(params.block_count());
        Hasher {
            params,
            backend,
            memory,
        }
    }

    /// The backend this hasher runs.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The cost parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Argon2id v0x13 of `password` and `salt`, filling all of `out` (the
    /// output length is `out.len()`), as `argon2::Argon2::hash_password_into`
    /// computes it without secret or associated data.
    ///
    /// # Errors
    ///
    /// [`Error::OutputLength`] unless `out` is 4–1024 bytes,
    /// [`Error::SaltLength`] unless `salt` is 8–64 bytes,
    /// [`Error::PasswordTooLong`] for a password of 4 GiB or more.
    #[allow(clippy::cast_possible_truncation)]
    pub fn hash_into(&mut self, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), Error> {
        if !(4..=1024).contains(&out.len()) {
            return Err(Error::OutputLength);
        }
        if !(8..=64).contains(&salt.len()) {
            return Err(Error::SaltLength);
        }
        let password_len = u32::try_from(password.len()).map_err(|_| Error::PasswordTooLong)?;

        // H0, RFC 9106 §3.2 step 1 (empty secret and associated data).
        let mut digest = Blake2b512::new();
        for word in [
            self.params.p_cost(),
            out.len() as u32,
            self.params.m_cost_kib(),
            self.params.t_cost(),
            VERSION,
            ARGON2ID,
            password_len,
        ] {
            digest.update(word.to_le_bytes());
        }
        digest.update(password);
        digest.update((salt.len() as u32).to_le_bytes());
        digest.update(salt);
        digest.update(0u32.to_le_bytes());
        digest.update(0u32.to_le_bytes());
        let h0 = digest.finalize();

        // The first two blocks of each lane: H'^1024(H0 || i || lane).
        let lane_length = self.params.lane_length();
        let mut bytes = [0u8; Block::SIZE];
        for (lane, blocks) in self.memory.blocks().chunks_exact_mut(lane_length).enumerate() {
            for (i, block) in blocks[..2].iter_mut().enumerate() {
                hprime(
                    &[&h0, &(i as u32).to_le_bytes(), &(lane as u32).to_le_bytes()],
                    &mut bytes,
                );
                *block = Block::from_bytes(&bytes);
            }
        }

        let geometry = Geometry {
            lanes: self.params.p_cost() as usize,
            lane_length,
            passes: self.params.t_cost() as usize,
        };
        fill::fill(self.backend, self.memory.blocks(), geometry);

        // XOR of the last block of every lane, hashed to the output length.
        let mut last = Block::ZERO;
        for blocks in self.memory.blocks().chunks_exact(lane_length) {
            last ^= &blocks[lane_length - 1];
        }
        hprime(&[&last.to_bytes()], out);
        Ok(())
    }
}
