//! [`RefreshStore`] on the SQL store: sign-ins, rotations (dispatched to
//! the backend's rotation path), reads and clean-ups.

use async_trait::async_trait;

use super::rotate::{RotateJob, refusal};
use super::rows::{FAMILY_COLUMN_COUNT, FAMILY_COLUMNS, FAMILY_COLUMNS_F, FamilyRow};
use super::{NewFamily, RefreshFamily, RefreshStore, Rotate, Rotation, TokenKey};
use crate::db::with_pool;
use crate::types::new_id;
use crate::{SqlStore, StoreError, UnixTime};

#[async_trait]
impl RefreshStore for SqlStore {
    async fn start_family(&self, new: &NewFamily, now: UnixTime) -> Result<RefreshFamily, StoreError> {
        let family_sql = format!(
            "INSERT INTO refresh_families (id, user_id, client_id, scope, device_label, created_at, last_used_at, \
             expires_at, selector_hash, generation, token_hash, token_expires_at, dpop_jkt, amr) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, 1, $9, $10, $11, $12) RETURNING {FAMILY_COLUMNS}"
        );
        let family: FamilyRow = with_pool!(&self.write, |c| {
            let mut tx = c.begin().await?;
            // Take the client's and the user's row locks, requiring both
            // active: a concurrent revoke of either is ordered before or
            // after this sign-in, never interleaved with it. The user must
            // also still have the password hash the password was checked
            // against and the sessions epoch read before that check: an
            // end of every sign-in of theirs committed meanwhile changed
            // one or both (PostgreSQL re-reads the row after waiting for
            // its lock; SQLite has one writer at a time).
            let client = sqlx::query("UPDATE clients SET updated_at = updated_at WHERE id = $1 AND status = 'active'")
                .bind(&new.client_id)
                .execute(&mut *tx)
                .await?;
            let user = sqlx::query(
                "UPDATE users SET updated_at = updated_at \
                 WHERE id = $1 AND status = 'active' AND ($2 IS NULL OR password_hash = $2) AND sessions_epoch = $3",
            )
            .bind(&new.user_id)
            .bind(new.password_hash.as_deref())
            .bind(new.sessions_epoch)
            .execute(&mut *tx)
            .await?;
            if client.rows_affected() == 0 || user.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let family: FamilyRow = sqlx::query_as(&family_sql)
                .bind(new_id())
                .bind(&new.user_id)
                .bind(&new.client_id)
                .bind(&new.scope)
                .bind(&new.device_label)
                .bind(now.0)
                .bind(new.expires_at.0)
                .bind(new.selector.0.to_vec())
                .bind(new.first_token.0.to_vec())
                .bind(new.first_token_expires_at.min(new.expires_at).0)
                .bind(new.dpop_jkt.as_deref())
                .bind(new.amr.as_deref())
                .fetch_one(&mut *tx)
                .await?;
            if let Some(s) = &new.sign_in {
                sqlx::query("DELETE FROM throttle_counters WHERE key = $1")
                    .bind(&s.clear_counter)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE throttle_counters SET count = count - 1 WHERE key = $1 AND count > 0")
                    .bind(&s.forgive_counter)
                    .execute(&mut *tx)
                    .await?;
                crate::audit::bind_event!(sqlx::query(crate::audit::INSERT_SQL), now, s.audit)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            family
        });
        family.try_into()
    }

    async fn rotate_refresh(&self, r: &Rotate<'_>) -> Result<Rotation, StoreError> {
        let job = RotateJob::new(r);
        let won = match &self.group_commit {
            Some(batcher) => batcher.rotate(job).await?,
            // A group of one, committed alone.
            None => match &self.write {
                #[cfg(feature = "sqlite")]
                crate::db::Pool::Sqlite(pool) => super::sqlite::rotate_committed(pool, &[&job]).await?,
                #[cfg(feature = "postgres")]
                crate::db::Pool::Postgres(pool) => super::postgres::rotate_group(pool, &[&job]).await?,
            }
            .pop()
            .flatten(),
        };
        if let Some(family) = won {
            return Ok(Rotation::Rotated(family.try_into()?));
        }
        // Not rotated: read why. The read happens after any concurrent
        // winner committed (PostgreSQL made us wait for it; SQLite
        // serialises writers), so a spent token shows the winner's state.
        match self.family_by_id(r.family_id).await {
            Ok(family) => Ok(refusal(family, &r.presented, r.client_id, r.now)),
            Err(StoreError::NotFound) => Ok(Rotation::NotFound),
            Err(e) => Err(e),
        }
    }

    async fn family_by_token(&self, key: &TokenKey) -> Result<RefreshFamily, StoreError> {
        let sql = format!("SELECT {FAMILY_COLUMNS_F} {}", from_key(key, ""));
        let row: FamilyRow = with_pool!(&self.read, |c| sqlx::query_as(&sql)
            .bind(key_hash(key))
            .fetch_one(c)
            .await?);
        row.try_into()
    }

    async fn refresh_context(&self, key: &TokenKey) -> Result<(RefreshFamily, crate::User, crate::Client), StoreError> {
        let sql = format!(
            "SELECT {FAMILY_COLUMNS_F}, {user_columns}, {client_columns} {from}",
            user_columns = crate::users::COLUMNS_U,
            client_columns = crate::clients::COLUMNS_C,
            from = from_key(
                key,
                "JOIN users u ON u.id = f.user_id JOIN clients c ON c.id = f.client_id"
            ),
        );
        let (family, user, client) = with_pool!(&self.read, |c| {
            let row = sqlx::query(&sql).bind(key_hash(key)).fetch_one(c).await?;
            (
                FamilyRow::at(&row, 0)?,
                crate::users::UserRow::at(&row, FAMILY_COLUMN_COUNT)?,
                // After the user's columns (`COLUMNS_U`).
                crate::clients::ClientRow::at(&row, FAMILY_COLUMN_COUNT + crate::users::COLUMN_COUNT)?,
            )
        });
        Ok((family.try_into()?, user.try_into()?, client.try_into()?))
    }

    async fn family_by_id(&self, id: &str) -> Result<RefreshFamily, StoreError> {
        let sql = format!("SELECT {FAMILY_COLUMNS} FROM refresh_families WHERE id = $1");
        let row: FamilyRow = with_pool!(&self.read, |c| sqlx::query_as(&sql).bind(id).fetch_one(c).await?);
        row.try_into()
    }

    async fn live_families_for_user(&self, user_id: &str, now: UnixTime) -> Result<Vec<RefreshFamily>, StoreError> {
        let sql = format!(
            "SELECT {FAMILY_COLUMNS} FROM refresh_families \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY created_at DESC, id DESC"
        );
        let rows: Vec<FamilyRow> = with_pool!(&self.read, |c| sqlx::query_as(&sql)
            .bind(user_id)
            .bind(now.0)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(RefreshFamily::try_from).collect()
    }

    async fn clear_successors(&self, cutoff: UnixTime) -> Result<u64, StoreError> {
        super::cleanup::clear_successors(self, cutoff).await
    }

    async fn purge_families(&self, cutoff: UnixTime) -> Result<u64, StoreError> {
        super::cleanup::purge_families(self, cutoff).await
    }
}

/// The `FROM … WHERE` of a read by a presented token's key (bound as `$1`),
/// with `joins` after the family (alias `f`).
fn from_key(key: &TokenKey, joins: &str) -> String {
    match key {
        TokenKey::Selector(_) => format!("FROM refresh_families f {joins} WHERE f.selector_hash = $1"),
        TokenKey::Legacy(_) => format!(
            "FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id {joins} WHERE t.token_hash = $1"
        ),
    }
}

/// The hash a key is looked up by.
fn key_hash(key: &TokenKey) -> Vec<u8> {
    match key {
        TokenKey::Selector(h) | TokenKey::Legacy(h) => h.0.to_vec(),
    }
}
