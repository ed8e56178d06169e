//! Writes and reads that only tests use, kept out of the [`crate::Store`]
//! traits so that no server code can reach them: changing a user's
//! password or status without ending their sign-ins, for one, is what
//! [`crate::RevocationStore::update_and_revoke_user`] exists to prevent.

use async_trait::async_trait;

use crate::db::with_pool;
use crate::users::one_row;
use crate::{Sealed, SqlStore, StoreError, ThrottleCount, TokenHash, UnixTime, UserStatus};

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

    /// Inserts a public client with the password and refresh_token grants
    /// and the scope `read`, with only the columns version 4 had (on a
    /// database migrated to version 4, see [`SqlStore::migrate_to`]).
    ///
    /// # Errors
    /// Only database failures.
    async fn insert_v4_client(&self, id: &str, now: UnixTime) -> Result<(), StoreError>;

    /// Renames a user the way docs/operations.md tells an operator to
    /// resolve a username conflict: the name only, unchecked.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such user.
    async fn rename_user_unchecked(&self, id: &str, username: &str) -> Result<(), StoreError>;
    /// How many rows the refresh tables hold (to check that a family's
    /// state stays constant in size).
    ///
    /// # Errors
    /// Only database failures.
    async fn refresh_row_counts(&self) -> Result<RefreshRowCounts, StoreError>;

    /// Makes a family look like one that started before constant state
    /// (migration 5): no selector, generation 0. Its current token is kept.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such family.
    async fn forget_family_selector(&self, family_id: &str) -> Result<(), StoreError>;

    /// Inserts a family row with only the columns versions before constant
    /// state wrote (on a database migrated to version 4 at most, see
    /// [`SqlStore::migrate_to`]).
    ///
    /// # Errors
    /// Any database error.
    async fn insert_legacy_family(&self, family: &LegacyFamily) -> Result<(), StoreError>;

    /// Inserts a `refresh_tokens` row as versions before constant state
    /// wrote them; refused once migration 5 is applied.
    ///
    /// # Errors
    /// Any database error.
    async fn insert_legacy_token(&self, token: &LegacyToken) -> Result<(), StoreError>;
}

/// Row counts of the refresh tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshRowCounts {
    /// Rows of `refresh_families`.
    pub families: i64,
    /// Rows of `refresh_tokens` (tokens issued before constant state).
    pub tokens: i64,
}

/// A family as versions before constant state stored it.
#[derive(Debug, Clone)]
pub struct LegacyFamily {
    /// Family id.
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// Granted scope.
    pub scope: String,
    /// When the user signed in (also its last use).
    pub created_at: UnixTime,
    /// Absolute expiry.
    pub expires_at: UnixTime,
}

/// A `refresh_tokens` row, as versions before constant state stored one
/// per refresh.
#[derive(Debug, Clone)]
pub struct LegacyToken {
    /// Token id.
    pub id: String,
    /// Its family.
    pub family_id: String,
    /// The token it replaced.
    pub parent_id: Option<String>,
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// Idle expiry.
    pub expires_at: UnixTime,
    /// When it was consumed.
    pub used_at: Option<UnixTime>,
    /// The token that replaced it.
    pub replaced_by: Option<String>,
    /// Its child, sealed.
    pub successor: Option<Sealed>,
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

    async fn refresh_row_counts(&self) -> Result<RefreshRowCounts, StoreError> {
        let (families, tokens): (i64, i64) = with_pool!(&self.read, |c| {
            sqlx::query_as("SELECT (SELECT count(*) FROM refresh_families), (SELECT count(*) FROM refresh_tokens)")
                .fetch_one(c)
                .await?
        });
        Ok(RefreshRowCounts { families, tokens })
    }

    async fn forget_family_selector(&self, family_id: &str) -> Result<(), StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query("UPDATE refresh_families SET selector_hash = NULL, generation = 0 WHERE id = $1")
                .bind(family_id)
                .execute(c)
                .await?
                .rows_affected()
        });
        one_row(done)
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

    async fn insert_v4_client(&self, id: &str, now: UnixTime) -> Result<(), StoreError> {
        with_pool!(&self.write, |c| {
            sqlx::query(
                "INSERT INTO clients (id, name, secret_hash, grant_types, scope, default_scope, introspect, status, \
                 created_at, updated_at) VALUES ($1, 'App', NULL, 'password refresh_token', 'read', 'read', FALSE, \
                 'active', $2, $2)",
            )
            .bind(id)
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

    async fn insert_legacy_family(&self, f: &LegacyFamily) -> Result<(), StoreError> {
        with_pool!(&self.write, |c| {
            sqlx::query(
                "INSERT INTO refresh_families (id, user_id, client_id, scope, device_label, created_at, \
                 last_used_at, expires_at) VALUES ($1, $2, $3, $4, NULL, $5, $5, $6)",
            )
            .bind(&f.id)
            .bind(&f.user_id)
            .bind(&f.client_id)
            .bind(&f.scope)
            .bind(f.created_at.0)
            .bind(f.expires_at.0)
            .execute(c)
            .await?;
        });
        Ok(())
    }

    async fn insert_legacy_token(&self, t: &LegacyToken) -> Result<(), StoreError> {
        with_pool!(&self.write, |c| {
            sqlx::query(
                "INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, expires_at, used_at, \
                 replaced_by, successor) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&t.id)
            .bind(&t.family_id)
            .bind(t.parent_id.as_deref())
            .bind(t.hash.0.to_vec())
            .bind(t.issued_at.0)
            .bind(t.expires_at.0)
            .bind(t.used_at.map(|u| u.0))
            .bind(t.replaced_by.as_deref())
            .bind(t.successor.as_ref().map(|s| s.0.clone()))
            .execute(c)
            .await?;
        });
        Ok(())
    }
}
