//! BLAKE2b helpers: the variable-length hash H' of RFC 9106 §3.3.
//!
//! Adapted from RustCrypto's `argon2` 0.5.3 `src/blake2b_long.rs`
//! (MIT OR Apache-2.0, Copyright RustCrypto Developers).

use blake2::digest::{Digest, Update, VariableOutput};
use blake2::{Blake2b512, Blake2bVar};

/// Half a BLAKE2b-512 output: H' emits this much of each intermediate digest.
const HALF: usize = 32;

/// H'^T(inputs) with T = `out.len()`, which the callers keep within 1..=1024.
pub(crate) fn hprime(inputs: &[&[u8]], out: &mut [u8]) {
    let len = u32::try_from(out.len())
        .expect("H' output is at most 1024 bytes")
        .to_le_bytes();

    if out.len() <= 64 {
        let mut digest = Blake2bVar::new(out.len()).expect("BLAKE2b output is 1..=64 bytes");
        digest.update(&len);
        for input in inputs {
            digest.update(input);
        }
        digest.finalize_variable(out).expect("output length matches");
        return;
    }

    // V1 = H(T || inputs); each further V_i = H(V_{i-1}); the first 32 bytes
    // of every V_i but the last are emitted, and the last is sized to fit.
    let mut digest = Blake2b512::new();
    Digest::update(&mut digest, len);
    for input in inputs {
        Digest::update(&mut digest, input);
    }
    let mut last = digest.finalize();
    out[..HALF].copy_from_slice(&last[..HALF]);

    let mut written = HALF;
    while out.len() - written > 64 {
        last = Blake2b512::digest(last);
        out[written..written + HALF].copy_from_slice(&last[..HALF]);
        written += HALF;
    }

    let mut digest = Blake2bVar::new(out.len() - written).expect("33..=64 bytes remain");
    digest.update(&last);
    digest
        .finalize_variable(&mut out[written..])
        .expect("output length matches");
}
