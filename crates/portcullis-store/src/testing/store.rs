//! Writes and reads that only tests use, kept out of the [`crate::Store`]
//! traits so that no server code can reach them: changing a user's
//! password or status without ending their sign-ins, for one, is what
//! [`crate::RevocationStore::update_and_revoke_user`] exists to prevent.

use async_trait::async_trait;

use crate::db::with_pool;
use crate::users::one_row;
use crate::{SqlStore, StoreError, ThrottleCount, UnixTime, UserStatus};

/// Test set-up on a [`SqlStore`]: import it (`use
/// portcullis_store::testing::TestingStore as _;`) where a test needs it.
#[async_trait]
pub trait TestingStore: Send + Sync {
    /// Enables or disables a user, revoking nothing.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such user.
    async fn set_user_status(&self, id: &str, status: UserStatus, now: UnixTime) -> Result<(), StoreError>;

    /// Replaces the password hash, revoking nothing.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such user.
    async fn set_user_password_hash(&self, id: &str, hash: &str, now: UnixTime) -> Result<(), StoreError>;

    /// Replaces the scopes the user may be granted.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such user.
    async fn set_user_scope(&self, id: &str, scope: &str, now: UnixTime) -> Result<(), StoreError>;

    /// The hits on `key` in its current window, without counting one; a
    /// count of zero starting `now` when the key has none or its window is
    /// over.
    ///
    /// # Errors
    /// Only database failures.
    async fn throttle_count(&self, key: &str, window_secs: i64, now: UnixTime) -> Result<ThrottleCount, StoreError>;
}

/// The user columns a test may set directly.
#[derive(Clone, Copy)]
enum UserColumn {
    Status,
    PasswordHash,
    Scope,
}

impl SqlStore {
    async fn set_user_column(
        &self,
        id: &str,
        column: UserColumn,
        value: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        // One fixed statement per column: no SQL is built from input.
        let sql = match column {
            UserColumn::Status => "UPDATE users SET status = $1, updated_at = $2 WHERE id = $3",
            UserColumn::PasswordHash => "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3",
            UserColumn::Scope => "UPDATE users SET scope = $1, updated_at = $2 WHERE id = $3",
        };
        let done = with_pool!(&self.write, |c| {
            sqlx::query(sql)
                .bind(value)
                .bind(now.0)
                .bind(id)
                .execute(c)
                .await?
                .rows_affected()
        });
        one_row(done)
    }
}

#[async_trait]
impl TestingStore for SqlStore {
    async fn set_user_status(&self, id: &str, status: UserStatus, now: UnixTime) -> Result<(), StoreError> {
        self.set_user_column(id, UserColumn::Status, status.as_str(), now).await
    }

    async fn set_user_password_hash(&self, id: &str, hash: &str, now: UnixTime) -> Result<(), StoreError> {
        self.set_user_column(id, UserColumn::PasswordHash, hash, now).await
    }

    async fn set_user_scope(&self, id: &str, scope: &str, now: UnixTime) -> Result<(), StoreError> {
        self.set_user_column(id, UserColumn::Scope, scope, now).await
    }

    async fn throttle_count(&self, key: &str, window_secs: i64, now: UnixTime) -> Result<ThrottleCount, StoreError> {
        let row: Option<(i64, i64)> = with_pool!(&self.read, |c| {
            sqlx::query_as("SELECT count, window_start FROM throttle_counters WHERE key = $1 AND window_start > $2")
                .bind(key)
                .bind(now.0 - window_secs)
                .fetch_optional(c)
                .await?
        });
        let (count, start) = row.unwrap_or((0, now.0));
        Ok(ThrottleCount {
            count,
            window_start: UnixTime(start),
        })
    }
}
