//! The per-instance cache of DPoP proof `jti`s seen within the window.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use aws_lc_rs::digest;

/// Shards of the replay cache (a power of two).
const SHARDS: usize = 16;

/// The replay cache's key for a proof: its key's thumbprint and `jti`,
/// hashed (a `jti` is unique per key).
pub(super) fn replay_key(jkt: &str, jti: &str) -> u128 {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(jkt.as_bytes());
    ctx.update(b".");
    ctx.update(jti.as_bytes());
    let hash = ctx.finish();
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash.as_ref()[..16]);
    u128::from_le_bytes(first)
}

/// The `jti`s seen in the last window, in two generations per shard: a key
/// stays at least one window and at most two.
pub(super) struct Replay {
    shards: Vec<Mutex<Generations>>,
    window: i64,
}

#[derive(Default)]
struct Generations {
    current: HashSet<u128, BuildHasherDefault<KeyHasher>>,
    previous: HashSet<u128, BuildHasherDefault<KeyHasher>>,
    since: i64,
}

impl Replay {
    pub(super) fn new(window: i64) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Generations::default())).collect(),
            window: window.max(1),
        }
    }

    /// Records `key`; false if it was seen within the window.
    pub(super) fn first_use(&self, key: u128, now: i64) -> bool {
        #[allow(clippy::cast_possible_truncation, reason = "the low bits pick the shard")]
        let shard = &self.shards[(key as usize) & (SHARDS - 1)];
        let mut g = shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if now >= g.since.saturating_add(self.window) {
            if now >= g.since.saturating_add(self.window.saturating_mul(2)) {
                g.previous.clear();
                g.current.clear();
            } else {
                let current = std::mem::take(&mut g.current);
                g.previous = current;
            }
            g.since = now;
        }
        !g.previous.contains(&key) && g.current.insert(key)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let g = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                g.current.len() + g.previous.len()
            })
            .sum()
    }
}

/// The keys are already uniform hashes: their low bits are the hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        #[allow(clippy::cast_possible_truncation, reason = "the high bits pick the bucket")]
        let high = (n >> 64) as u64;
        self.0 = high;
    }
}
