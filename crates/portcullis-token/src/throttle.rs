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
//! Each attempt is counted on both, atomically, before any password hashing,
//! so that concurrent guesses cannot all slip past a check made before the
//! count; unknown usernames are counted exactly like real ones. An attempt
//! that succeeds is taken back from the account-wide counter and clears the
//! (username, address) one. Success never resets the account-wide counter,
//! or an attacker who knows one password could launder guesses against it.
//! IPv6 addresses count per /64, the block a single host usually holds.

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
    /// Sign-ups (`/account/v1/sign-up`) per client address, every attempt
    /// counted (default 10 per hour).
    pub sign_up_per_address: Limit,
    /// Sign-ups per client (app), every attempt counted (default 200 per
    /// hour).
    pub sign_up_per_client: Limit,
    /// Password reset requests and code tries per client address (default
    /// 20 per 15 min).
    pub reset_per_address: Limit,
    /// Password reset requests per account named, known or not (default 5
    /// per hour: each may send a mail).
    pub reset_per_account: Limit,
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
            sign_up_per_address: Limit {
                max: 10,
                window_secs: 3600,
            },
            sign_up_per_client: Limit {
                max: 200,
                window_secs: 3600,
            },
            reset_per_address: Limit {
                max: 20,
                window_secs: 15 * 60,
            },
            reset_per_account: Limit {
                max: 5,
                window_secs: 3600,
            },
        }
    }
}

/// The block an address counts as: the address itself for IPv4 (an
/// IPv4-mapped IPv6 address is its IPv4 address), its /64 for IPv6.
pub(crate) fn address_block(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// The address block as counter keys name it.
fn address_name(ip: Option<IpAddr>) -> String {
    match ip.map(address_block) {
        None => "unknown".to_owned(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(v4) => v4.to_string(),
    }
}

fn keys(username: &str, ip: Option<IpAddr>) -> [String; 2] {
    let ip = address_name(ip);
    [format!("pw:ua:{username}\u{1f}{ip}"), format!("pw:u:{username}")]
}

/// Counts one hit on each counter in order and fails at the first over its
/// limit (later ones are then not counted).
async fn admit_each(store: &dyn Store, counters: &[(String, Limit)], now: UnixTime) -> Result<(), GrantError> {
    for (key, limit) in counters {
        let c = store.throttle_hit(key, limit.window_secs, now).await?;
        if c.count > limit.max {
            let ends = c.window_start.plus(limit.window_secs);
            let retry_after = u64::try_from(ends.0 - now.0).unwrap_or(1).max(1);
            return Err(GrantError::Throttled { retry_after });
        }
    }
    Ok(())
}

impl ThrottlePolicy {
    /// Counts this attempt and fails with [`GrantError::Throttled`] when it
    /// is over either limit. The (username, address) limit is checked
    /// first, so a throttled address adds nothing to the account's count.
    /// `username` is the account's key (`Username::key`); second-factor
    /// codes tried outside sign-in (enrolment, removal) are counted here
    /// too, so they share the account's budget with passwords.
    ///
    /// # Errors
    /// [`GrantError::Throttled`] over either limit; a store failure.
    pub async fn admit(
        &self,
        store: &dyn Store,
        username: &str,
        ip: Option<IpAddr>,
        now: UnixTime,
    ) -> Result<(), GrantError> {
        let [pair, user] = keys(username, ip);
        admit_each(store, &[(pair, self.per_user_and_address), (user, self.per_user)], now).await
    }

    /// Counts a sign-up from `ip` through `client_id`: per address first,
    /// then per client.
    ///
    /// # Errors
    /// [`GrantError::Throttled`] over either limit; a store failure.
    pub async fn admit_sign_up(
        &self,
        store: &dyn Store,
        client_id: &str,
        ip: Option<IpAddr>,
        now: UnixTime,
    ) -> Result<(), GrantError> {
        let counters = [
            (format!("su:a:{}", address_name(ip)), self.sign_up_per_address),
            (format!("su:c:{client_id}"), self.sign_up_per_client),
        ];
        admit_each(store, &counters, now).await
    }

    /// Counts a password reset request or code try from `ip`; with
    /// `account` (a username key or an address as typed, known or not),
    /// a request for that account too.
    ///
    /// # Errors
    /// [`GrantError::Throttled`] over either limit; a store failure.
    pub async fn admit_reset(
        &self,
        store: &dyn Store,
        account: Option<&str>,
        ip: Option<IpAddr>,
        now: UnixTime,
    ) -> Result<(), GrantError> {
        let mut counters = vec![(format!("rs:a:{}", address_name(ip)), self.reset_per_address)];
        if let Some(account) = account {
            counters.push((format!("rs:u:{account}"), self.reset_per_account));
        }
        admit_each(store, &counters, now).await
    }

    /// The counters a successful sign-in clears (the (username, address)
    /// one) and takes its attempt back from (the account-wide one), for the
    /// store to update in the sign-in's own transaction.
    pub(crate) fn success_counters(username: &str, ip: Option<IpAddr>) -> (String, String) {
        let [pair, user] = keys(username, ip);
        (pair, user)
    }

    /// After a successful password check that did not end in a sign-in
    /// (e.g. a scope the user may not have): clears the (username,
    /// address) counter and takes the attempt back from the account-wide
    /// one.
    pub async fn succeeded(&self, store: &dyn Store, username: &str, ip: Option<IpAddr>) {
        let [pair, user] = keys(username, ip);
        if let Err(e) = store.throttle_clear(&pair).await {
            tracing::warn!(error = %e, "could not clear a throttle counter");
        }
        if let Err(e) = store.throttle_forgive(&user).await {
            tracing::warn!(error = %e, "could not update a throttle counter");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a = keys("u", Some("2001:db8:1:2:aaaa::1".parse().expect("ip")));
        let b = keys("u", Some("2001:db8:1:2:bbbb::9".parse().expect("ip")));
        let c = keys("u", Some("2001:db8:1:3::1".parse().expect("ip")));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            keys("u", Some("::ffff:10.0.0.1".parse().expect("ip"))),
            keys("u", Some("10.0.0.1".parse().expect("ip")))
        );
    }
}
