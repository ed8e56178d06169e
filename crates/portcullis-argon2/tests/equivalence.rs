//! Every backend this CPU supports computes exactly what RustCrypto's
//! `argon2` 0.5.3 computes for Argon2id v0x13, for fresh and reused hashers.

use argon2::{Algorithm, Argon2, Version};
use portcullis_argon2::{Backend, Error, Hasher, Params};

fn available_backends() -> Vec<Backend> {
    Backend::ALL.into_iter().filter(|b| b.available()).collect()
}

/// The reference: `argon2::Argon2::hash_password_into` with the same inputs.
fn reference(m: u32, t: u32, p: u32, password: &[u8], salt: &[u8], out_len: usize) -> Vec<u8> {
    let params = argon2::Params::new(m, t, p, None).expect("argon2 accepts the parameters");
    let mut out = vec![0u8; out_len];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, salt, &mut out)
        .expect("argon2 hashes");
    out
}

fn ours(hasher: &mut Hasher, password: &[u8], salt: &[u8], out_len: usize) -> Vec<u8> {
    let mut out = vec![0u8; out_len];
    hasher.hash_into(password, salt, &mut out).expect("hashes");
    out
}

/// Deterministic, varied bytes (xorshift), so inputs are not all ASCII.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn matches_the_reference_implementations_published_vector() {
    // phc-winner-argon2 `src/test.c`: Argon2id v0x13, t=2, m=2^16, p=1,
    // "password", "somesalt". Independent of the `argon2` crate.
    let expected = "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7";
    for backend in available_backends() {
        let mut hasher = Hasher::with_backend(Params::new(1 << 16, 2, 1).unwrap(), backend).unwrap();
        let out = ours(&mut hasher, b"password", b"somesalt", 32);
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected, "backend {backend}");
    }
}

#[test]
fn every_backend_matches_the_argon2_crate_across_parameters() {
    let password_lens = [0, 1, 64, 1000];
    let salt_lens = [8, 16, 33, 64];
    let mut case = 0u64;
    for p in [1, 2, 4] {
        for m in [8 * p, 64, 1024, 19456] {
            for t in [1, 2, 3] {
                case += 1;
                let password = bytes(password_lens[case as usize % 4], case);
                let salt = bytes(salt_lens[(case as usize / 4) % 4], case + 1000);
                let expected = reference(m, t, p, &password, &salt, 32);
                for backend in available_backends() {
                    let mut hasher = Hasher::with_backend(Params::new(m, t, p).unwrap(), backend).unwrap();
                    let out = ours(&mut hasher, &password, &salt, 32);
                    assert_eq!(out, expected, "backend {backend}, m={m} t={t} p={p} case {case}");
                }
            }
        }
    }
}

#[test]
fn every_backend_matches_for_every_password_salt_and_output_length() {
    // H' switches from one BLAKE2b call to a chain above 64 bytes of output.
    let out_lens = [4, 32, 63, 64, 65, 96, 97, 100, 1024];
    let mut case = 0u64;
    for password_len in [0, 1, 64, 1000] {
        for salt_len in [8, 9, 16, 64] {
            for out_len in out_lens {
                case += 1;
                let (m, t, p) = (16 + 8 * (case as u32 % 5), 1 + case as u32 % 3, 1 + case as u32 % 2);
                let password = bytes(password_len, case);
                let salt = bytes(salt_len, !case);
                let expected = reference(m, t, p, &password, &salt, out_len);
                for backend in available_backends() {
                    let mut hasher = Hasher::with_backend(Params::new(m, t, p).unwrap(), backend).unwrap();
                    let out = ours(&mut hasher, &password, &salt, out_len);
                    assert_eq!(out, expected, "backend {backend}, case {case}");
                }
            }
        }
    }
}

