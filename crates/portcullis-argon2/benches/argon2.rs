//! Argon2id at the sign-in parameters (m = 19456 KiB, t = 2, p = 1,
//! 32-byte output), per implementation:
//!
//! - `argon2_crate/fresh`: `argon2::Argon2::hash_password_into`, which
//!   allocates (and page-faults) its memory on every call.
//! - `argon2_crate/reused_memory`: `hash_password_into_with_memory` with one
//!   buffer for all calls.
//! - `portcullis/<backend>`: a reused [`portcullis_argon2::Hasher`] for every
//!   backend this CPU supports.
//!
//!     cargo bench -p portcullis-argon2 --bench argon2

use std::time::Duration;

use argon2::{Algorithm, Argon2, Version};
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_argon2::{Backend, Hasher, Params};

const M_COST: u32 = 19456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
const PASSWORD: &[u8] = b"correct horse battery staple";
const SALT: &[u8] = b"0123456789abcdef";

fn argon2_crate(c: &mut Criterion) {
    let params = argon2::Params::new(M_COST, T_COST, P_COST, Some(32)).expect("params");
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut group = c.benchmark_group("argon2_crate");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    group.bench_function("fresh", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            argon2.hash_password_into(PASSWORD, SALT, &mut out).expect("hash");
            out
        })
    });
    let mut memory = vec![argon2::Block::default(); params.block_count()];
    group.bench_function("reused_memory", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            argon2
                .hash_password_into_with_memory(PASSWORD, SALT, &mut out, &mut memory)
                .expect("hash");
            out
        })
    });
    group.finish();
}

fn portcullis(c: &mut Criterion) {
    let params = Params::new(M_COST, T_COST, P_COST).expect("params");
    let mut group = c.benchmark_group("portcullis");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    for backend in Backend::ALL.into_iter().filter(|b| b.available()) {
        let mut hasher = Hasher::with_backend(params, backend).expect("available");
        group.bench_function(backend.name(), |b| {
            b.iter(|| {
                let mut out = [0u8; 32];
                hasher.hash_into(PASSWORD, SALT, &mut out).expect("hash");
                out
            })
        });
    }
    group.finish();
}

criterion_group!(benches, argon2_crate, portcullis);
criterion_main!(benches);
