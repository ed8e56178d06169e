//! One-time codes sent by mail (email verification, password reset).
//!
//! The store keeps a salted hash of each code, never the code; the caller
//! hashes and compares. Every try is counted before the comparison, in one
//! conditional write, so concurrent guesses cannot get more tries than
//! allowed; a right code is deleted by the one request that uses it.

use std::fmt;

use async_trait::async_trait;

use crate::db::with_pool;
use crate::types::{new_id, text_enum};
use crate::{SqlStore, StoreError, UnixTime};

text_enum! {
    /// What a code is for.
    CodePurpose {
        /// Confirms the email address it was sent to.
        VerifyEmail => "verify_email",
        /// Lets the user set a new password.
        PasswordReset => "password_reset",
    }
}

/// A code to store (replacing the user's live code of the same purpose).
#[derive(Clone)]
pub struct NewCode {
    /// Whose code it is.
    pub user_id: String,
    /// What it is for.
    pub purpose: CodePurpose,
    /// The per-code salt.
    pub salt: Vec<u8>,
    /// SHA-256 of the salt followed by the code.
    pub code_hash: [u8; 32],
    /// The address a verification code was sent to.
    pub email: Option<String>,
    /// When it stops working.
    pub expires_at: UnixTime,
}

impl fmt::Debug for NewCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewCode")
            .field("user_id", &self.user_id)
            .field("purpose", &self.purpose)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A live code, with this try counted.
#[derive(Clone)]
pub struct CodeTry {
    /// The code's row id (to use or drop it).
    pub id: String,
    /// What it is for.
    pub purpose: CodePurpose,
    /// The per-code salt.
    pub salt: Vec<u8>,
    /// SHA-256 of the salt followed by the code.
    pub code_hash: Vec<u8>,
    /// The address a verification code was sent to.
    pub email: Option<String>,
    /// Tries counted so far, this one included.
    pub attempts: i64,
}

impl fmt::Debug for CodeTry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeTry")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// One-time codes.
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Stores a code; the user's earlier code of the same purpose is
    /// replaced (it stops working).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user does not exist; database
    /// failures.
    async fn put_code(&self, new: &NewCode, now: UnixTime) -> Result<(), StoreError>;

    /// Counts a try on the user's live code of `purpose` and returns it,
    /// unless it has expired or has had `max_tries` tries already (then
    /// `None`, as when there is no code).
    ///
    /// # Errors
    /// Only database failures.
    async fn try_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        max_tries: i64,
        now: UnixTime,
    ) -> Result<Option<CodeTry>, StoreError>;

    /// Deletes a code; `true` for the one call that deleted it (a right
    /// code is used once, even by concurrent requests).
    ///
    /// # Errors
    /// Only database failures.
    async fn delete_code(&self, id: &str) -> Result<bool, StoreError>;

    /// Deletes codes that expired before `now`; returns how many.
    ///
    /// # Errors
    /// Only database failures.
    async fn purge_codes(&self, now: UnixTime) -> Result<u64, StoreError>;
}

#[async_trait]
impl CodeStore for SqlStore {
    async fn put_code(&self, new: &NewCode, now: UnixTime) -> Result<(), StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query(
                "INSERT INTO one_time_codes \
                   (id, user_id, purpose, salt, code_hash, email, attempts, created_at, expires_at) \
                 SELECT $1, id, $3, $4, $5, $6, 0, $7, $8 FROM users WHERE id = $2 \
                 ON CONFLICT (user_id, purpose) DO UPDATE SET \
                   id = excluded.id, salt = excluded.salt, code_hash = excluded.code_hash, \
                   email = excluded.email, attempts = 0, created_at = excluded.created_at, \
                   expires_at = excluded.expires_at",
            )
            .bind(new_id())
            .bind(&new.user_id)
            .bind(new.purpose.as_str())
            .bind(&new.salt)
            .bind(&new.code_hash[..])
            .bind(new.email.as_deref())
            .bind(now.0)
            .bind(new.expires_at.0)
            .execute(c)
            .await?
            .rows_affected()
        });
        crate::users::one_row(done)
    }

    async fn try_code(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        max_tries: i64,
        now: UnixTime,
    ) -> Result<Option<CodeTry>, StoreError> {
        type Row = (String, String, Vec<u8>, Vec<u8>, Option<String>, i64);
        let row: Option<Row> = with_pool!(&self.write, |c| {
            sqlx::query_as(
                "UPDATE one_time_codes SET attempts = attempts + 1 \
                 WHERE user_id = $1 AND purpose = $2 AND expires_at > $3 AND attempts < $4 \
                 RETURNING id, purpose, salt, code_hash, email, attempts",
            )
            .bind(user_id)
            .bind(purpose.as_str())
            .bind(now.0)
            .bind(max_tries)
            .fetch_optional(c)
            .await?
        });
        row.map(|(id, purpose, salt, code_hash, email, attempts)| {
            Ok(CodeTry {
                id,
                purpose: CodePurpose::from_row(&purpose)?,
                salt,
                code_hash,
                email,
                attempts,
            })
        })
        .transpose()
    }

    async fn delete_code(&self, id: &str) -> Result<bool, StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query("DELETE FROM one_time_codes WHERE id = $1")
                .bind(id)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    async fn purge_codes(&self, now: UnixTime) -> Result<u64, StoreError> {
        Ok(with_pool!(&self.write, |c| {
            sqlx::query("DELETE FROM one_time_codes WHERE expires_at <= $1")
                .bind(now.0)
                .execute(c)
                .await?
                .rows_affected()
        }))
    }
}
