//! Mapping between the rows of `refresh_families` and the records of
//! [`super`].

use super::{CurrentToken, PreviousToken, RefreshFamily, RevokeReason, Sealed};
use crate::{StoreError, TokenHash, UnixTime};

/// A `refresh_families` row.
#[derive(Clone, sqlx::FromRow)]
pub(super) struct FamilyRow {
    pub(super) id: String,
    pub(super) user_id: String,
    pub(super) client_id: String,
    pub(super) scope: String,
    pub(super) device_label: Option<String>,
    pub(super) created_at: i64,
    pub(super) last_used_at: i64,
    pub(super) expires_at: i64,
    pub(super) revoked_at: Option<i64>,
    pub(super) revoke_reason: Option<String>,
    pub(super) generation: i64,
    pub(super) token_hash: Option<Vec<u8>>,
    pub(super) token_expires_at: i64,
    pub(super) prev_hash: Option<Vec<u8>>,
    pub(super) prev_used_at: Option<i64>,
    pub(super) successor: Option<Vec<u8>>,
    pub(super) dpop_jkt: Option<String>,
    pub(super) amr: Option<String>,
}

impl TryFrom<FamilyRow> for RefreshFamily {
    type Error = StoreError;
    fn try_from(r: FamilyRow) -> Result<Self, StoreError> {
        let previous = match (r.prev_hash, r.prev_used_at) {
            (Some(hash), Some(used_at)) => Some(PreviousToken {
                hash: TokenHash::from_row(&hash)?,
                used_at: UnixTime(used_at),
                successor: r.successor.map(Sealed),
            }),
            _ => None,
        };
        Ok(Self {
            revoke_reason: r.revoke_reason.as_deref().map(RevokeReason::from_row).transpose()?,
            id: r.id,
            user_id: r.user_id,
            client_id: r.client_id,
            scope: r.scope,
            device_label: r.device_label,
            created_at: UnixTime(r.created_at),
            last_used_at: UnixTime(r.last_used_at),
            expires_at: UnixTime(r.expires_at),
            revoked_at: r.revoked_at.map(UnixTime),
            current: CurrentToken {
                generation: r.generation,
                hash: r.token_hash.as_deref().map(TokenHash::from_row).transpose()?,
                expires_at: UnixTime(r.token_expires_at),
            },
            previous,
            dpop_jkt: r.dpop_jkt,
            amr: r.amr,
        })
    }
}

/// The family columns, in [`FamilyRow`] order.
pub(super) const FAMILY_COLUMNS: &str = "id, user_id, client_id, scope, device_label, created_at, last_used_at, \
                                         expires_at, revoked_at, revoke_reason, generation, token_hash, \
                                         token_expires_at, prev_hash, prev_used_at, successor, dpop_jkt, amr";
/// The family columns qualified by the alias `f`, for joins.
pub(super) const FAMILY_COLUMNS_F: &str = "f.id, f.user_id, f.client_id, f.scope, f.device_label, f.created_at, \
                                           f.last_used_at, f.expires_at, f.revoked_at, f.revoke_reason, \
                                           f.generation, f.token_hash, f.token_expires_at, f.prev_hash, \
                                           f.prev_used_at, f.successor, f.dpop_jkt, f.amr";
/// How many columns [`FAMILY_COLUMNS`] has.
pub(super) const FAMILY_COLUMN_COUNT: usize = 18;

impl FamilyRow {
    /// The family whose columns start at `base` (in [`FAMILY_COLUMNS`] order).
    pub(super) fn at<R: sqlx::Row>(row: &R, base: usize) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            id: row.try_get(base)?,
            user_id: row.try_get(base + 1)?,
            client_id: row.try_get(base + 2)?,
            scope: row.try_get(base + 3)?,
            device_label: row.try_get(base + 4)?,
            created_at: row.try_get(base + 5)?,
            last_used_at: row.try_get(base + 6)?,
            expires_at: row.try_get(base + 7)?,
            revoked_at: row.try_get(base + 8)?,
            revoke_reason: row.try_get(base + 9)?,
            generation: row.try_get(base + 10)?,
            token_hash: row.try_get(base + 11)?,
            token_expires_at: row.try_get(base + 12)?,
            prev_hash: row.try_get(base + 13)?,
            prev_used_at: row.try_get(base + 14)?,
            successor: row.try_get(base + 15)?,
            dpop_jkt: row.try_get(base + 16)?,
            amr: row.try_get(base + 17)?,
        })
    }
}
