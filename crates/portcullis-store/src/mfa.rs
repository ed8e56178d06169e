//! A user's second factor: one TOTP authenticator (RFC 6238) and a set of
//! single-use recovery codes.
//!
//! The store keeps the authenticator's secret as the caller hands it over
//! (sealed under the key-encryption key when one is configured) and only
//! SHA-256 hashes of recovery codes. Every rule that makes a code single
//! use is one conditional write: an authenticator step is accepted only if
//! it is later than the last one accepted, a recovery code only if it has
//! not been used, so concurrent requests cannot both use one code.

use std::fmt;

use async_trait::async_trait;

use crate::db::with_pool;
use crate::{SqlStore, StoreError, UnixTime};

/// A user's authenticator. `Debug` shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Totp {
    /// The shared secret, as stored (sealed or plain).
    pub secret: Vec<u8>,
    /// When enrolment was confirmed with a first code; `None` while it
    /// waits for one (the authenticator is not asked for at sign-in).
    pub confirmed_at: Option<UnixTime>,
    /// The latest 30-second step whose code was accepted.
    pub last_step: i64,
    /// When enrolment started.
    pub created_at: UnixTime,
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Totp")
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// What a user has as a second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondFactor {
    /// The authenticator, confirmed or waiting for its first code.
    pub totp: Option<Totp>,
    /// Recovery codes not used yet.
    pub recovery_codes_left: i64,
}

impl SecondFactor {
    /// Whether sign-in asks for a second factor: a confirmed authenticator.
    #[must_use]
    pub fn is_enrolled(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.confirmed_at.is_some())
    }
}

/// One user's authenticator secret as stored, for re-encryption under a
/// new key-encryption key. `Debug` shows no secret.
#[derive(Clone)]
pub struct StoredTotpSecret {
    /// The user's id (the sealed secret's associated data names it).
    pub user_id: String,
    /// The secret as stored (sealed or plain).
    pub secret: Vec<u8>,
}

impl fmt::Debug for StoredTotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredTotpSecret")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// A new stored form of one user's authenticator secret. `Debug` shows no
/// secret.
#[derive(Clone)]
pub struct TotpSecretChange {
    /// The user's id.
    pub user_id: String,
    /// The stored bytes expected now.
    pub old: Vec<u8>,
    /// The bytes to store instead.
    pub new: Vec<u8>,
}

impl fmt::Debug for TotpSecretChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpSecretChange")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Second factors.
#[async_trait]
pub trait SecondFactorStore: Send + Sync {
    /// The user's second factor (no authenticator and no codes when the
    /// user has none, or does not exist).
    ///
    /// # Errors
    /// Only database failures.
    async fn second_factor(&self, user_id: &str) -> Result<SecondFactor, StoreError>;

    /// Starts enrolling an authenticator with `secret`, replacing one that
    /// was never confirmed.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the user has a confirmed
    /// authenticator; [`StoreError::NotFound`] when the user does not
    /// exist; database failures.
    async fn start_totp(&self, user_id: &str, secret: &[u8], now: UnixTime) -> Result<(), StoreError>;

    /// Confirms the user's pending authenticator with the code of `step`
    /// and stores the recovery codes (SHA-256 of each), replacing any.
    /// `false` when there is no pending authenticator.
    ///
    /// # Errors
    /// Only database failures.
    async fn confirm_totp(
        &self,
        user_id: &str,
        step: i64,
        recovery_hashes: &[[u8; 32]],
        now: UnixTime,
    ) -> Result<bool, StoreError>;

    /// Accepts the code of `step` for the user's confirmed authenticator:
    /// `true` for the one call that moved `last_step` forward, `false` when
    /// a code of this step or a later one was accepted already (a replay).
    ///
    /// # Errors
    /// Only database failures.
    async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;

    /// Uses one recovery code of the user: `true` for the one call that
    /// marked it used.
    ///
    /// # Errors
    /// Only database failures.
    async fn use_recovery_code(&self, user_id: &str, code_hash: &[u8; 32], now: UnixTime) -> Result<bool, StoreError>;

    /// Replaces the user's recovery codes (SHA-256 of each).
    ///
    /// # Errors
    /// Only database failures.
    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        recovery_hashes: &[[u8; 32]],
        now: UnixTime,
    ) -> Result<(), StoreError>;

    /// Removes the user's authenticator and recovery codes; `false` when
    /// there was nothing to remove.
    ///
    /// # Errors
    /// Only database failures.
    async fn delete_second_factor(&self, user_id: &str) -> Result<bool, StoreError>;

    /// Every stored authenticator secret (confirmed or pending), by user
    /// id.
    ///
    /// # Errors
    /// Only database failures.
    async fn totp_secrets(&self) -> Result<Vec<StoredTotpSecret>, StoreError>;

    /// Stores the new form of each secret, all in one transaction, each
    /// only if the stored bytes are still `old`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when a secret changed meanwhile (nothing
    /// is written then); database failures.
    async fn replace_totp_secrets(&self, changes: &[TotpSecretChange]) -> Result<(), StoreError>;
}

