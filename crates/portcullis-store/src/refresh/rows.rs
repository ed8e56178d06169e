//! Mapping between the rows of `refresh_families` / `refresh_tokens` and
//! the records of [`super`].

use super::{RefreshFamily, RefreshToken, RevokeReason, Sealed};
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
}

impl TryFrom<FamilyRow> for RefreshFamily {
    type Error = StoreError;
    fn try_from(r: FamilyRow) -> Result<Self, StoreError> {
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
        })
    }
}

/// A `refresh_tokens` row.
#[derive(sqlx::FromRow)]
pub(super) struct TokenRow {
    pub(super) id: String,
    pub(super) family_id: String,
    pub(super) parent_id: Option<String>,
    pub(super) token_hash: Vec<u8>,
    pub(super) issued_at: i64,
    pub(super) expires_at: i64,
    pub(super) used_at: Option<i64>,
    pub(super) replaced_by: Option<String>,
    pub(super) successor: Option<Vec<u8>>,
}

impl TryFrom<TokenRow> for RefreshToken {
    type Error = StoreError;
    fn try_from(r: TokenRow) -> Result<Self, StoreError> {
        Ok(Self {
            hash: TokenHash::from_row(&r.token_hash)?,
            id: r.id,
            family_id: r.family_id,
            parent_id: r.parent_id,
            issued_at: UnixTime(r.issued_at),
            expires_at: UnixTime(r.expires_at),
            used_at: r.used_at.map(UnixTime),
            replaced_by: r.replaced_by,
            successor: r.successor.map(Sealed),
        })
    }
}

/// The family columns, in [`FamilyRow`] order.
pub(super) const FAMILY_COLUMNS: &str = "id, user_id, client_id, scope, device_label, created_at, last_used_at, expires_at, \
                              revoked_at, revoke_reason";
/// The token columns, in [`TokenRow`] order.
pub(super) const TOKEN_COLUMNS: &str =
    "id, family_id, parent_id, token_hash, issued_at, expires_at, used_at, replaced_by, successor";

/// The token columns qualified by the alias `t`, and the family columns by
/// `f`, for the joined read; `TOKEN_COLUMN_COUNT` is where the family's start.
pub(super) const TOKEN_COLUMNS_T: &str = "t.id, t.family_id, t.parent_id, t.token_hash, t.issued_at, t.expires_at, t.used_at, \
                               t.replaced_by, t.successor";
pub(super) const FAMILY_COLUMNS_F: &str = "f.id, f.user_id, f.client_id, f.scope, f.device_label, f.created_at, f.last_used_at, \
                                f.expires_at, f.revoked_at, f.revoke_reason";
pub(super) const TOKEN_COLUMN_COUNT: usize = 9;
/// How many columns [`FAMILY_COLUMNS`] has.
pub(super) const FAMILY_COLUMN_COUNT: usize = 10;

impl TokenRow {
    /// The token whose columns start at `base` (in [`TOKEN_COLUMNS`] order).
    pub(super) fn at<R: sqlx::Row>(row: &R, base: usize) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            id: row.try_get(base)?,
            family_id: row.try_get(base + 1)?,
            parent_id: row.try_get(base + 2)?,
            token_hash: row.try_get(base + 3)?,
            issued_at: row.try_get(base + 4)?,
            expires_at: row.try_get(base + 5)?,
            used_at: row.try_get(base + 6)?,
            replaced_by: row.try_get(base + 7)?,
            successor: row.try_get(base + 8)?,
        })
    }
}

impl FamilyRow {
    /// The family whose columns start at `base` (in [`FAMILY_COLUMNS`] order).
    pub(super) fn at<R: sqlx::Row>(row: &R, base: usize) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
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
        })
    }
}
