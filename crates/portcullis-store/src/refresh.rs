//! Refresh-token families and their rotating tokens.
//!
//! A family is one sign-in on one device: it is created by the password
//! grant, holds the user, client, scope and device label, and ends when it
//! is revoked or reaches its absolute expiry. Each refresh consumes the
//! family's current token and adds its child (RFC 9700 §4.14.2). Only the
//! SHA-256 of a token is stored.

use async_trait::async_trait;

use crate::db::with_pool;
use crate::types::{new_id, text_enum};
use crate::{SqlStore, StoreError, TokenHash, UnixTime};

/// One sign-in on one device: the unit that a "sign out this device" or a
/// reuse detection revokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshFamily {
    /// Family id, carried in access tokens as `sid`.
    pub id: String,
    /// The user who signed in.
    pub user_id: String,
    /// The client the tokens are bound to (RFC 6749 §6).
    pub client_id: String,
    /// Space-delimited scope granted at sign-in; refreshes never widen it.
    pub scope: String,
    /// A name for the device, as given at sign-in.
    pub device_label: Option<String>,
    /// When the user signed in.
    pub created_at: UnixTime,
    /// When a token of the family was last used.
    pub last_used_at: UnixTime,
    /// Absolute expiry: no refresh after this, however often used.
    pub expires_at: UnixTime,
    /// When the family was revoked, if it was.
    pub revoked_at: Option<UnixTime>,
    /// Why the family was revoked.
    pub revoke_reason: Option<RevokeReason>,
}

impl RefreshFamily {
    /// Whether a token of this family may still be used at `now`.
    #[must_use]
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

text_enum! {
    /// Why a refresh family was revoked.
    RevokeReason {
        /// The user signed out (or signed out this device).
        SignOut => "sign_out",
        /// A spent refresh token was presented again (RFC 9700 §4.14.2).
        Reuse => "reuse",
        /// The token was revoked through RFC 7009.
        Revoked => "revoked",
        /// An admin revoked the user's tokens or disabled the user.
        UserRevoked => "user_revoked",
        /// An admin revoked the client.
        ClientRevoked => "client_revoked",
        /// The user's password was changed.
        PasswordChanged => "password_changed",
        /// An admin signed out this device.
        Admin => "admin",
    }
}

/// A refresh token's successor, sealed by the token endpoint under a key
/// derived from the consumed token. The store cannot open it; `Debug`
/// does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub Vec<u8>);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed([redacted])")
    }
}

/// One refresh token of a family, as stored (the token itself never is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// Token id.
    pub id: String,
    /// The family it belongs to.
    pub family_id: String,
    /// The token this one replaced; `None` for the first of a family.
    pub parent_id: Option<String>,
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// When it was issued.
    pub issued_at: UnixTime,
    /// Idle expiry: it must be used before this.
    pub expires_at: UnixTime,
    /// When it was consumed by a refresh, if it was.
    pub used_at: Option<UnixTime>,
    /// The id of the token that replaced it.
    pub replaced_by: Option<String>,
    /// The replacing token, sealed by the caller under a key only the
    /// holder of this token can derive (see [`Rotate::successor`]). Kept
    /// only while it may be needed: cleared when the successor is itself
    /// rotated, when the family is revoked, and by
    /// [`RefreshStore::clear_successors`] after the retry window.
    pub successor: Option<Sealed>,
}

/// What is needed to start a family (a password-grant sign-in).
#[derive(Debug, Clone)]
pub struct NewFamily {
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// Space-delimited granted scope.
    pub scope: String,
    /// Optional device name.
    pub device_label: Option<String>,
    /// Absolute expiry of the family.
    pub expires_at: UnixTime,
    /// SHA-256 of the family's first refresh token.
    pub first_token: TokenHash,
    /// Idle expiry of the first token (capped at the family's expiry).
    pub first_token_expires_at: UnixTime,
    /// The sign-in is refused if the user's tokens were revoked at or after
    /// this time (when the password check began): a password change or a
    /// "sign out everywhere" that lands while the password is being
    /// checked must not let this sign-in through.
    pub not_revoked_since: UnixTime,
    /// The password hash the password was checked against; the sign-in is
    /// refused if the stored hash is no longer this one.
    pub password_hash: Option<String>,
    /// The sign-in's own bookkeeping, written in the same transaction as
    /// the family (one durable write per sign-in instead of four).
    pub sign_in: Option<SignInRecord>,
}

