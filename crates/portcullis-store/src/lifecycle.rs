//! The ends of a user's life that touch their sign-ins: a password change
//! that keeps the sign-in it was made from, and deletion.
//!
//! Like every revocation ([`crate::revocations`]), each writes its effect
//! and its feed entries in one transaction.

use async_trait::async_trait;

use crate::db::with_pool;
use crate::refresh::RevokeReason;
use crate::revocations::{APPEND_SQL, EntryRow, REVOKE_FAMILIES_SQL, RevocationKind, UserUpdate, append_entry};
use crate::{SqlStore, StoreError, UnixTime};

/// Password changes that keep one sign-in, and deletion of users.
#[async_trait]
pub trait LifecycleStore: Send + Sync {
    /// Changes the user (a new password hash) and revokes every live
    /// family of theirs except `keep`, with a `family` feed entry for each
    /// (not a `user` entry, which would end `keep`'s access tokens too).
    /// Returns how many families were revoked.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such user.
    async fn update_and_revoke_other_families(
        &self,
        user_id: &str,
        update: &UserUpdate,
        keep: &str,
        reason: RevokeReason,
        now: UnixTime,
    ) -> Result<u64, StoreError>;

    /// Deletes the user with every sign-in (families and their tokens) and
    /// adds a `user` entry to the feed, so resource servers refuse the
    /// user's live access tokens. Returns how many live families (sign-ins
    /// not ended before) were deleted with them.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such user.
    async fn delete_user(&self, user_id: &str, now: UnixTime) -> Result<u64, StoreError>;
}

#[async_trait]
impl LifecycleStore for SqlStore {
    async fn update_and_revoke_other_families(
        &self,
        user_id: &str,
        update: &UserUpdate,
        keep: &str,
        reason: RevokeReason,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let sql = format!("{REVOKE_FAMILIES_SQL} AND user_id = $3 AND id <> $4 RETURNING id");
        with_pool!(&self.write, |c, d| {
            let mut tx = c.begin().await?;
            // The user's row lock first, as sign-ins take it: no family
            // can start between the change and the revocations.
            let found = sqlx::query(
                "UPDATE users SET status = COALESCE($2, status), password_hash = COALESCE($3, password_hash), \
                 updated_at = $4 WHERE id = $1",
            )
            .bind(user_id)
            .bind(update.status.map(crate::UserStatus::as_str))
            .bind(update.password_hash.as_deref())
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if found == 0 {
                return Err(StoreError::NotFound);
            }
            let revoked: Vec<(String,)> = sqlx::query_as(&sql)
                .bind(now.0)
                .bind(reason.as_str())
                .bind(user_id)
                .bind(keep)
                .fetch_all(&mut *tx)
                .await?;
            for (family,) in &revoked {
                append_entry!(tx, d, RevocationKind::Family, family.as_str(), now);
            }
            tx.commit().await?;
            Ok(revoked.len() as u64)
        })
    }

    async fn delete_user(&self, user_id: &str, now: UnixTime) -> Result<u64, StoreError> {
        with_pool!(&self.write, |c, d| {
            let mut tx = c.begin().await?;
            // Lock the row first: a sign-in in flight either committed its
            // family (deleted below) or waits and then finds no user.
            let found = sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if found == 0 {
                return Err(StoreError::NotFound);
            }
            let (live,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM refresh_families WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
            )
            .bind(user_id)
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
            // Explicit deletes rather than the foreign keys' cascade, so
            // nothing depends on how a connection was opened.
            sqlx::query(
                "DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM refresh_families WHERE user_id = $1)",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            for table in ["user_totp", "recovery_codes"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM refresh_families WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            append_entry!(tx, d, RevocationKind::User, user_id, now);
            tx.commit().await?;
            Ok(u64::try_from(live).unwrap_or(0))
        })
    }
}
