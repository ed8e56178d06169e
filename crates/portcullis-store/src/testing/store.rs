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

    /// Inserts an active user as an earlier release did: the name stored
    /// as given, unchecked, without a username key. Works on a database
    /// migrated to any version.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the id or the exact name is taken.
    async fn insert_unkeyed_user(&self, id: &str, username: &str, hash: &str, now: UnixTime) -> Result<(), StoreError>;

    /// Renames a user the way docs/operations.md tells an operator to
    /// resolve a username conflict: the name only, unchecked.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such user.
    async fn rename_user_unchecked(&self, id: &str, username: &str) -> Result<(), StoreError>;
}

impl SqlStore {
    /// Sets whichever of a user's status, password hash and scope are
    /// given, and `updated_at`; one statement for the three setters.
    async fn set_user_fields(
        &self,
        id: &str,
        (status, password_hash, scope): (Option<&str>, Option<&str>, Option<&str>),
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query(
                "UPDATE users SET status = COALESCE($1, status), password_hash = COALESCE($2, password_hash), \
                 scope = COALESCE($3, scope), updated_at = $5 WHERE id = $4",
            )
            .bind(status)
            .bind(password_hash)
            .bind(scope)
            .bind(id)
            .bind(now.0)
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
        self.set_user_fields(id, (Some(status.as_str()), None, None), now).await
    }

    async fn set_user_password_hash(&self, id: &str, hash: &str, now: UnixTime) -> Result<(), StoreError> {
        self.set_user_fields(id, (None, Some(hash), None), now).await
    }

    async fn set_user_scope(&self, id: &str, scope: &str, now: UnixTime) -> Result<(), StoreError> {
        self.set_user_fields(id, (None, None, Some(scope)), now).await
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

    async fn insert_unkeyed_user(&self, id: &str, username: &str, hash: &str, now: UnixTime) -> Result<(), StoreError> {
        with_pool!(&self.write, |c| {
            sqlx::query(
                "INSERT INTO users (id, username, password_hash, status, scope, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'active', 'read', $4, $4)",
            )
            .bind(id)
            .bind(username)
            .bind(hash)
            .bind(now.0)
            .execute(c)
            .await?;
        });
        Ok(())
    }

    async fn rename_user_unchecked(&self, id: &str, username: &str) -> Result<(), StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query("UPDATE users SET username = $1 WHERE id = $2")
                .bind(username)
                .bind(id)
                .execute(c)
                .await?
                .rows_affected()
        });
        one_row(done)
    }
}