/// What a successful sign-in records besides its family.
#[derive(Debug, Clone)]
pub struct SignInRecord {
    /// A throttle counter to delete (the (username, address) one).
    pub clear_counter: String,
    /// A throttle counter to take this attempt back from (the account-wide
    /// one; never below zero).
    pub forgive_counter: String,
    /// The audit event of the sign-in.
    pub audit: crate::NewAuditEvent,
}

/// A refresh: consume `presented` and issue its child, atomically.
#[derive(Debug, Clone)]
pub struct Rotate<'a> {
    /// SHA-256 of the token the client presented.
    pub presented: TokenHash,
    /// The authenticated client; a token of another client is not touched.
    pub client_id: &'a str,
    /// SHA-256 of the new token.
    pub child: TokenHash,
    /// Idle expiry of the new token (capped at the family's expiry).
    pub child_expires_at: UnixTime,
    /// The new token sealed under a key derived from the presented one,
    /// stored on the consumed token so that a retry of the same refresh can
    /// be answered with the same new token. The store cannot open it.
    pub successor: Option<Sealed>,
    /// The time of the request.
    pub now: UnixTime,
    /// An audit event to record with the rotation, in the same
    /// transaction (so it costs no extra durable write).
    pub audit: Option<crate::NewAuditEvent>,
}

/// The outcome of [`RefreshStore::rotate_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// This caller consumed the token; its child is stored (committed)
    /// before this returns.
    Rotated {
        /// The family, with `last_used_at` updated.
        family: RefreshFamily,
        /// The consumed token.
        parent: RefreshToken,
        /// The new token.
        child: RefreshToken,
    },
    /// The token had been consumed already, by this or a concurrent request:
    /// a retry or a replay. `token.replaced_by` names the child.
    Spent {
        /// The family (possibly live, possibly revoked since).
        family: RefreshFamily,
        /// The spent token, with `used_at` and `replaced_by`.
        token: RefreshToken,
    },
    /// The token exists and is unspent but may not be used: expired, its
    /// family revoked or expired, or it belongs to another client. Nothing
    /// was written.
    Refused(Refusal),
    /// No token has this hash.
    NotFound,
}

/// Why an unspent refresh token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The token is past its idle expiry.
    TokenExpired,
    /// The family is past its absolute expiry.
    FamilyExpired,
    /// The family was revoked.
    FamilyRevoked,
    /// The token was issued to another client.
    WrongClient,
}

/// Refresh families and tokens.
#[async_trait]
pub trait RefreshStore: Send + Sync {
    /// Starts a family with its first token, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the user or client does not exist or
    /// is not active, the password hash changed, or the user's tokens were
    /// revoked since [`NewFamily::not_revoked_since`];
    /// [`StoreError::Conflict`] when the token hash is already stored.
    async fn start_family(&self, new: &NewFamily, now: UnixTime) -> Result<(RefreshFamily, RefreshToken), StoreError>;

