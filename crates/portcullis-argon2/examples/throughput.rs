//! Hashes per second with N threads hashing at once (the ceiling of the
//! password grant on this machine), for comparison with the server's
//! password-grant throughput in the same run:
//!
//!     cargo run --release -p portcullis-argon2 --example throughput -- [threads] [seconds]

use std::time::{Duration, Instant};

use portcullis_argon2::{Hasher, Params};

fn main() {
    let mut args = std::env::args().skip(1);
    let threads: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let params = Params::new(19_456, 2, 1).expect("params");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let counts: Vec<u64> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(move || {
                    let mut hasher = Hasher::new(params);
                    let mut out = [0u8; 32];
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        hasher
                            .hash_into(b"correct horse battery staple", b"0123456789abcdef", &mut out)
                            .expect("hash");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("thread")).collect()
    });
    let total: u64 = counts.iter().sum();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{threads} threads, backend {}, {total} hashes in {secs:.1} s: {:.1} hashes/s ({:.2} ms per hash per thread)",
        Hasher::new(params).backend(),
        total as f64 / secs,
        secs * 1000.0 * threads as f64 / total as f64,
    );
}
