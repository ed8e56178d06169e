//! [`RefreshStore`] on the SQL store: sign-ins, rotations (dispatched to
//! the backend's rotation path), reads and clean-ups.

use async_trait::async_trait;

use super::rotate::{RotateJob, Won, refusal};
use super::rows::{
    FAMILY_COLUMN_COUNT, FAMILY_COLUMNS, FAMILY_COLUMNS_F, FamilyRow, TOKEN_COLUMN_COUNT, TOKEN_COLUMNS,
    TOKEN_COLUMNS_T, TokenRow,
};
use super::{NewFamily, RefreshFamily, RefreshStore, RefreshToken, Rotate, Rotation};
use crate::db::with_pool;
use crate::types::new_id;
use crate::{SqlStore, StoreError, TokenHash, UnixTime};

#[async_trait]
impl RefreshStore for SqlStore {
    async fn start_family(&self, new: &NewFamily, now: UnixTime) -> Result<(RefreshFamily, RefreshToken), StoreError> {
        let family_sql = format!(
            "INSERT INTO refresh_families (id, user_id, client_id, scope, device_label, created_at, last_used_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING {FAMILY_COLUMNS}"
        );
        let token_sql = format!(
            "INSERT INTO refresh_tokens (id, family_id, token_hash, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {TOKEN_COLUMNS}"
        );
        let (family, token): (FamilyRow, TokenRow) = with_pool!(&self.write, |c| {
            let mut tx = c.begin().await?;
            // Take the client's and the user's row locks, requiring both
            // active: a concurrent revoke of either is ordered before or
            // after this sign-in, never interleaved with it.
            let client = sqlx::query("UPDATE clients SET updated_at = updated_at WHERE id = $1 AND status = 'active'")
                .bind(&new.client_id)
                .execute(&mut *tx)
                .await?;
            let user = sqlx::query(
                "UPDATE users SET updated_at = updated_at \
                 WHERE id = $1 AND status = 'active' AND ($2 IS NULL OR password_hash = $2)",
            )
            .bind(&new.user_id)
            .bind(new.password_hash.as_deref())
            .execute(&mut *tx)
            .await?;
            if client.rows_affected() == 0 || user.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            // Holding the user's row lock, a revocation of the user is
            // either committed (and seen here) or waits for this sign-in.
            let revoked: Option<(i64,)> = sqlx::query_as(
                "SELECT revoked_at FROM revocations WHERE kind = 'user' AND subject = $1 AND revoked_at >= $2 LIMIT 1",
            )
            .bind(&new.user_id)
            .bind(new.not_revoked_since.0)
            .fetch_optional(&mut *tx)
            .await?;
            if revoked.is_some() {
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
                .fetch_one(&mut *tx)
                .await?;
            let token: TokenRow = sqlx::query_as(&token_sql)
                .bind(new_id())
                .bind(&family.id)
                .bind(new.first_token.0.to_vec())
                .bind(now.0)
                .bind(new.first_token_expires_at.min(new.expires_at).0)
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
            (family, token)
        });
        Ok((family.try_into()?, token.try_into()?))
    }

    async fn rotate_refresh(&self, r: &Rotate<'_>) -> Result<Rotation, StoreError> {
        let job = RotateJob::new(r);
        let won = match &self.write {
            #[cfg(feature = "sqlite")]
            crate::db::Pool::Sqlite(pool) => match &self.group_commit {
                Some(batcher) => batcher.rotate(job).await?,
                // A group of one, committed alone.
                None => super::sqlite::rotate_committed(pool, &[&job]).await?.pop().flatten(),
            },
            #[cfg(feature = "postgres")]
            crate::db::Pool::Postgres(pool) => super::postgres::rotate(pool, &job).await?,
        };
        if let Some(Won { parent, family, child }) = won {
            return Ok(Rotation::Rotated {
                family: family.try_into()?,
                parent: parent.try_into()?,
                child: child.try_into()?,
            });
        }
        // Not consumed: read why. The read happens after any concurrent
        // winner committed (PostgreSQL made us wait for it; SQLite
        // serialises writers), so a spent token shows its child here.
        match self.refresh_token_by_hash(r.presented).await {
            Ok((token, family)) => Ok(refusal(&token, &family, r.client_id, r.now)),
            Err(StoreError::NotFound) => Ok(Rotation::NotFound),
            Err(e) => Err(e),
        }
    }

    async fn refresh_token_by_hash(&self, hash: TokenHash) -> Result<(RefreshToken, RefreshFamily), StoreError> {
        // One query for both rows: this read is on every refresh.
        let sql = format!(
            "SELECT {TOKEN_COLUMNS_T}, {FAMILY_COLUMNS_F} FROM refresh_tokens t \
             JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = $1"
        );
        let (token, family): (TokenRow, FamilyRow) = with_pool!(&self.read, |c| {
            let row = sqlx::query(&sql).bind(hash.0.to_vec()).fetch_one(c).await?;
            (TokenRow::at(&row, 0)?, FamilyRow::at(&row, TOKEN_COLUMN_COUNT)?)
        });
        Ok((token.try_into()?, family.try_into()?))
    }

    async fn refresh_context(
        &self,
        hash: TokenHash,
    ) -> Result<(RefreshToken, RefreshFamily, crate::User, crate::Client), StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS_T}, {FAMILY_COLUMNS_F}, {user_columns}, {client_columns} FROM refresh_tokens t \
             JOIN refresh_families f ON f.id = t.family_id JOIN users u ON u.id = f.user_id \
             JOIN clients c ON c.id = f.client_id WHERE t.token_hash = $1",
            user_columns = crate::users::COLUMNS_U,
            client_columns = crate::clients::COLUMNS_C,
        );
        let (token, family, user, client) = with_pool!(&self.read, |c| {
            let row = sqlx::query(&sql).bind(hash.0.to_vec()).fetch_one(c).await?;
            (
                TokenRow::at(&row, 0)?,
                FamilyRow::at(&row, TOKEN_COLUMN_COUNT)?,
                crate::users::UserRow::at(&row, TOKEN_COLUMN_COUNT + FAMILY_COLUMN_COUNT)?,
                // After the user's 7 columns (`COLUMNS_U`).
                crate::clients::ClientRow::at(&row, TOKEN_COLUMN_COUNT + FAMILY_COLUMN_COUNT + 7)?,
            )
        });
        Ok((
            token.try_into()?,
            family.try_into()?,
            user.try_into()?,
            client.try_into()?,
        ))
    }

    async fn refresh_token_by_id(&self, id: &str) -> Result<RefreshToken, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM refresh_tokens WHERE id = $1");
        let row: TokenRow = with_pool!(&self.read, |c| sqlx::query_as(&sql).bind(id).fetch_one(c).await?);
        row.try_into()
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
        use std::sync::atomic::Ordering;
        // A token carries a sealed successor from the moment its child is
        // issued (same time) until that child is rotated, the family is
        // revoked, or this runs. So the tokens to clear are the parents of
        // children issued since the last run: a range of the `issued_at`
        // index, not a scan of every token (and no index on the columns a
        // rotation changes, which would keep PostgreSQL from updating in
        // place). The first run after start covers everything; later runs
        // overlap the previous one by a minute, for clocks that differ
        // between instances.
        let since = self.successors_cleared_to.load(Ordering::Relaxed);
        let since = if since == 0 { i64::MIN } else { since.saturating_sub(60) };
        let cleared = with_pool!(&self.write, |c| {
            sqlx::query(
                "UPDATE refresh_tokens SET successor = NULL \
                 WHERE successor IS NOT NULL AND used_at < $2 AND id IN \
                   (SELECT parent_id FROM refresh_tokens \
                    WHERE issued_at >= $1 AND issued_at < $2 AND parent_id IS NOT NULL)",
            )
            .bind(since)
            .bind(cutoff.0)
            .execute(c)
            .await?
            .rows_affected()
        });
        self.successors_cleared_to.fetch_max(cutoff.0, Ordering::Relaxed);
        Ok(cleared)
    }

    async fn purge_families(&self, cutoff: UnixTime) -> Result<u64, StoreError> {
        // Tokens go with their family (ON DELETE CASCADE).
        Ok(with_pool!(&self.write, |c| {
            sqlx::query("DELETE FROM refresh_families WHERE expires_at < $1 OR revoked_at < $1")
                .bind(cutoff.0)
                .execute(c)
                .await?
                .rows_affected()
        }))
    }
}