    /// Consumes a refresh token and stores its child, as one atomic
    /// conditional write: under any concurrency exactly one caller gets
    /// [`Rotation::Rotated`] for a given token; the others get
    /// [`Rotation::Spent`] naming the winner's child.
    ///
    /// # Errors
    /// Only database failures; every refusal is a [`Rotation`] variant.
    async fn rotate_refresh(&self, rotate: &Rotate<'_>) -> Result<Rotation, StoreError>;

    /// A token and its family, by the token's hash.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no token has this hash.
    async fn refresh_token_by_hash(&self, hash: TokenHash) -> Result<(RefreshToken, RefreshFamily), StoreError>;

    /// A token, its family, the family's user and the family's client, by
    /// the token's hash, in one read (what every refresh needs before it
    /// rotates, including the client to authenticate the request with).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when no token has this hash.
    async fn refresh_context(
        &self,
        hash: TokenHash,
    ) -> Result<(RefreshToken, RefreshFamily, crate::User, crate::Client), StoreError>;

    /// A token by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    async fn refresh_token_by_id(&self, id: &str) -> Result<RefreshToken, StoreError>;

    /// A family by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    async fn family_by_id(&self, id: &str) -> Result<RefreshFamily, StoreError>;

    /// The user's live families (their signed-in devices), newest first.
    ///
    /// # Errors
    /// Only database failures.
    async fn live_families_for_user(&self, user_id: &str, now: UnixTime) -> Result<Vec<RefreshFamily>, StoreError>;

    /// Forgets the sealed successors of tokens consumed before `cutoff`
    /// (the end of the retry window), so that a database copy plus an old
    /// token cannot reveal a live one. Returns how many were cleared.
    ///
    /// # Errors
    /// Only database failures.
    async fn clear_successors(&self, cutoff: UnixTime) -> Result<u64, StoreError>;

    /// Deletes families (with their tokens) that expired or were revoked
    /// before `cutoff`. Returns how many families were deleted.
    ///
    /// # Errors
    /// Only database failures.
    async fn purge_families(&self, cutoff: UnixTime) -> Result<u64, StoreError>;
}

#[derive(Clone, sqlx::FromRow)]
struct FamilyRow {
    id: String,
    user_id: String,
    client_id: String,
    scope: String,
    device_label: Option<String>,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    revoke_reason: Option<String>,
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

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    family_id: String,
    parent_id: Option<String>,
    token_hash: Vec<u8>,
    issued_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
    replaced_by: Option<String>,
    successor: Option<Vec<u8>>,
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

const FAMILY_COLUMNS: &str = "id, user_id, client_id, scope, device_label, created_at, last_used_at, expires_at, \
                              revoked_at, revoke_reason";
const TOKEN_COLUMNS: &str =
    "id, family_id, parent_id, token_hash, issued_at, expires_at, used_at, replaced_by, successor";

/// The token columns qualified by the alias `t`, and the family columns by
/// `f`, for the joined read; `TOKEN_COLUMN_COUNT` is where the family's start.
const TOKEN_COLUMNS_T: &str = "t.id, t.family_id, t.parent_id, t.token_hash, t.issued_at, t.expires_at, t.used_at, \
                               t.replaced_by, t.successor";
const FAMILY_COLUMNS_F: &str = "f.id, f.user_id, f.client_id, f.scope, f.device_label, f.created_at, f.last_used_at, \
                                f.expires_at, f.revoked_at, f.revoke_reason";
const TOKEN_COLUMN_COUNT: usize = 9;

impl TokenRow {
    /// The token whose columns start at `base` (in [`TOKEN_COLUMNS`] order).
    fn at<R: sqlx::Row>(row: &R, base: usize) -> Result<Self, sqlx::Error>
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
    fn at<R: sqlx::Row>(row: &R, base: usize) -> Result<Self, sqlx::Error>
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

/// A rotation as the writer needs it: owned, so that it can be queued for a
/// group commit, with the child's id chosen up front.
pub(crate) struct RotateJob {
    presented: Vec<u8>,
    client_id: String,
    child_id: String,
    child: Vec<u8>,
    child_expires_at: i64,
    successor: Option<Vec<u8>>,
    now: i64,
    audit: Option<crate::NewAuditEvent>,
}

impl RotateJob {
    fn new(r: &Rotate<'_>) -> Self {
        Self {
            presented: r.presented.0.to_vec(),
            client_id: r.client_id.to_owned(),
            child_id: new_id(),
            child: r.child.0.to_vec(),
            child_expires_at: r.child_expires_at.0,
            successor: r.successor.as_ref().map(|s| s.0.clone()),
            now: r.now.0,
            audit: r.audit.clone(),
        }
    }
}

/// The rows of a rotation that consumed its token.
pub(crate) struct Won {
    parent: TokenRow,
    family: FamilyRow,
    child: TokenRow,
}

/// A rotation inside the caller's SQLite write transaction. `None` when the
/// token was not consumed (nothing written).
///
/// SQLite has one writer, so nothing can change between these statements:
/// once the conditional UPDATE consumed the token (it checks the family too),
/// the family is still live for the rest of the transaction.
#[cfg(feature = "sqlite")]
pub(crate) async fn rotate_sqlite(conn: &mut sqlx::SqliteConnection, r: &RotateJob) -> Result<Option<Won>, StoreError> {
    let consume_sql = format!(
        "UPDATE refresh_tokens SET used_at = $1, replaced_by = $2, successor = $5 \
         WHERE token_hash = $3 AND used_at IS NULL AND expires_at > $1 \
           AND family_id IN (SELECT id FROM refresh_families \
                             WHERE client_id = $4 AND revoked_at IS NULL AND expires_at > $1) \
         RETURNING {TOKEN_COLUMNS}"
    );
    let touch_sql = format!(
        "UPDATE refresh_families SET last_used_at = $1 \
         WHERE id = $2 AND revoked_at IS NULL AND expires_at > $1 RETURNING {FAMILY_COLUMNS}"
    );
    let child_sql = format!(
        "INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
    );
    let parent: Option<TokenRow> = sqlx::query_as(&consume_sql)
        .bind(r.now)
        .bind(&r.child_id)
        .bind(&r.presented)
        .bind(&r.client_id)
        .bind(r.successor.as_deref())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(parent) = parent else { return Ok(None) };
    let family: FamilyRow = sqlx::query_as(&touch_sql)
        .bind(r.now)
        .bind(&parent.family_id)
        .fetch_optional(&mut *conn)
        .await?
        // Unreachable with one writer; if it ever happens the caller rolls
        // the consumption back with the transaction.
        .ok_or(StoreError::Backend)?;
    let child: TokenRow = sqlx::query_as(&child_sql)
        .bind(&r.child_id)
        .bind(&parent.family_id)
        .bind(&parent.id)
        .bind(&r.child)
        .bind(r.now)
        .bind(r.child_expires_at.min(family.expires_at))
        .fetch_one(&mut *conn)
        .await?;
    // The grandparent's sealed successor (the token just consumed) can no
    // longer be asked for.
    if let Some(grandparent) = &parent.parent_id {
        sqlx::query("UPDATE refresh_tokens SET successor = NULL WHERE id = $1")
            .bind(grandparent)
            .execute(&mut *conn)
            .await?;
    }
    if let Some(e) = &r.audit {
        crate::audit::bind_event!(sqlx::query(crate::audit::INSERT_SQL), UnixTime(r.now), e)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Some(Won { parent, family, child }))
}

/// Rotations of a group, inside the caller's SQLite write transaction: the
/// same effect as [`rotate_sqlite`] for each job in turn, in five
/// statements for the whole group (consume, touch the families, insert the
/// children, clear the grandparents' successors, audit) instead of five per
/// rotation. One outcome per job, in order.
///
/// Two jobs presenting the same token: the UPDATE changes the row once, for
/// one of them (its `replaced_by` says which); the other finds it spent.
///
/// # Errors
/// Any database error; the caller rolls the group back and runs the jobs
/// one by one to find the one at fault.
#[cfg(feature = "sqlite")]
pub(crate) async fn rotate_group_sqlite(
    conn: &mut sqlx::SqliteConnection,
    jobs: &[&RotateJob],
) -> Result<Vec<Option<Won>>, StoreError> {
    use std::collections::HashMap;
    use std::fmt::Write as _;

    fn rows(n: usize, width: usize) -> String {
        let one = format!("({})", vec!["?"; width].join(", "));
        let mut all = String::with_capacity(n * (one.len() + 2));
        for i in 0..n {
            if i > 0 {
                all.push_str(", ");
            }
            all.push_str(&one);
        }
        all
    }

    // 1. Consume every presented token that may be consumed.
    let consume_sql = format!(
        "WITH v (v_hash, v_client, v_now, v_child, v_successor) AS (VALUES {}) \
         UPDATE refresh_tokens AS t SET used_at = v.v_now, replaced_by = v.v_child, successor = v.v_successor \
         FROM v WHERE t.token_hash = v.v_hash AND t.used_at IS NULL AND t.expires_at > v.v_now \
           AND EXISTS (SELECT 1 FROM refresh_families f WHERE f.id = t.family_id AND f.client_id = v.v_client \
                       AND f.revoked_at IS NULL AND f.expires_at > v.v_now) \
         RETURNING {TOKEN_COLUMNS}",
        rows(jobs.len(), 5)
    );
    let mut q = sqlx::query_as::<_, TokenRow>(&consume_sql).persistent(false);
    for j in jobs {
        q = q
            .bind(&j.presented)
            .bind(&j.client_id)
            .bind(j.now)
            .bind(&j.child_id)
            .bind(j.successor.as_deref());
    }
    let mut parents: HashMap<String, TokenRow> = q
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .filter_map(|p| p.replaced_by.clone().map(|child| (child, p)))
        .collect();
    let winners: Vec<(&RotateJob, TokenRow)> = jobs
        .iter()
        .filter_map(|j| parents.remove(&j.child_id).map(|p| (*j, p)))
        .collect();
    if winners.is_empty() {
        return Ok(jobs.iter().map(|_| None).collect());
    }

    // 2. Touch their families.
    let touch_sql = format!(
        "WITH v (v_id, v_now) AS (VALUES {}) \
         UPDATE refresh_families AS f SET last_used_at = v.v_now FROM v \
         WHERE f.id = v.v_id AND f.revoked_at IS NULL AND f.expires_at > v.v_now RETURNING {FAMILY_COLUMNS}",
        rows(winners.len(), 2)
    );
    let mut q = sqlx::query_as::<_, FamilyRow>(&touch_sql).persistent(false);
    for (j, p) in &winners {
        q = q.bind(&p.family_id).bind(j.now);
    }
    let families: HashMap<String, FamilyRow> = q
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|f| (f.id.clone(), f))
        .collect();

