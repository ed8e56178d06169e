//! Revocation: cutting off a family, a user or a client, and the feed that
//! tells resource servers about it.
//!
//! Every revocation writes its effect (families marked revoked, client
//! status) and its feed entry in one transaction, so the feed never misses
//! a cut-off and never announces one that did not happen.

use async_trait::async_trait;

use crate::clients::ClientStatus;
use crate::db::with_pool;
use crate::refresh::RevokeReason;
use crate::types::text_enum;
use crate::{RefreshStore as _, SqlStore, StoreError, UnixTime};

text_enum! {
    /// What a revocation-feed entry cuts off. A resource server rejects an
    /// access token when an entry matches it and `revoked_at >= iat`.
    RevocationKind {
        /// Every token of a client (`client_id`).
        Client => "client",
        /// Every token of a user (`sub`).
        User => "user",
        /// Every token of one sign-in / device (`sid`).
        Family => "family",
        /// One access token (`jti`).
        Jti => "jti",
    }
}

/// A change made together with a user revocation.
#[derive(Clone, Default)]
pub struct UserUpdate {
    /// A new status.
    pub status: Option<crate::UserStatus>,
    /// A new password hash (PHC).
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for UserUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserUpdate")
            .field("status", &self.status)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// One entry of the revocation feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEntry {
    /// Position in the feed; strictly increasing in commit order, so a
    /// reader that has seen cursor `n` needs only entries after `n`.
    pub cursor: i64,
    /// What is cut off.
    pub kind: RevocationKind,
    /// The id of the client, user, family or token.
    pub subject: String,
    /// When it was revoked.
    pub revoked_at: UnixTime,
}

/// Revocations and the feed.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Revokes one family: every token of it becomes unusable at once (one
    /// UPDATE of the family row), and a `family` entry joins the feed.
    /// Returns `false`, writing nothing, when it was revoked already.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such family.
    async fn revoke_family(&self, family_id: &str, reason: RevokeReason, now: UnixTime) -> Result<bool, StoreError>;

    /// Revokes every live family of a user and adds a `user` entry to the
    /// feed, as [`RevocationStore::update_and_revoke_user`] with no change.
    /// Returns how many families were revoked.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such user.
    async fn revoke_user(&self, user_id: &str, reason: RevokeReason, now: UnixTime) -> Result<u64, StoreError>;

    /// Changes the user (disable, or set a new password hash) and revokes
    /// every live family with a `user` feed entry, in one transaction: the
    /// change never lands without the revocation, nor the reverse. The
    /// user's [`sessions_epoch`](crate::User::sessions_epoch) goes up by
    /// one with it, so a sign-in in flight is refused.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such user.
    async fn update_and_revoke_user(
        &self,
        user_id: &str,
        update: &UserUpdate,
        reason: RevokeReason,
        now: UnixTime,
    ) -> Result<u64, StoreError>;

    /// Marks a client revoked, revokes its live families and adds a
    /// `client` entry to the feed. Returns how many families were revoked;
    /// revoking a revoked client again writes nothing and returns 0.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such client.
    async fn revoke_client(&self, client_id: &str, now: UnixTime) -> Result<u64, StoreError>;

    /// Adds an entry to the feed without other effect (e.g. one access
    /// token's `jti`).
    ///
    /// # Errors
    /// Only database failures.
    async fn append_revocation(
        &self,
        kind: RevocationKind,
        subject: &str,
        now: UnixTime,
    ) -> Result<RevocationEntry, StoreError>;

    /// The latest time `subject` of `kind` was revoked, if ever.
    ///
    /// # Errors
    /// Only database failures.
    async fn revoked_at(&self, kind: RevocationKind, subject: &str) -> Result<Option<UnixTime>, StoreError>;

    /// Deletes feed entries revoked before `cutoff` (tokens they concern
    /// have expired); cursors of the others do not change. Returns how
    /// many were deleted.
    ///
    /// # Errors
    /// Only database failures.
    async fn purge_revocations(&self, cutoff: UnixTime) -> Result<u64, StoreError>;

    /// Up to `limit` feed entries with a cursor greater than `after`, in
    /// cursor order.
    ///
    /// # Errors
    /// Only database failures.
    async fn revocations_since(&self, after: i64, limit: u32) -> Result<Vec<RevocationEntry>, StoreError>;
}

#[derive(sqlx::FromRow)]
pub(crate) struct EntryRow {
    cursor: i64,
    kind: String,
    subject: String,
    revoked_at: i64,
}

impl TryFrom<EntryRow> for RevocationEntry {
    type Error = StoreError;
    fn try_from(r: EntryRow) -> Result<Self, StoreError> {
        Ok(Self {
            kind: RevocationKind::from_row(&r.kind)?,
            cursor: r.cursor,
            subject: r.subject,
            revoked_at: UnixTime(r.revoked_at),
        })
    }
}

pub(crate) const APPEND_SQL: &str = "INSERT INTO revocations (kind, subject, revoked_at) VALUES ($1, $2, $3) RETURNING cursor, kind, subject, revoked_at";

/// Appends a feed entry inside the transaction `$tx` of dialect `$d`.
macro_rules! append_entry {
    ($tx:expr, $d:expr, $kind:expr, $subject:expr, $now:expr) => {{
        if let Some(lock) = $d.feed_lock() {
            sqlx::query(lock).bind($d.feed_lock_key()).execute(&mut *$tx).await?;
        }
        let row: EntryRow = sqlx::query_as(APPEND_SQL)
            .bind($kind.as_str())
            .bind($subject)
            .bind($now.0)
            .fetch_one(&mut *$tx)
            .await?;
        row
    }};
}
pub(crate) use append_entry;

