//! Throttle counters: fixed-window failure counts per key (an account, an
//! address, an account-and-address pair), shared by every instance through
//! the database.

use async_trait::async_trait;

use crate::db::with_relaxed_writer;
use crate::{SqlStore, StoreError, UnixTime};

/// A counter's state after a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleCount {
    /// Hits in the current window, this one included.
    pub count: i64,
    /// When the current window started; it ends `window` seconds later.
    pub window_start: UnixTime,
}

/// Throttle counters.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Counts one hit on `key` in a window of `window_secs`, atomically
    /// (one upsert): a window older than `window_secs` starts again at 1.
    ///
    /// # Errors
    /// Only database failures.
    async fn throttle_hit(&self, key: &str, window_secs: i64, now: UnixTime) -> Result<ThrottleCount, StoreError>;

    /// Takes one hit back from `key`'s current count (an attempt counted
    /// up front that turned out to succeed).
    ///
    /// # Errors
    /// Only database failures.
    async fn throttle_forgive(&self, key: &str) -> Result<(), StoreError>;

    /// Forgets `key` (e.g. after a successful sign-in).
    ///
    /// # Errors
    /// Only database failures.
    async fn throttle_clear(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes counters whose window started before `cutoff`; returns how
    /// many.
    ///
    /// # Errors
    /// Only database failures.
    async fn purge_throttle(&self, cutoff: UnixTime) -> Result<u64, StoreError>;
}

#[async_trait]
impl ThrottleStore for SqlStore {
    async fn throttle_hit(&self, key: &str, window_secs: i64, now: UnixTime) -> Result<ThrottleCount, StoreError> {
        // $3 is the oldest window start still current.
        let (count, start): (i64, i64) = with_relaxed_writer!(&self.write, |c| {
            sqlx::query_as(
                "INSERT INTO throttle_counters (key, window_start, count) VALUES ($1, $2, 1) \
                 ON CONFLICT (key) DO UPDATE SET \
                   count = CASE WHEN throttle_counters.window_start > $3 THEN throttle_counters.count + 1 ELSE 1 END, \
                   window_start = CASE WHEN throttle_counters.window_start > $3 \
                                       THEN throttle_counters.window_start ELSE $2 END \
                 RETURNING count, window_start",
            )
            .bind(key)
            .bind(now.0)
            .bind(now.0 - window_secs)
            .fetch_one(c)
            .await?
        });
        Ok(ThrottleCount {
            count,
            window_start: UnixTime(start),
        })
    }

    async fn throttle_forgive(&self, key: &str) -> Result<(), StoreError> {
        with_relaxed_writer!(&self.write, |c| {
            sqlx::query("UPDATE throttle_counters SET count = count - 1 WHERE key = $1 AND count > 0")
                .bind(key)
                .execute(c)
                .await?;
        });
        Ok(())
    }

    async fn throttle_clear(&self, key: &str) -> Result<(), StoreError> {
        with_relaxed_writer!(&self.write, |c| {
            sqlx::query("DELETE FROM throttle_counters WHERE key = $1")
                .bind(key)
                .execute(c)
                .await?;
        });
        Ok(())
    }

    async fn purge_throttle(&self, cutoff: UnixTime) -> Result<u64, StoreError> {
        Ok(with_relaxed_writer!(&self.write, |c| {
            sqlx::query("DELETE FROM throttle_counters WHERE window_start < $1")
                .bind(cutoff.0)
                .execute(c)
                .await?
                .rows_affected()
        }))
    }
}