    // 3. Insert the children.
    let child_sql = format!(
        "INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, expires_at) VALUES {} \
         RETURNING {TOKEN_COLUMNS}",
        rows(winners.len(), 6)
    );
    let mut q = sqlx::query_as::<_, TokenRow>(&child_sql).persistent(false);
    for (j, p) in &winners {
        // Unreachable with one writer (the consume checked the family).
        let family = families.get(&p.family_id).ok_or(StoreError::Backend)?;
        q = q
            .bind(&j.child_id)
            .bind(&p.family_id)
            .bind(&p.id)
            .bind(&j.child)
            .bind(j.now)
            .bind(j.child_expires_at.min(family.expires_at));
    }
    let mut children: HashMap<String, TokenRow> = q
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();

    // 4. The grandparents' successors can no longer be asked for.
    let grandparents: Vec<&str> = winners.iter().filter_map(|(_, p)| p.parent_id.as_deref()).collect();
    if !grandparents.is_empty() {
        let mut sql = String::from("UPDATE refresh_tokens SET successor = NULL WHERE id IN (");
        for i in 0..grandparents.len() {
            let _ = write!(sql, "{}?", if i > 0 { ", " } else { "" });
        }
        sql.push(')');
        let mut q = sqlx::query(&sql).persistent(false);
        for g in &grandparents {
            q = q.bind(*g);
        }
        q.execute(&mut *conn).await?;
    }

