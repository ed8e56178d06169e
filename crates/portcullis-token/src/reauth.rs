//! Re-authentication: a signed-in user proves, with their current
//! password, that they are at the keyboard before a change to their own
//! account that a stolen access token must not allow (a password change,
//! deleting the account).
//!
//! The check is a sign-in's: counted by the same throttle counters (so
//! guesses here and at the token endpoint share one budget), hashed in the
//! same bounded pool, and a user without a password is checked against the
//! dummy hash.

use std::net::IpAddr;

use portcullis_store::{UnixTime, User};

use crate::password::{SlotError, Verdict};
use crate::{GrantError, TokenService};

impl TokenService {
    /// Checks `password` against `user`'s stored hash.
    ///
    /// # Errors
    /// [`GrantError::InvalidGrant`] when it is wrong (or the user has no
    /// password); [`GrantError::Throttled`] past the throttle's limits;
    /// [`GrantError::AddressBusy`] / [`GrantError::Saturated`] when the
    /// hashing pool refuses; [`GrantError::Unavailable`] when the store
    /// fails.
    pub async fn reauthenticate(
        &self,
        user: &User,
        password: &str,
        ip: Option<IpAddr>,
        now: UnixTime,
    ) -> Result<(), GrantError> {
        let passwords = self.passwords();
        if password.is_empty() || !passwords.acceptable_length(password) {
            return Err(GrantError::InvalidGrant);
        }
        let slot = passwords.reserve(ip).map_err(|e| match e {
            SlotError::Busy => GrantError::Saturated,
            SlotError::Address => GrantError::AddressBusy,
        })?;
        let key = user.username.key();
        let throttle = &self.config().throttle;
        throttle.admit(self.store(), key, ip, now).await?;
        let verdict = passwords
            .verify_reserved(slot, password, user.password_hash.as_deref())
            .await
            .map_err(|_| GrantError::Saturated)?;
        match verdict {
            Verdict::Valid { .. } => {
                throttle.succeeded(self.store(), key, ip).await;
                Ok(())
            }
            Verdict::Invalid => Err(GrantError::InvalidGrant),
        }
    }
}
