//! Users: the resource owners who sign in with the password grant.

use std::fmt;

use async_trait::async_trait;

use crate::db::with_pool;
use crate::types::{new_id, text_enum};
use portcullis_domain::{Scopes, Username};

use crate::{SqlStore, StoreError, UnixTime};

text_enum! {
    /// Whether a user may sign in.
    UserStatus {
        /// May sign in and refresh.
        Active => "active",
        /// Refused at sign-in and at refresh.
        Disabled => "disabled",
    }
}

/// A user as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Stable id (UUIDv7), used as the token `sub`.
    pub id: String,
    /// The sign-in name, as typed when the user was created; unique by its
    /// [`key`](Username::key).
    pub username: Username,
    /// Argon2id hash in PHC string format.
    pub password_hash: String,
    /// Whether the user may sign in.
    pub status: UserStatus,
    /// The scopes the user may be granted (RFC 6749 §3.3).
    pub scope: Scopes,
    /// When the user was created.
    pub created_at: UnixTime,
    /// When the user was last changed.
    pub updated_at: UnixTime,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("status", &self.status)
            .field("scope", &self.scope)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// What is needed to create a user.
#[derive(Clone)]
pub struct NewUser {
    /// The unique sign-in name.
    pub username: Username,
    /// Argon2id hash in PHC string format.
    pub password_hash: String,
    /// The scopes the user may be granted.
    pub scope: Scopes,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("scope", &self.scope)
            .finish()
    }
}

/// Users.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates an active user.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the username's key is taken (by the
    /// same name in any case or width).
    async fn create_user(&self, new: &NewUser, now: UnixTime) -> Result<User, StoreError>;

    /// The user with this id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    async fn user_by_id(&self, id: &str) -> Result<User, StoreError>;

    /// The user whose username has the key of `username` (`ALICE` finds
    /// `alice`).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is none.
    async fn user_by_username(&self, username: &Username) -> Result<User, StoreError>;

    /// Up to `limit` users ordered by username key, starting after the key
    /// `after`.
    ///
    /// # Errors
    /// Only database failures.
    async fn list_users(&self, after: Option<&str>, limit: u32) -> Result<Vec<User>, StoreError>;

    /// Replaces the password hash only if it is still `old` (a rehash after
    /// sign-in must not undo a password change made meanwhile). Returns
    /// whether it was replaced.
    ///
    /// # Errors
    /// Only database failures.
    async fn rehash_user_password(&self, id: &str, old: &str, new: &str, now: UnixTime) -> Result<bool, StoreError>;
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    username: String,
    password_hash: String,
    status: String,
    scope: String,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(Self {
            status: UserStatus::from_row(&r.status)?,
            id: r.id,
            username: Username::parse(&r.username).map_err(|_| crate::clients::stored("username"))?,
            password_hash: r.password_hash,
            scope: Scopes::parse(&r.scope).map_err(|_| crate::clients::stored("scope"))?,
            created_at: UnixTime(r.created_at),
            updated_at: UnixTime(r.updated_at),
        })
    }
}

const COLUMNS: &str = "id, username, password_hash, status, scope, created_at, updated_at";
/// [`COLUMNS`] qualified by the alias `u`, for joins.
pub(crate) const COLUMNS_U: &str = "u.id, u.username, u.password_hash, u.status, u.scope, u.created_at, u.updated_at";

impl UserRow {
    /// The user whose columns start at `base` (in [`COLUMNS`] order).
    pub(crate) fn at<R: sqlx::Row>(row: &R, base: usize) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            id: row.try_get(base)?,
            username: row.try_get(base + 1)?,
            password_hash: row.try_get(base + 2)?,
            status: row.try_get(base + 3)?,
            scope: row.try_get(base + 4)?,
            created_at: row.try_get(base + 5)?,
            updated_at: row.try_get(base + 6)?,
        })
    }
}

/// Fails with `NotFound` when an UPDATE touched no row.
pub(crate) fn one_row(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_user(&self, new: &NewUser, now: UnixTime) -> Result<User, StoreError> {
        let row: UserRow = with_pool!(&self.write, |c| {
            sqlx::query_as(
                "INSERT INTO users (id, username, username_key, password_hash, status, scope, created_at, updated_at) \
                 VALUES ($1, $2, $7, $3, $4, $5, $6, $6) \
                 RETURNING id, username, password_hash, status, scope, created_at, updated_at",
            )
            .bind(new_id())
            .bind(new.username.as_str())
            .bind(&new.password_hash)
            .bind(UserStatus::Active.as_str())
            .bind(new.scope.to_string())
            .bind(now.0)
            .bind(new.username.key())
            .fetch_one(c)
            .await?
        });
        row.try_into()
    }

    async fn user_by_id(&self, id: &str) -> Result<User, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
        let row: UserRow = with_pool!(&self.read, |c| sqlx::query_as(&sql).bind(id).fetch_one(c).await?);
        row.try_into()
    }

    async fn user_by_username(&self, username: &Username) -> Result<User, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE username_key = $1");
        let row: UserRow = with_pool!(&self.read, |c| {
            sqlx::query_as(&sql).bind(username.key()).fetch_one(c).await?
        });
        row.try_into()
    }

    async fn list_users(&self, after: Option<&str>, limit: u32) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM users WHERE username_key > $1 ORDER BY username_key LIMIT $2");
        let rows: Vec<UserRow> = with_pool!(&self.read, |c| {
            sqlx::query_as(&sql)
                .bind(after.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(c)
                .await?
        });
        rows.into_iter().map(User::try_from).collect()
    }

    async fn rehash_user_password(&self, id: &str, old: &str, new: &str, now: UnixTime) -> Result<bool, StoreError> {
        let done = with_pool!(&self.write, |c| {
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 AND password_hash = $4")
                .bind(new)
                .bind(now.0)
                .bind(id)
                .bind(old)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }
}