/// Revoking a family also forgets its sealed successor.
pub(crate) const REVOKE_FAMILIES_SQL: &str = "UPDATE refresh_families SET revoked_at = $1, revoke_reason = $2, successor = NULL \
                                   WHERE revoked_at IS NULL AND expires_at > $1";

#[async_trait]
impl RevocationStore for SqlStore {
    async fn revoke_family(&self, family_id: &str, reason: RevokeReason, now: UnixTime) -> Result<bool, StoreError> {
        let revoked = with_pool!(&self.write, |c, d| {
            let mut tx = c.begin().await?;
            let n = sqlx::query(
                "UPDATE refresh_families SET revoked_at = $1, revoke_reason = $2, successor = NULL \
                 WHERE id = $3 AND revoked_at IS NULL",
            )
            .bind(now.0)
            .bind(reason.as_str())
            .bind(family_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                append_entry!(tx, d, RevocationKind::Family, family_id, now);
                tx.commit().await?;
            }
            n == 1
        });
        if !revoked {
            // Tell "already revoked" from "no such family".
            self.family_by_id(family_id).await?;
        }
        Ok(revoked)
    }

    async fn revoke_user(&self, user_id: &str, reason: RevokeReason, now: UnixTime) -> Result<u64, StoreError> {
        self.update_and_revoke_user(user_id, &UserUpdate::default(), reason, now)
            .await
    }

    async fn update_and_revoke_user(
        &self,
        user_id: &str,
        update: &UserUpdate,
        reason: RevokeReason,
        now: UnixTime,
    ) -> Result<u64, StoreError> {
        let sql = format!("{REVOKE_FAMILIES_SQL} AND user_id = $3");
        with_pool!(&self.write, |c, d| {
            let mut tx = c.begin().await?;
            // The user's row lock first (it also proves the user exists):
            // sign-ins take it too, so none can slip a family in between.
            // The new sessions epoch refuses the sign-ins whose password
            // check began before this (see `NewFamily::sessions_epoch`).
            let found = sqlx::query(
                "UPDATE users SET status = COALESCE($2, status), password_hash = COALESCE($3, password_hash), \
                 updated_at = CASE WHEN $2 IS NULL AND $3 IS NULL THEN updated_at ELSE $4 END, \
                 sessions_epoch = sessions_epoch + 1 WHERE id = $1",
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
            let n = sqlx::query(&sql)
                .bind(now.0)
                .bind(reason.as_str())
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            append_entry!(tx, d, RevocationKind::User, user_id, now);
            tx.commit().await?;
            Ok(n)
        })
    }

    async fn revoke_client(&self, client_id: &str, now: UnixTime) -> Result<u64, StoreError> {
        let sql = format!("{REVOKE_FAMILIES_SQL} AND client_id = $3");
        with_pool!(&self.write, |c, d| {
            let mut tx = c.begin().await?;
            let changed = sqlx::query("UPDATE clients SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4")
                .bind(ClientStatus::Revoked.as_str())
                .bind(now.0)
                .bind(client_id)
                .bind(ClientStatus::Active.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                // Unknown, or revoked already (then nothing is left to do:
                // sign-ins need an active client, so no family is live).
                let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM clients WHERE id = $1")
                    .bind(client_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                return if exists.is_some() {
                    Ok(0)
                } else {
                    Err(StoreError::NotFound)
                };
            }
            let n = sqlx::query(&sql)
                .bind(now.0)
                .bind(RevokeReason::ClientRevoked.as_str())
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            append_entry!(tx, d, RevocationKind::Client, client_id, now);
            tx.commit().await?;
            Ok(n)
        })
    }

    async fn append_revocation(
        &self,
        kind: RevocationKind,
        subject: &str,
        now: UnixTime,
    ) -> Result<RevocationEntry, StoreError> {
        let row = with_pool!(&self.write, |c, d| {
            let mut tx = c.begin().await?;
            let row = append_entry!(tx, d, kind, subject, now);
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    async fn revoked_at(&self, kind: RevocationKind, subject: &str) -> Result<Option<UnixTime>, StoreError> {
        let row: Option<(Option<i64>,)> = with_pool!(&self.read, |c| {
            sqlx::query_as("SELECT MAX(revoked_at) FROM revocations WHERE kind = $1 AND subject = $2")
                .bind(kind.as_str())
                .bind(subject)
                .fetch_optional(c)
                .await?
        });
        Ok(row.and_then(|(t,)| t).map(UnixTime))
    }

    async fn purge_revocations(&self, cutoff: UnixTime) -> Result<u64, StoreError> {
        Ok(with_pool!(&self.write, |c| {
            sqlx::query("DELETE FROM revocations WHERE revoked_at < $1")
                .bind(cutoff.0)
                .execute(c)
                .await?
                .rows_affected()
        }))
    }

    async fn revocations_since(&self, after: i64, limit: u32) -> Result<Vec<RevocationEntry>, StoreError> {
        let rows: Vec<EntryRow> = with_pool!(&self.read, |c| {
            sqlx::query_as(
                "SELECT cursor, kind, subject, revoked_at FROM revocations WHERE cursor > $1 ORDER BY cursor LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(c)
            .await?
        });
        rows.into_iter().map(RevocationEntry::try_from).collect()
    }
}