    // 5. The audit events.
    let events: Vec<(i64, &crate::NewAuditEvent)> = winners
        .iter()
        .filter_map(|(j, _)| j.audit.as_ref().map(|e| (j.now, e)))
        .collect();
    if !events.is_empty() {
        let sql = format!(
            "INSERT INTO audit_events (at, action, actor, client_id, subject, ip, detail) VALUES {}",
            rows(events.len(), 7)
        );
        let mut q = sqlx::query(&sql).persistent(false);
        for (now, e) in &events {
            q = crate::audit::bind_event!(q, UnixTime(*now), e);
        }
        q.execute(&mut *conn).await?;
    }

    let mut won: HashMap<String, Won> = HashMap::with_capacity(winners.len());
    for (j, parent) in winners {
        let family = families.get(&parent.family_id).ok_or(StoreError::Backend)?;
        let child = children.remove(&j.child_id).ok_or(StoreError::Backend)?;
        won.insert(
            j.child_id.clone(),
            Won {
                parent,
                family: family.clone(),
                child,
            },
        );
    }
    Ok(jobs.iter().map(|j| won.remove(&j.child_id)).collect())
}

/// A rotation on PostgreSQL: one round trip to a function (migration 0002)
/// that takes the family's row lock first, then consumes the token
/// conditionally and writes the child, the family's `last_used_at`, the
/// grandparent's cleared successor and the audit event, in the statement's
/// own transaction.
#[cfg(feature = "postgres")]
async fn rotate_postgres(pool: &sqlx::PgPool, r: &RotateJob) -> Result<Option<Won>, StoreError> {
    let audit = r.audit.as_ref();
    let row =
        sqlx::query("SELECT * FROM portcullis_rotate_refresh($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
            .bind(r.now)
            .bind(&r.child_id)
            .bind(&r.presented)
            .bind(&r.client_id)
            .bind(r.successor.as_deref())
            .bind(&r.child)
            .bind(r.child_expires_at)
            .bind(audit.map(|e| e.action.as_str()))
            .bind(audit.and_then(|e| e.actor.as_deref()))
            .bind(audit.and_then(|e| e.client_id.as_deref()))
            .bind(audit.and_then(|e| e.subject.as_deref()))
            .bind(audit.and_then(|e| e.ip.as_deref()))
            .bind(audit.and_then(|e| e.detail.as_deref()))
            .fetch_optional(pool)
            .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Won {
        parent: TokenRow::at(&row, 0)?,
        family: FamilyRow::at(&row, TOKEN_COLUMN_COUNT)?,
        child: TokenRow::at(&row, TOKEN_COLUMN_COUNT + 10)?,
    }))
}

/// Classifies a token that the conditional write did not consume.
fn refusal(token: &RefreshToken, family: &RefreshFamily, client_id: &str, now: UnixTime) -> Rotation {
    if family.client_id != client_id {
        // Checked first: another client learns nothing about the token.
        Rotation::Refused(Refusal::WrongClient)
    } else if token.used_at.is_some() {
        Rotation::Spent {
            family: family.clone(),
            token: token.clone(),
        }
    } else if family.revoked_at.is_some() {
        Rotation::Refused(Refusal::FamilyRevoked)
    } else if now >= family.expires_at {
        Rotation::Refused(Refusal::FamilyExpired)
    } else {
        Rotation::Refused(Refusal::TokenExpired)
    }
}

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
                None => {
                    let mut tx = pool.begin().await?;
                    let won = rotate_sqlite(&mut tx, &job).await?;
                    tx.commit().await?;
                    won
                }
            },
            #[cfg(feature = "postgres")]
            crate::db::Pool::Postgres(pool) => rotate_postgres(pool, &job).await?,
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
                crate::users::UserRow::at(&row, TOKEN_COLUMN_COUNT + 10)?,
                crate::clients::ClientRow::at(&row, TOKEN_COLUMN_COUNT + 17)?,
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