#[test]
fn a_reused_hasher_keeps_matching_across_many_calls() {
    for (m, t, p) in [(1024, 2, 1), (256, 1, 4), (19456, 2, 1)] {
        let params = Params::new(m, t, p).unwrap();
        let mut hashers: Vec<Hasher> = available_backends()
            .into_iter()
            .map(|backend| Hasher::with_backend(params, backend).unwrap())
            .collect();
        let calls = if m > 2048 { 4 } else { 24 };
        let first = reference(m, t, p, b"first", b"saltsalt", 32);
        for call in 0..calls {
            let password = bytes(call % 70, call as u64 + 7);
            let salt = bytes(8 + call % 57, call as u64 + 99);
            let out_len = [32, 4, 80, 1024][call % 4];
            let expected = reference(m, t, p, &password, &salt, out_len);
            for hasher in &mut hashers {
                assert_eq!(
                    ours(hasher, &password, &salt, out_len),
                    expected,
                    "{hasher:?} call {call}"
                );
                // Going back to earlier inputs gives the earlier answer.
                assert_eq!(ours(hasher, b"first", b"saltsalt", 32), first, "{hasher:?} call {call}");
            }
        }
    }
}

#[test]
fn with_backend_accepts_exactly_the_available_backends() {
    let params = Params::new(64, 1, 1).unwrap();
    assert!(Backend::Portable.available());
    assert!(Backend::detect().available());
    assert_eq!(Hasher::new(params).backend(), Backend::detect());
    // `detect` picks the first available backend in fastest-first order.
    assert_eq!(
        Backend::ALL.into_iter().find(|b| b.available()),
        Some(Backend::detect())
    );
    for backend in Backend::ALL {
        match Hasher::with_backend(params, backend) {
            Ok(hasher) => {
                assert!(backend.available(), "{backend}");
                assert_eq!(hasher.backend(), backend);
                assert_eq!(hasher.params(), &params);
            }
            Err(error) => {
                assert!(!backend.available(), "{backend}");
                assert_eq!(error, Error::BackendUnavailable(backend));
            }
        }
    }
}

#[test]
fn params_accept_exactly_what_the_argon2_crate_accepts() {
    for p in [0, 1, 2, 3, 4, 0xFF_FFFF, 0x100_0000] {
        for m in [0, 7, 8, 15, 16, 23, 24, 31, 32, 64, 0x7FFF_FFF8, u32::MAX] {
            for t in [0, 1, 2, u32::MAX] {
                let ours = Params::new(m, t, p);
                let theirs = argon2::Params::new(m, t, p, None);
                assert_eq!(ours.is_ok(), theirs.is_ok(), "m={m} t={t} p={p}: {ours:?}");
                if let Ok(params) = ours {
                    assert_eq!((params.m_cost_kib(), params.t_cost(), params.p_cost()), (m, t, p));
                }
            }
        }
    }
}

#[test]
fn out_of_range_inputs_are_refused() {
    let mut hasher = Hasher::new(Params::new(8, 1, 1).unwrap());
    let mut out = [0u8; 32];
    assert_eq!(hasher.hash_into(b"pw", b"short", &mut out), Err(Error::SaltLength));
    assert_eq!(hasher.hash_into(b"pw", &[0; 7], &mut out), Err(Error::SaltLength));
    assert_eq!(hasher.hash_into(b"pw", &[0; 65], &mut out), Err(Error::SaltLength));
    assert_eq!(hasher.hash_into(b"pw", &[0; 8], &mut [0; 3]), Err(Error::OutputLength));
    assert_eq!(
        hasher.hash_into(b"pw", &[0; 8], &mut [0; 1025]),
        Err(Error::OutputLength)
    );
    assert_eq!(hasher.hash_into(b"pw", &[0; 8], &mut []), Err(Error::OutputLength));
}

#[test]
fn debug_shows_params_and_backend_but_not_memory() {
    let hasher = Hasher::new(Params::new(8, 1, 1).unwrap());
    let debug = format!("{hasher:?}");
    assert!(debug.contains("m_cost_kib: 8") && debug.contains("backend"), "{debug}");
    assert!(!debug.contains("memory"), "{debug}");
}
