//! Failed sign-in throttling (RFC 6749 §4.3.2: the server MUST protect the
//! password grant against brute force; OWASP ASVS: at most 100 failures per
//! hour per account).
//!
//! Two fixed-window counters per attempt, kept in the store so that every
//! instance shares them:
//! - per (username, client address): a small limit (default 10 per 15 min).
//!   An attacker hammering an account from one address is stopped here,
//!   while the owner, signing in from elsewhere, is not affected.
//! - per username: the account-wide cap (default 100 per hour). An attack
//!   from many addresses reaches it and the account is throttled until the
//!   window ends: it slows the attack to the cap; it never locks for longer
//!   than one window.
//!
//! Both are checked before any password hashing and count unknown usernames
//! exactly like real ones. A successful sign-in clears the (username,
//! address) counter only: success must not reset the account-wide cap, or an
//! attacker who knows one password could launder guesses against it.

use std::net::IpAddr;

use portcullis_store::{Store, UnixTime};

use crate::GrantError;

/// One fixed-window limit.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Failures allowed in a window.
    pub max: i64,
    /// Window length in seconds.
    pub window_secs: i64,
}

/// The throttling policy.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Per (username, client address).
    pub per_user_and_address: Limit,
    /// Per username, across addresses.
    pub per_user: Limit,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            per_user_and_address: Limit {
                max: 10,
                window_secs: 15 * 60,
            },
            per_user: Limit {
                max: 100,
                window_secs: 3600,
            },
        }
    }
}

fn keys(username: &str, ip: Option<IpAddr>) -> [String; 2] {
    let ip = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    [format!("pw:ua:{username}\u{1f}{ip}"), format!("pw:u:{username}")]
}

impl ThrottlePolicy {
    fn limits(&self) -> [Limit; 2] {
        [self.per_user_and_address, self.per_user]
    }

    /// Fails with [`GrantError::Throttled`] when either limit is reached.
    pub(crate) async fn check(
        &self,
        store: &dyn Store,
        username: &str,
        ip: Option<IpAddr>,
        now: UnixTime,
    ) -> Result<(), GrantError> {
        for (key, limit) in keys(username, ip).iter().zip(self.limits()) {
            let c = store.throttle_count(key, limit.window_secs, now).await?;
            if c.count >= limit.max {
                let ends = c.window_start.plus(limit.window_secs);
                let retry_after = u64::try_from(ends.0 - now.0).unwrap_or(1).max(1);
                return Err(GrantError::Throttled { retry_after });
            }
        }
        Ok(())
    }

    /// Counts a failed attempt on both counters.
    pub(crate) async fn failed(&self, store: &dyn Store, username: &str, ip: Option<IpAddr>, now: UnixTime) {
        for (key, limit) in keys(username, ip).iter().zip(self.limits()) {
            if let Err(e) = store.throttle_hit(key, limit.window_secs, now).await {
                tracing::warn!(error = %e, "could not count a failed sign-in");
            }
        }
    }

    /// Clears the (username, address) counter after a successful sign-in.
    pub(crate) async fn succeeded(&self, store: &dyn Store, username: &str, ip: Option<IpAddr>) {
        let [pair, _] = keys(username, ip);
        if let Err(e) = store.throttle_clear(&pair).await {
            tracing::warn!(error = %e, "could not clear a throttle counter");
        }
    }
}