type TotpRow = (Vec<u8>, Option<i64>, i64, i64);

/// Replaces the user's recovery codes within the transaction `$tx` (either
/// backend's: the statements are the same, the transaction types differ).
macro_rules! put_recovery_codes {
    ($tx:ident, $user_id:expr, $hashes:expr, $now:expr) => {
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind($user_id)
            .execute(&mut *$tx)
            .await?;
        for hash in $hashes {
            sqlx::query(
                "INSERT INTO recovery_codes (code_hash, user_id, used_at, created_at) VALUES ($1, $2, NULL, $3)",
            )
            .bind(&hash[..])
            .bind($user_id)
            .bind($now.0)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

#[async_trait]
impl SecondFactorStore for SqlStore {
    async fn second_factor(&self, user_id: &str) -> Result<SecondFactor, StoreError> {
        let (totp, left): (Option<TotpRow>, (i64,)) = with_pool!(&self.read, |c| {
            let totp =
                sqlx::query_as("SELECT secret, confirmed_at, last_step, created_at FROM user_totp WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(c)
                    .await?;
            let left = sqlx::query_as("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
                .bind(user_id)
                .fetch_one(c)
                .await?;
            (totp, left)
        });
        Ok(SecondFactor {
            totp: totp.map(|(secret, confirmed_at, last_step, created_at)| Totp {
                secret,
                confirmed_at: confirmed_at.map(UnixTime),
                last_step,
                created_at: UnixTime(created_at),
            }),
            recovery_codes_left: left.0,
        })
    }

    async fn start_totp(&self, user_id: &str, secret: &[u8], now: UnixTime) -> Result<(), StoreError> {
        with_pool!(&self.write, |c| {
            let mut tx = c.begin().await?;
            let confirmed: Option<(Option<i64>,)> =
                sqlx::query_as("SELECT confirmed_at FROM user_totp WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if confirmed.is_some_and(|(at,)| at.is_some()) {
                return Err(StoreError::Conflict);
            }
            let done = sqlx::query(
                "INSERT INTO user_totp (user_id, secret, confirmed_at, last_step, created_at) \
                 SELECT id, $2, NULL, 0, $3 FROM users WHERE id = $1 \
                 ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, confirmed_at = NULL, \
                   last_step = 0, created_at = excluded.created_at \
                 WHERE user_totp.confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(secret)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            crate::users::one_row(done)?;
            tx.commit().await?;
            Ok(())
        })
    }

    async fn confirm_totp(
        &self,
        user_id: &str,
        step: i64,
        recovery_hashes: &[[u8; 32]],
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        with_pool!(&self.write, |c| {
            let mut tx = c.begin().await?;
            let done = sqlx::query(
                "UPDATE user_totp SET confirmed_at = $2, last_step = $3 \
                 WHERE user_id = $1 AND confirmed_at IS NULL",
            )
            .bind(user_id)
            .bind(now.0)
            .bind(step)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 0 {
                return Ok(false);
            }
            put_recovery_codes!(tx, user_id, recovery_hashes, now);
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query(
                "UPDATE user_totp SET last_step = $2 \
                 WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2",
            )
            .bind(user_id)
            .bind(step)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    async fn use_recovery_code(&self, user_id: &str, code_hash: &[u8; 32], now: UnixTime) -> Result<bool, StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query(
                "UPDATE recovery_codes SET used_at = $3 \
                 WHERE code_hash = $1 AND user_id = $2 AND used_at IS NULL",
            )
            .bind(&code_hash[..])
            .bind(user_id)
            .bind(now.0)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: &str,
        recovery_hashes: &[[u8; 32]],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        with_pool!(&self.write, |c| {
            let mut tx = c.begin().await?;
            put_recovery_codes!(tx, user_id, recovery_hashes, now);
            tx.commit().await?;
            Ok(())
        })
    }

    async fn delete_second_factor(&self, user_id: &str) -> Result<bool, StoreError> {
        with_pool!(&self.write, |c| {
            let mut tx = c.begin().await?;
            let totp = sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let codes = sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(totp + codes > 0)
        })
    }

    async fn totp_secrets(&self) -> Result<Vec<StoredTotpSecret>, StoreError> {
        let rows: Vec<(String, Vec<u8>)> = with_pool!(&self.read, |c| {
            sqlx::query_as("SELECT user_id, secret FROM user_totp ORDER BY user_id")
                .fetch_all(c)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(user_id, secret)| StoredTotpSecret { user_id, secret })
            .collect())
    }

    async fn replace_totp_secrets(&self, changes: &[TotpSecretChange]) -> Result<(), StoreError> {
        with_pool!(&self.write, |c| {
            let mut tx = c.begin().await?;
            for ch in changes {
                let n = sqlx::query("UPDATE user_totp SET secret = $1 WHERE user_id = $2 AND secret = $3")
                    .bind(&ch.new)
                    .bind(&ch.user_id)
                    .bind(&ch.old)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n != 1 {
                    // Dropping the transaction rolls every change back.
                    return Err(StoreError::Conflict);
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }
}
